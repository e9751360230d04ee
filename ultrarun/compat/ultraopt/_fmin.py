"""ultraopt's ``fmin`` and ``FMinResult`` on ultrarun."""
from __future__ import annotations

import concurrent.futures
import math
import os
import uuid
from typing import Any, Callable

import numpy as np
from ConfigSpace import ConfigurationSpace

from ultrarun.errors import ConfigurationError

from .hdl import hdl2cs
from .async_comm import LossFunction, Master, NameServer, Worker
from .multi_fidelity import CustomIterGenerator
from .optimizer import BaseOptimizer, ETPEOptimizer, RandomOptimizer
from .utils import progress
from .utils.misc import Checkpoint

OPTIMIZERS = {"ETPE": ETPEOptimizer, "Random": RandomOptimizer}
STRATEGIES = ("Serial", "AsyncComm", "MapReduce")


def _optimizer(optimizer: Any) -> BaseOptimizer:
    if isinstance(optimizer, BaseOptimizer):
        return optimizer
    if isinstance(optimizer, type) and issubclass(optimizer, BaseOptimizer):
        return optimizer()
    if isinstance(optimizer, str) and optimizer in OPTIMIZERS:
        return OPTIMIZERS[optimizer]()
    raise ConfigurationError(f"optimizer is {optimizer!r}; use one of {sorted(OPTIMIZERS)}, an "
                             "optimizer class or instance from ultrarun.compat.ultraopt")


def fmin(eval_func: Callable[..., Any], config_space: ConfigurationSpace | dict,
         optimizer: Any = "ETPE", initial_points: list | None = None, random_state: int = 42,
         n_iterations: int = 100, n_jobs: int = 1, parallel_strategy: str = "AsyncComm",
         auto_identify_serial_strategy: bool = True, multi_fidelity_iter_generator: Any = None,
         previous_result: Any = None, warm_start_strategy: str = "continue",
         show_progressbar: bool = True, checkpoint_file: Any = None, checkpoint_freq: int = 10,
         verbose: int = 0, run_id: Any = None, ns_host: str = "127.0.0.1",
         ns_port: int = 0) -> "FMinResult":
    """Minimise ``eval_func(config)`` (or ``eval_func(config, budget=...)`` with a multi-fidelity
    generator) over ``config_space`` (a ConfigurationSpace or an HDL dict, see :mod:`.hdl`)
    with ultraopt's arguments; returns an :class:`FMinResult`.

    ``"Serial"`` evaluates in this thread; ``"AsyncComm"`` starts a name server, ``n_jobs``
    thread workers and a master (multi-fidelity works here only); ``"MapReduce"`` evaluates
    batches of ``n_jobs`` in a thread pool. ``checkpoint_file``, as in ultraopt, gets the
    optimizer (``joblib.load`` reads it) every ``checkpoint_freq`` results and at the end, with
    the one before kept as ``<checkpoint_file>.bak``, under every strategy;
    ``previous_result`` takes such a file's path, what it holds, or an :class:`FMinResult`.
    ``verbose`` is accepted and unused.
    """
    if isinstance(config_space, dict):
        config_space = hdl2cs(config_space)  # ultraopt's HDL
    if not isinstance(config_space, ConfigurationSpace):
        raise ConfigurationError("config_space must be a ConfigSpace.ConfigurationSpace or an "
                                 f"HDL dict, got {type(config_space).__name__}")
    if parallel_strategy not in STRATEGIES:
        raise ConfigurationError(f"parallel_strategy is {parallel_strategy!r}; use one of "
                                 f"{list(STRATEGIES)}")
    if auto_identify_serial_strategy and n_jobs == 1 and multi_fidelity_iter_generator is None:
        parallel_strategy = "Serial"
    generator = multi_fidelity_iter_generator
    budgets = [1.0] if generator is None or parallel_strategy != "AsyncComm" else generator.get_budgets()
    opt = _optimizer(optimizer)
    if isinstance(previous_result, (str, os.PathLike)):
        import joblib

        previous_result = joblib.load(previous_result)  # ultraopt's checkpoint: the optimizer
    if previous_result is not None and warm_start_strategy == "continue":
        opt = previous_result.optimizer if isinstance(previous_result, FMinResult) else previous_result
    elif previous_result is not None and warm_start_strategy != "resume":
        raise ConfigurationError(f"warm_start_strategy is {warm_start_strategy!r}; use "
                                 "'continue' or 'resume'")
    opt.initialize(config_space, budgets, random_state, initial_points)
    if previous_result is not None and warm_start_strategy == "resume":
        earlier = previous_result.budget2obvs
        for budget, obvs in earlier.items():
            for config, loss in zip(obvs["configs"], obvs["losses"]):
                opt.tell(config, None if math.isinf(loss) else loss, budget)
    bar = progress.default_callback if show_progressbar else progress.no_progress_callback
    loss_of = LossFunction(eval_func)
    checkpoint = Checkpoint(opt, checkpoint_file, checkpoint_freq)
    if parallel_strategy == "AsyncComm":
        _async(opt, loss_of, generator or CustomIterGenerator([1], [1]), n_iterations, n_jobs,
               bar, checkpoint, run_id or uuid.uuid4().hex, ns_host, ns_port)
    else:
        workers = 1 if parallel_strategy == "Serial" else max(1, n_jobs)
        with bar(0, n_iterations) as ctx, concurrent.futures.ThreadPoolExecutor(workers) as pool:
            done = 0
            while done < n_iterations:
                batch = opt.ask(n_points=min(workers, n_iterations - done))
                losses = list(pool.map(lambda pair: loss_of(pair[0], 1.0), batch))
                for (config, _), loss in zip(batch, losses):
                    opt.tell(config, loss)
                    checkpoint.result()
                done += len(batch)
                ctx.postfix = f"best loss: {min(opt.budget2obvs[1.0]['losses']):.3f}"
                ctx.update(len(batch))
    checkpoint.write()
    return FMinResult(opt)


