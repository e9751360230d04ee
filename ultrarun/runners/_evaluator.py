"""Evaluators: DeepHyper's front (``Evaluator.create``, ``submit``, ``gather``) over a runner.

The jobs are :class:`ultrarun.job.Job` objects, as the Pyro dispatcher reports them; DeepHyper's
names for their attributes are in ``ultrarun/compat/deephyper``. See docs/runners.md.
"""
from __future__ import annotations

import logging
import os
import time
from typing import IO, Any, Callable, Iterable, Mapping, Sequence

from .._files import write_csv
from ..errors import ConfigurationError
from ..job import Job, JobStatus
from ..lifecycle import Lifecycle
from ._base import AbstractRunner, TrialInfo
from ._registry import make_runner, runner_names
from ._target_function import TargetFunctionRunner
from ._trial import worker_time

logger = logging.getLogger(__name__)

GATHER_TYPES = ("ALL", "BATCH")


# ---------------------------------------------------------------------- callbacks
class Callback:
    """Hooks called by the evaluator: ``on_launch`` at submit, ``on_done`` at gather."""

    def on_launch(self, job: Job) -> None:
        """Called when ``job`` has been submitted."""

    def on_done(self, job: Job) -> None:
        """Called when ``job`` is gathered, whatever its final status."""


