"""``hpbandster.core.master``: HpBandSter's custom-optimizer API on ultrarun's master.

Subclass ``Master`` and implement ``get_next_iteration(iteration, iteration_kwargs)`` returning
an iteration such as ``SuccessiveHalving(HPB_iter=..., num_configs=..., budgets=...,
config_sampler=self.config_generator.get_config, **iteration_kwargs)``. The config generator's
``new_result(job)`` is called with every finished job, under the master's lock, before the next
configuration is sampled. ultrarun's own master options may be added as keywords.
"""
from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np

from ultrarun.frontends import FrontEnd
from ultrarun.iterations import BaseIterGenerator
from ultrarun.job import Job, JobStatus
from ultrarun.optimizers import BaseOptimizer
from ultrarun.compat import private_journal, pyro_port, remove_journal
from .base_iteration import sampler_of


class ResultConfig:
    """Mixin of every HpBandSter (and ultraopt) master: ``self.config`` is HpBandSter's run dict
    (its ``time_ref`` is the master's); the Result's ``HB_config`` also carries what the master
    put there (``eta``, ``budgets``, ``max_SH_iter``, ...), as HpBandSter's does.
    HpBandSter writes no journal: unless the script names a ``checkpoint_file`` (or resumes),
    the journal is a file of the run's own (:func:`ultrarun.compat.private_journal`), removed
    at shutdown, and a script run again starts over."""

    _own_journal: Any = None
    config = property(lambda self: self.__dict__.setdefault("config", {"time_ref": None}))
    time_ref = property(lambda self: self.config["time_ref"],
                        lambda self, value: self.config.__setitem__("time_ref", value))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("overwrite", not kwargs.get("resume", False))  # for the result logs
        if kwargs.get("checkpoint_file") is None and not kwargs.get("resume", False):
            run_id = kwargs.get("run_id", args[0] if args and isinstance(args[0], str) else "0")
            self._own_journal = kwargs["checkpoint_file"] = private_journal(run_id)
        super().__init__(*args, **kwargs)
        os.makedirs(self.working_directory, exist_ok=True)  # HpBandSter's master makes it

    def shutdown(self, shutdown_workers: bool = False) -> None:
        super().shutdown(shutdown_workers)  # type: ignore[misc]
        remove_journal(self._own_journal)

    def get_result(self) -> Any:
        result = super().get_result()  # type: ignore[misc]
        for key, value in self.config.items():
            if key != "time_ref" and value is not None:
                result.HB_config[key] = value.tolist() if isinstance(value, np.ndarray) else value
        return result


class GeneratorOptimizer(BaseOptimizer):
    """A config generator seen as the optimizer the master drives: ``ask`` is ``get_config``;
    results reach the generator's ``new_result(job)`` from :meth:`Master.job_callback`."""

    def __init__(self, generator: Any):  # no configuration space of its own
        self.generator = generator
        self.seed = None
        self.configspace = getattr(generator, "configspace", None)

    def ask(self, budget: float, n_points: int = 1) -> list[tuple[dict, dict]]:
        return sampler_of(self.generator.get_config)(budget, n_points)

    def tell(self, config: Any, loss: Any, budget: float) -> None:
        pass

    def replay(self, results: Any, random_picks: int = 0) -> None:
        pass

    def mark_running(self, config: Any, budget: float) -> None:
        pass

    def cancel(self, config: Any, budget: float) -> None:
        pass

    def _suggest(self, budget: float) -> Any:
        raise NotImplementedError


class _SubclassIterations(BaseIterGenerator):
    """Stands in for an iteration generator: the Master subclass makes the iterations."""

    def __init__(self, master: "Master"):
        self._master = master

    def get_next_iteration(self, iteration: int, sampler: Any, **kwargs: Any) -> Any:
        return self._master.get_next_iteration(iteration, kwargs)

    @property
    def budgets(self) -> list[float]:
        return [float(b) for b in getattr(self._master, "budgets", [])]

    def num_jobs(self, iteration: int) -> None:
        return None


class Master(ResultConfig, FrontEnd):
    """ultrarun's master driven by an HpBandSter config generator."""

    def __init__(self, run_id: Any, config_generator: Any, working_directory: str = ".",
                 ping_interval: float = 60, nameserver: str = "127.0.0.1",
                 nameserver_port: int | None = None, host: str | None = None,
                 shutdown_workers: bool = True, job_queue_sizes: tuple[int, int] = (-1, 0),
                 dynamic_queue_size: bool = True, logger: logging.Logger | None = None,
                 result_logger: Any = None, previous_result: Any = None, **kwargs: Any):
        self.config_generator = config_generator
        pyro = {} if kwargs.get("executor") is not None else dict(  # ultrarun's executor=
            ping_interval=ping_interval, nameserver=nameserver,
            nameserver_port=pyro_port(nameserver_port), host=host)
        super().__init__(run_id, GeneratorOptimizer(config_generator), _SubclassIterations(self),
                         working_directory=working_directory, **pyro,
                         shutdown_workers=shutdown_workers,
                         job_queue_sizes=job_queue_sizes, dynamic_queue_size=dynamic_queue_size,
                         result_logger=result_logger, previous_result=previous_result,
                         logger=logger, **kwargs)
        if previous_result is not None:
            self._warm_start_generator(previous_result)

    def get_next_iteration(self, iteration: int, iteration_kwargs: dict | None = None) -> Any:
        raise NotImplementedError(f"implement get_next_iteration for {type(self).__name__}")

    def job_callback(self, job: Job, replayed: bool = False) -> None:
        with self.thread_cond:  # re-entrant: the generator learns before the next sample
            super().job_callback(job, replayed)
            if job.status is not JobStatus.CANCELLED:
                self.config_generator.new_result(job)

    def _warm_start_generator(self, previous: Any) -> None:
        """HpBandSter feeds earlier runs to the generator, updating its model on the last."""
        id2conf = previous.get_id2config_mapping()
        runs = [r for r in previous.get_all_runs() if r.config_id in id2conf]
        for i, run in enumerate(runs):
            job = Job(id=run.config_id, kwargs={"config": id2conf[run.config_id]["config"],
                                                "budget": run.budget},
                      status=run.status, exception=run.error_logs,
                      result=None if run.loss is None else {"loss": run.loss, "info": run.info})
            job.timestamps = dict(run.time_stamps)
            self.config_generator.new_result(job, update_model=i == len(runs) - 1)


__all__ = ["Master"]
