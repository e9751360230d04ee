"""``ultraopt.async_comm``: ``NameServer``, ``Worker``, ``Dispatcher`` and ``Master`` with
ultraopt's arguments and positional order, on ultrarun's runtime.

- ``Worker.initialize(eval_func)`` takes ``eval_func(config)`` or ``eval_func(config,
  budget=...)`` returning the loss; or override ``compute(config_id, config, config_info,
  budget, working_directory)``.
- ``Dispatcher.submit_job(id, config=..., config_info=..., budget=..., working_directory=...)``;
  each finished job reaches the callback with ``job.result`` (``{'loss': ...}`` or None),
  ``job.exception`` and ``job.config_info``.
- ``Master``: ``progress_callback(initial, total)`` is a context manager, as in ultraopt;
  ``incumbents`` / ``incumbent_performances`` are per budget, unseen budgets at inf;
  ``checkpoint_file`` gets the optimizer (joblib) every ``checkpoint_freq`` results, as in
  ultraopt; ultrarun's journal is a file of the run's own, removed at shutdown.

``port=None`` / ``nameserver_port=None`` mean Pyro's default port (``PYRO_NS_PORT`` or 9090).
"""
from __future__ import annotations

import math
from collections import defaultdict
from typing import Any, Callable

from ultrarun import dispatcher as _dispatcher
from ultrarun import worker as _worker
from ultrarun.compat import pyro_port
from ultrarun.compat.hpbandster.core.master import ResultConfig
from ultrarun.compat.hpbandster.core.nameserver import NameServer
from ultrarun.errors import ConfigurationError
from ultrarun.frontends import FrontEnd
from ultrarun.job import Job

from ..optimizer import BaseOptimizer
from ..utils.misc import Checkpoint
from ..utils.progress import no_progress_callback


class Worker(_worker.Worker):
    """ultraopt's worker: ``timeout`` counts from the last job, as ultraopt's does."""

    timeout_before_first_job = False  # the clock starts when a job finishes, as there

    def __init__(self, run_id: Any, nameserver: str | None = None,
                 nameserver_port: int | None = None, host: str | None = None,
                 worker_id: Any = None, timeout: float | None = None, debug: bool = False,
                 **kwargs: Any):
        super().__init__(run_id, nameserver, pyro_port(nameserver_port), host=host,
                         worker_id=worker_id, timeout=timeout, debug=debug, **kwargs)

    def initialize(self, eval_func: Callable[..., Any]) -> "Worker":
        """``eval_func(config)`` or ``eval_func(config, budget=...)`` returns the loss."""
        return super().initialize(LossFunction(eval_func))


class LossFunction:
    """ultraopt's evaluation function as a compute: called with the config, and the budget if
    it takes one; picklable (for ``concurrent_type="process"``) when the function is."""

    def __init__(self, func: Callable[..., Any]):
        if not callable(func):
            raise ConfigurationError(f"eval_func must be callable, got {type(func).__name__}")
        import inspect

        self.func = func
        try:
            self.takes_budget = "budget" in inspect.signature(func).parameters
        except (TypeError, ValueError):
            self.takes_budget = False

    def __call__(self, config: dict, budget: float) -> Any:
        return self.func(config, budget=budget) if self.takes_budget else self.func(config)


def _with_config_info(callback: Callable[[Job], Any]) -> Callable[[Job], Any]:
    def deliver(job: Job) -> Any:
        job.config_info = job.kwargs.get("config_info")  # type: ignore[attr-defined]
        return callback(job)

    return deliver


class Dispatcher(_dispatcher.Dispatcher):
    def __init__(self, new_result_callback: Callable[[Job], Any], run_id: Any = "0",
                 ping_interval: float = 10, nameserver: str = "localhost",
                 nameserver_port: int | None = None, host: str | None = None,
                 queue_callback: Callable[[int], Any] | None = None, **kwargs: Any):
        super().__init__(_with_config_info(new_result_callback), run_id, ping_interval,
                         nameserver, pyro_port(nameserver_port), host, queue_callback, **kwargs)


class Master(ResultConfig, FrontEnd):
    def __init__(self, run_id: Any, optimizer: BaseOptimizer, iter_generator: Any,
                 progress_callback: Callable[[int, int], Any] = no_progress_callback,
                 checkpoint_file: Any = None, checkpoint_freq: int = 10,
                 working_directory: Any = ".", ping_interval: float = 60,
                 time_left_for_this_task: float = math.inf, nameserver: str = "127.0.0.1",
                 nameserver_port: int | None = None, host: str | None = None,
                 shutdown_workers: bool = True, job_queue_sizes: tuple[int, int] = (-1, 0),
                 dynamic_queue_size: bool = True, result_logger: Any = None,
                 previous_result: Any = None, incumbents: dict | None = None,
                 incumbent_performances: dict | None = None, **kwargs: Any):
        if not isinstance(optimizer, BaseOptimizer):
            raise ConfigurationError("optimizer must be an ultrarun.compat.ultraopt optimizer "
                                     f"(ETPEOptimizer, RandomOptimizer), got {type(optimizer).__name__}")
        if not optimizer.is_init:
            raise ConfigurationError("initialize the optimizer first: optimizer.initialize("
                                     "config_space, budgets=iter_generator.get_budgets())")
        iter_generator.initialize(optimizer)
        self.ultraopt_optimizer = optimizer
        self.progress = progress_callback
        self.checkpoint = Checkpoint(optimizer, checkpoint_file, checkpoint_freq)
        self._bar: Any = None  # ultraopt keeps no journal: ResultConfig gives the run its own
        pyro = {} if kwargs.get("executor") is not None else dict(  # ultrarun's executor=
            ping_interval=ping_interval, nameserver=nameserver,
            nameserver_port=pyro_port(nameserver_port), host=host)
        super().__init__(run_id, optimizer.as_native(), iter_generator,
                         progress_callback=self._job_done, checkpoint_freq=checkpoint_freq,
                         working_directory=working_directory,
                         time_left_for_this_task=time_left_for_this_task, **pyro,
                         shutdown_workers=shutdown_workers, job_queue_sizes=job_queue_sizes,
                         dynamic_queue_size=dynamic_queue_size, result_logger=result_logger,
                         previous_result=previous_result, incumbents=incumbents,
                         incumbent_performances=incumbent_performances, **kwargs)
        self.incumbents = defaultdict(dict, self.incumbents)
        self.incumbent_performances = defaultdict(lambda: math.inf, self.incumbent_performances)

    def run(self, n_iterations: int | None = 1, min_n_workers: int = 1,
            iteration_kwargs: dict | None = None) -> Any:
        total = (self.iter_generator.num_all_configs(n_iterations)  # type: ignore[attr-defined]
                 if n_iterations is not None else None)
        with self.progress(0, total) as bar:
            self._bar = bar
            try:
                return super().run(n_iterations, min_n_workers, iteration_kwargs)
            finally:
                self._bar = None
                self.checkpoint.write()

    def shutdown(self, shutdown_workers: bool = True) -> None:
        super().shutdown(shutdown_workers)

    def _job_done(self, job: Job, master: Any) -> None:
        self.checkpoint.result()
        bar = self._bar
        if bar is None:
            return
        optimizer = self.ultraopt_optimizer
        budget = optimizer.get_available_max_budget()
        losses = optimizer.budget2obvs.get(budget, {}).get("losses") or [math.inf]
        bar.postfix = f"max budget: {budget:g}, best loss: {min(losses):.3f}"
        bar.update(1)


__all__ = ["NameServer", "Worker", "Dispatcher", "Master", "LossFunction"]