def _async(opt: BaseOptimizer, loss_of: LossFunction, generator: Any, n_iterations: int,
           n_jobs: int, bar: Any, checkpoint: "Checkpoint", run_id: str,
           ns_host: str, ns_port: int) -> None:
    with NameServer(run_id=run_id, host=ns_host, port=ns_port) as ns:
        workers = [Worker(run_id, ns.host, ns.port, host=ns.host, worker_id=i) for i in range(n_jobs)]
        try:
            for worker in workers:
                worker.initialize(loss_of.func)
                worker.run(background=True, concurrent_type="thread")
            master = Master(run_id, opt, generator, progress_callback=bar,
                            checkpoint_file=checkpoint.path, checkpoint_freq=checkpoint.freq,
                            nameserver=ns.host, nameserver_port=ns.port, host=ns.host,
                            show_progress=False)
            try:
                master.run(n_iterations, min_n_workers=n_jobs)
            finally:
                master.shutdown(shutdown_workers=True)
        finally:
            for worker in workers:
                worker.shutdown()


class FMinResult:
    """What ``fmin`` returns: the best loss and config (on the largest budget with results),
    per-budget summaries, and ultraopt's plots (each draws on ``ax`` or the current axes)."""

    def __init__(self, optimizer: BaseOptimizer):
        self.optimizer = optimizer
        self.budget2obvs = optimizer.budget2obvs
        self.runId2info = {k: dict(v) for k, v in optimizer.runId2info.items() if "loss" in v}
        start = min((v["start_time"] for v in self.runId2info.values()), default=0.0)
        for info in self.runId2info.values():  # times relative to the first start
            info["start_time"] -= start
            info["end_time"] -= start
        self.budgets = sorted(self.budget2obvs)
        self.is_multi_fidelity = len(self.budgets) > 1
        self.budget2info = {}
        for budget, obvs in self.budget2obvs.items():
            losses = obvs["losses"]
            best = int(np.argmin(losses)) if losses else None
            self.budget2info[budget] = {"loss": None if best is None else losses[best],
                                        "config": None if best is None else obvs["configs"][best],
                                        "num_configs": len(losses)}
        self.max_budget = optimizer.get_available_max_budget()
        best = self.budget2info.get(self.max_budget, {})
        self.best_loss = best.get("loss") if best.get("loss") is not None else math.inf
        self.best_config = best.get("config")

    def __getitem__(self, item: str) -> Any:
        return getattr(self, item)

    def __str__(self) -> str:
        lines = [f"FMinResult: best loss {self.best_loss:.4g} at budget {self.max_budget:g}",
                 f"  best config: {self.best_config}"]
        for budget in self.budgets:
            info = self.budget2info[budget]
            lines.append(f"  budget {budget:g}: {info['num_configs']} configs, best loss "
                         f"{info['loss']}")
        return "\n".join(lines)

    __repr__ = __str__

    # -- plots -----------------------------------------------------------------------------
    def _runs(self) -> list:
        from ultrarun.results import Run

        return [Run(config_id, budget, info["loss"] if math.isfinite(info["loss"]) else None, {},
                    {"submitted": info["start_time"], "started": info["start_time"],
                     "finished": info["end_time"]})
                for (config_id, budget), info in self.runId2info.items()]

    @staticmethod
    def _axes(ax: Any) -> Any:
        if ax is None:
            import matplotlib.pyplot as plt

            ax = plt.gca()
        return ax

    def plot_convergence(self, budget: float | None = None, ax: Any = None, name: str | None = None,
                         yscale: str | None = None, **kwargs: Any) -> Any:
        """The running best loss over the evaluations at ``budget`` (the largest by default)."""
        ax = self._axes(ax)
        losses = np.asarray(self.budget2obvs[self.max_budget if budget is None else budget]["losses"])
        finite = np.where(np.isfinite(losses), losses, np.nan)
        ax.plot(np.arange(1, len(losses) + 1), np.fmin.accumulate(finite), label=name, **kwargs)
        ax.scatter(np.arange(1, len(losses) + 1), finite, alpha=0.3)
        ax.set_xlabel("number of iterations $n$")
        ax.set_ylabel(r"$\min f(x)$ after $n$ iterations")
        if yscale:
            ax.set_yscale(yscale)
        if name:
            ax.legend()
        return ax

    plot_convergence_over_iter = plot_convergence

    def plot_convergence_over_time(self, ax: Any = None, yscale: str | None = None,
                                   **kwargs: Any) -> Any:
        """The running best loss of every budget over wall-clock time."""
        ax = self._axes(ax)
        for budget in self.budgets:
            points = sorted((info["end_time"], info["loss"]) for (_, b), info in
                            self.runId2info.items() if b == budget and math.isfinite(info["loss"]))
            if points:
                times, losses = np.array(points).T
                ax.step(times, np.minimum.accumulate(losses), where="post",
                        label=f"budget={budget:g}", **kwargs)
        ax.set_xlabel("time [s]")
        ax.set_ylabel(r"$\min f(x)$ over time")
        if yscale:
            ax.set_yscale(yscale)
        ax.legend()
        return ax

    def plot_concurrent_over_time(self, ax: Any = None, num_points: int | None = None) -> Any:
        """How many evaluations ran at the same time."""
        return self._copy("concurrent_runs_over_time", ax)

    def plot_finished_over_time(self, ax: Any = None) -> Any:
        """Finished evaluations over time, per budget."""
        return self._copy("finished_runs_over_time", ax)

    def plot_correlation_across_budgets(self, ax: Any = None) -> Any:
        """Spearman rank correlation of the losses across budgets."""
        return self._copy("correlation_across_budgets", ax)

    def _copy(self, plot: str, ax: Any) -> Any:
        """ultraopt draws on the given axes, else on the current ones (``plt.subplot``): redraw
        the lines of ultrarun's figure ``plot`` there."""
        from ultrarun import visualization

        ax = self._axes(ax)
        fig, drawn = getattr(visualization, plot)(self._runs())
        for line in drawn.get_lines():
            ax.step(line.get_xdata(), line.get_ydata(), where="post", label=line.get_label())
        for image in drawn.get_images():
            ax.matshow(image.get_array(), vmin=-1, vmax=1, cmap=image.get_cmap())
        ax.set_title(drawn.get_title())
        ax.set_xlabel(drawn.get_xlabel())
        ax.set_ylabel(drawn.get_ylabel())
        visualization.close(fig)
        return ax


__all__ = ["fmin", "FMinResult"]