class TqdmCallback(Callback):
    """A tqdm progress bar of gathered jobs with the best loss so far.

    The bar is created on the first event, so constructing the callback prints nothing.
    """

    def __init__(self, total: int | None = None, file: IO[str] | None = None,
                 **tqdm_kwargs: Any) -> None:
        self._total = total
        self._kwargs = dict(tqdm_kwargs, file=file)
        self._bar: Any = None
        self._best: float | None = None

    def _progress(self) -> Any:
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=self._total, unit="job", **self._kwargs)
        return self._bar

    def on_launch(self, job: Job) -> None:
        if self._total is None:
            bar = self._progress()
            bar.total = (bar.total or 0) + 1
            bar.refresh()

    def on_done(self, job: Job) -> None:
        bar = self._progress()
        loss = job.loss
        if job.status is JobStatus.SUCCESS and isinstance(loss, (int, float)):
            self._best = loss if self._best is None else min(self._best, loss)
        bar.set_postfix(best_loss=self._best, refresh=False)
        bar.update(1)

    def close(self) -> None:
        """Close the progress bar; idempotent."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def job_row(job: Job, origin: float = 0.0) -> dict[str, Any]:
    """One CSV row: job id, status, loss (``loss_<i>`` for several), ``p:`` arguments,
    ``m:`` timestamps relative to ``origin``, ``i:`` scalar info values, and the error."""
    row: dict[str, Any] = {"job_id": job.id, "status": job.status.name}
    loss = job.loss
    if isinstance(loss, (list, tuple)):
        row.update({f"loss_{i}": value for i, value in enumerate(loss)})
    else:
        row["loss"] = loss
    row.update({f"p:{key}": value for key, value in job.kwargs.items()})
    row.update({f"m:{key}": round(stamp - origin, 6)
                for key, stamp in job.timestamps.items()})
    info = job.info or {}
    row.update({f"i:{key}": value for key, value in info.items()
                if isinstance(value, (str, int, float, bool)) and key not in ("traceback", "error")})
    row["error"] = info.get("error", "") if job.status is not JobStatus.SUCCESS else ""
    return row


class CSVLoggerCallback(Callback):
    """Appends one CSV row per gathered job to ``path`` (flushed per job, crash-safe).

    The columns are fixed by the first job; later jobs' extra columns are left out (use
    :meth:`Evaluator.dump_jobs_done_to_csv` for a file with every column).
    """

    def __init__(self, path: str = "results.csv") -> None:
        self._path = path
        self._columns: list[str] | None = None
        self._origin = time.time()

    def on_done(self, job: Job) -> None:
        row = job_row(job, self._origin)
        self._columns = write_csv(self._path, [row], append=self._columns is not None,
                                  columns=self._columns)


# ---------------------------------------------------------------------- evaluator
EvaluatorFactory = Callable[..., "Evaluator"]
_EVALUATORS: dict[str, EvaluatorFactory] = {}


def register_evaluator(method: str, factory: EvaluatorFactory) -> None:
    """Make ``Evaluator.create(run_function, method=method)`` call ``factory``.

    Not needed for runner backends: a name registered with ``register_runner`` works as a
    method already. This is for evaluators with their own class, like ``"mpicomm"``.
    """
    if not isinstance(method, str) or not method:
        raise ConfigurationError(f"an evaluator method must be a non-empty str, got {method!r}")
    _EVALUATORS[method] = factory


def evaluator_names() -> list[str]:
    """Every method ``Evaluator.create`` accepts."""
    return sorted(set(_EVALUATORS) | set(runner_names()))


class Evaluator:
    """Runs ``run_function`` on dicts of arguments on a backend (DeepHyper's Evaluator shape).

    Parameters
    ----------
    run_function:
        ``run_function(args: dict, **run_function_kwargs)``; returns a number, a list of numbers
        or a dict with ``loss``/``cost``/``objective`` and optionally ``info``.
    num_workers:
        Parallel workers of the backend (its default when None). The serial backend takes any
        number, as DeepHyper's serial evaluator does: it reports it as ``num_workers`` (searches
        size their batches by it) and still runs one job at a time.
    callbacks:
        :class:`Callback` objects.
    backend:
        Runner backend name: ``"serial"``, ``"thread"``, ``"process"``, ``"dask"``, ``"ray"`` or
        a registered one.
    walltime_limit, memory_limit:
        Hard per-job limits (seconds, MiB), enforced in a child process: TIMEOUT, MEMOUT.
    job_class:
        The :class:`~ultrarun.job.Job` subclass the jobs are made of.
    runner_kwargs:
        Further backend arguments (``dask_client``, ``patience``, ``mp_context``, ...).
    """

    def __init__(self, run_function: Callable[..., Any], num_workers: int | None = None,
                 callbacks: Iterable[Callback] | None = None,
                 run_function_kwargs: Mapping[str, Any] | None = None, *,
                 backend: str = "serial", walltime_limit: float | None = None,
                 memory_limit: int | None = None, job_class: type[Job] = Job,
                 **runner_kwargs: Any) -> None:
        self.run_function = run_function
        self._job_class = job_class
        self.run_function_kwargs = dict(run_function_kwargs or {})
        self._callbacks = list(callbacks or [])
        self._backend = backend
        single_worker = TargetFunctionRunner(
            run_function, required_arguments=(), target_kwargs=self.run_function_kwargs,
            walltime_limit=walltime_limit, memory_limit=memory_limit)
        self._num_workers = None
        if num_workers is not None and backend == "serial":
            if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 1:
                raise ConfigurationError(f"num_workers must be an int >= 1, got {num_workers!r}")
            self._num_workers = num_workers  # jobs still run one at a time
        elif num_workers is not None:
            runner_kwargs["n_workers"] = num_workers
        self._runner = make_runner(backend, single_worker, **runner_kwargs)
        self.jobs: dict[int, Job] = {}
        self.jobs_done: list[Job] = []
        self._ready: list[Job] = []
        self._next_id = 1
        self._num_gathered = 0
        self._deadline: float | None = None
        self.timestamp = time.time()
        self._life = Lifecycle()
        self._closed = False

    @staticmethod
    def create(run_function: Callable[..., Any], method: str = "serial",
               method_kwargs: Mapping[str, Any] | None = None) -> Evaluator:
        """Create an evaluator for ``method`` ("serial", "thread", "process", "dask",
        "mpicomm", "ray" or a registered name) with ``method_kwargs`` for its constructor."""
        method_kwargs = {} if method_kwargs is None else method_kwargs
        if not isinstance(method_kwargs, Mapping):
            raise ConfigurationError(f"method_kwargs must be a dict, got {type(method_kwargs).__name__}")
        if method in _EVALUATORS:
            return _EVALUATORS[method](run_function, **method_kwargs)
        if method not in runner_names():
            raise ConfigurationError(f"unknown evaluator method {method!r}; "
                                     f"choose one of {evaluator_names()}")
        return Evaluator(run_function, backend=method, **method_kwargs)

    # ------------------------------------------------------------------ counters
    @property
    def runner(self) -> AbstractRunner:
        return self._runner

    @property
    def num_workers(self) -> int:
        return self._num_workers or self._runner.num_workers

    @property
    def num_jobs_submitted(self) -> int:
        return self._next_id - 1

    @property
    def num_jobs_gathered(self) -> int:
        return self._num_gathered

    def to_json(self) -> dict[str, Any]:
        return {"type": type(self).__name__, "backend": self._backend,
                "num_workers": self.num_workers}

    def set_timeout(self, timeout: float) -> None:
        """Stop the evaluation ``timeout`` seconds from now.

        Jobs still running at the deadline are cancelled (their workers killed where the backend
        can) and gathered as CANCELLED; jobs submitted later are CANCELLED without running. A
        serial backend runs each job inside ``submit``, so it only cancels jobs submitted late.
        """
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
            raise ConfigurationError(f"timeout must be a number of seconds > 0, got {timeout!r}")
        self._deadline = time.monotonic() + timeout

    def _timed_out(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    # ------------------------------------------------------------------ submit / gather
    def submit(self, args_list: Sequence[Mapping[str, Any]]) -> list[Job]:
        """Submit one job per dict of arguments; returns the new jobs."""
        if self._closed:
            raise ConfigurationError("this evaluator is closed")
        if isinstance(args_list, Mapping) or not isinstance(args_list, (list, tuple)):
            raise ConfigurationError("submit takes a list of dicts, got "
                                     f"{type(args_list).__name__}")
        bad = [i for i, args in enumerate(args_list) if not isinstance(args, Mapping)]
        if bad:
            raise ConfigurationError(f"submit takes a list of dicts; items {bad} are not dicts "
                                     f"(first: {type(args_list[bad[0]]).__name__})")
        jobs = []
        for args in args_list:
            job = self._job_class(id=self._next_id, kwargs=dict(args), worker_name=self._backend)
            self._next_id += 1
            self.jobs[job.id] = job
            self._life.submitted(job)
            late = self._timed_out()
            if not late:
                self._life.start(job)
            for callback in self._callbacks:
                callback.on_launch(job)
            if late:
                self._finish(job, JobStatus.CANCELLED, None,
                             {"error": "submitted after the evaluator's timeout"})
            else:
                self._runner.submit_trial(TrialInfo(config=job.kwargs,
                                                    additional_info={"job_id": job.id}))
            jobs.append(job)
        return jobs

    def gather(self, type: str, size: int = 1) -> list[Job]:
        """Return finished jobs: all of them (``"ALL"``) or at least ``size`` (``"BATCH"``).

        A batch larger than the jobs outstanding is reduced to them. Blocks until enough jobs
        finished or the timeout (:meth:`set_timeout`) cancelled the rest.
        """
        if type not in GATHER_TYPES:
            raise ConfigurationError(f"gather type must be one of {GATHER_TYPES}, got {type!r}")
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ConfigurationError(f"gather size must be an int >= 1, got {size!r}")
        outstanding = self.num_jobs_submitted - self._num_gathered
        wanted = outstanding if type == "ALL" else min(size, outstanding)
        if type == "BATCH" and size > outstanding:
            logger.warning("gather BATCH size %d is larger than the %d jobs outstanding",
                           size, outstanding)
        self._collect()
        while len(self._ready) < wanted and self._runner.is_running():
            if self._timed_out():
                self._runner.cancel_pending()
            else:
                remaining = None if self._deadline is None else self._deadline - time.monotonic()
                self._runner.wait(remaining)
            self._collect()
        batch, self._ready = self._ready, []
        for job in batch:
            job.time_it("gathered")
            for callback in self._callbacks:
                callback.on_done(job)
        self._num_gathered += len(batch)
        self.jobs_done.extend(batch)
        return batch

    def _collect(self) -> None:
        for trial_info, value in self._runner.iter_results():
            job = self.jobs[trial_info.additional_info["job_id"]]
            self._life.timed(job, worker_time(value))
            info = dict(value.additional_info, runtime=value.time, cpu_time=value.cpu_time)
            self._finish(job, value.status, value.cost, info, (value.starttime, value.endtime))

    def _finish(self, job: Job, status: JobStatus, cost: Any, info: dict[str, Any],
                ran: tuple[float, float] | None = None) -> None:
        """A failed job has no result (no loss: CSV and JSON readers agree on empty); its
        info is ``job.info``."""
        self._life.finish(job, status, {"loss": cost, "info": info}, info.get("traceback")
                          or info.get("error"), info, ran)
        self._ready.append(job)

    # ------------------------------------------------------------------ output
    def dump_jobs_done_to_csv(self, log_dir: str = ".", filename: str = "results.csv") -> str:
        """Write every gathered job to ``log_dir/filename`` (rewritten each call); returns the path.

        Columns: ``job_id``, ``status``, ``loss`` (``loss_0``... for several objectives),
        ``p:<argument>``, ``m:submitted``/``m:started``/``m:finished``/``m:gathered`` (seconds
        since the evaluator was created), ``i:<info key>`` for scalar info values, ``error``.
        """
        os.makedirs(log_dir, exist_ok=True)
        path = os.path.join(log_dir, filename)
        write_csv(path, [job_row(job, self.timestamp) for job in self.jobs_done])
        return path

    def close(self) -> None:
        """Stop the backend (running jobs are dropped); idempotent."""
        if self._closed:
            return
        self._closed = True
        self._runner.close()
        for callback in self._callbacks:
            close = getattr(callback, "close", None)
            if callable(close):
                close()

    def __enter__(self) -> Evaluator | None:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


__all__ = ["Evaluator", "Callback", "TqdmCallback", "CSVLoggerCallback", "register_evaluator",
           "evaluator_names", "job_row"]
