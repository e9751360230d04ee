"""The one contract between the master and whatever runs its jobs (docs/architecture.md).

The master depends on :class:`Executor` only. The Pyro :class:`~ultrarun.dispatcher.Dispatcher`
implements it, and every :mod:`ultrarun.runners` backend is adapted to it once
(:class:`~ultrarun.runners.RunnerExecutor`). With the contract come the two things every
executor shares, defined with the job lifecycle in :mod:`ultrarun.lifecycle` and re-exported
here: the :class:`RetryPolicy` and the :class:`Durations` of finished jobs.
"""
from __future__ import annotations

import abc
from typing import Any, Callable

from .errors import ConfigurationError
from .job import Job
from .lifecycle import Durations, RetryPolicy


class Executor(abc.ABC):
    """Runs jobs, and reports each one exactly once to ``new_result_callback(job)``.

    ``queue_callback(n)`` hears the number of workers whenever it changes. ``prefetch`` is how
    many jobs a busy worker may hold besides the one it runs, so the executor has
    ``number_of_workers() * (1 + prefetch)`` job slots. The names are HpBandSter's (its
    dispatcher's), so code written against it keeps working.
    """

    new_result_callback: Callable[[Job], Any] | None = None
    queue_callback: Callable[[int], Any] | None = None
    prefetch: int = 0
    retry: RetryPolicy  #: settable: the master may set its own
    durations: Durations

    def bind(self, on_result: Callable[[Job], Any],
             on_pool: Callable[[int], Any] | None = None) -> "Executor":
        """Whom to report to (the master calls this once)."""
        self.new_result_callback, self.queue_callback = on_result, on_pool
        return self

    @abc.abstractmethod
    def start(self) -> "Executor":
        """Begin (idempotent); returns at once."""

    @abc.abstractmethod
    def submit_job(self, id: Any, **kwargs: Any) -> Job:
        """Queue a job (``config``, ``budget``, ...); kwargs must be plain data."""

    @abc.abstractmethod
    def number_of_workers(self) -> int:
        """Workers that can run jobs now."""

    @abc.abstractmethod
    def cancel_queued_jobs(self, ids: Any = None) -> int:
        """Report jobs that have not started (all, or those with an id in ``ids``) CANCELLED;
        returns how many."""

    @abc.abstractmethod
    def shutdown(self, shutdown_workers: bool = False) -> None:
        """Stop; what is queued or running is reported CANCELLED. Idempotent."""

    def expected_start(self) -> float | None:
        """When (``time.monotonic()``) a job submitted now would start; None if unknown."""
        return None

    def trigger_discover_worker(self) -> None:
        """Look for new workers now (a no-op where the executor knows them)."""

    @staticmethod
    def of(given: Any) -> "Executor":
        """``given`` if it is an executor, or what its ``as_executor()`` makes of it (every
        :mod:`ultrarun.runners` runner has one)."""
        if isinstance(given, Executor):
            return given
        make = getattr(given, "as_executor", None)
        if callable(make):
            return make()
        raise ConfigurationError("executor must be an ultrarun.executor.Executor (such as a "
                                 "Dispatcher) or something with as_executor(), such as an "
                                 f"ultrarun.runners runner; got {type(given).__name__}")

    def __enter__(self) -> "Executor":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()


__all__ = ["Executor", "RetryPolicy", "Durations"]
