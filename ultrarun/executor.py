"""The one contract between the master and whatever runs its jobs (docs/architecture.md).

The master depends on :class:`Executor` only. The Pyro :class:`~ultrarun.dispatcher.Dispatcher`
implements it, and every :mod:`ultrarun.runners` backend is adapted to it once
(:class:`~ultrarun.runners.RunnerExecutor`). With the contract come the two things every
executor shares: the :class:`RetryPolicy` and the :class:`Durations` of finished jobs.
"""
from __future__ import annotations

import abc
import bisect
import collections
import statistics
from dataclasses import dataclass
from typing import Any, Callable

from .errors import ConfigurationError
from .job import Job, JobStatus


@dataclass(frozen=True)
class RetryPolicy:
    """When a job runs again: always after its worker was lost (an infrastructure failure), and
    after a final status in ``retry_on`` (a user failure, only when asked), up to
    ``max_retries`` re-runs. Then a lost job is LOST and a failed one keeps its status."""

    max_retries: int = 3
    retry_on: frozenset = frozenset()

    def __post_init__(self) -> None:
        if type(self.max_retries) is not int or self.max_retries < 0:
            raise ConfigurationError(f"max_retries must be an int >= 0, got {self.max_retries!r}")
        bad = [s for s in self.retry_on if not isinstance(s, JobStatus) or not s.failed
               or s in (JobStatus.LOST, JobStatus.CANCELLED)]
        if bad:
            raise ConfigurationError(f"retry_on takes CRASHED, TIMEOUT or MEMOUT, got {bad!r}")
        object.__setattr__(self, "retry_on", frozenset(self.retry_on))

    def again(self, attempt: int) -> bool:
        """Whether a job whose ``attempt``-th run just failed may run once more."""
        return attempt <= self.max_retries


class Durations:
    """How long jobs take, as the workers timed their computes (``Job.duration``): the median
    of the last 64 jobs at each budget, and the pace (seconds per unit of budget) over all."""

    _KEEP = 64

    def __init__(self) -> None:
        self._by_budget: dict[float, collections.deque] = {}
        self._median: dict[float, float] = {}
        self._pace: collections.deque = collections.deque(maxlen=self._KEEP)
        self.pace: float | None = None  #: median seconds per unit of budget, None before any

    def record(self, budget: Any, seconds: float | None) -> None:
        if seconds is None or not seconds >= 0 or type(budget) not in (int, float):
            return
        budget = float(budget)
        runs = self._by_budget.setdefault(budget, collections.deque(maxlen=self._KEEP))
        runs.append(seconds)
        self._median[budget] = statistics.median(runs)
        if budget > 0:
            self._pace.append(seconds / budget)
            self.pace = statistics.median(self._pace)

    def estimate(self, budget: float) -> float | None:
        """Seconds a job at ``budget`` holds a worker: the median at that budget or, for one not
        seen yet, the nearest smaller (else larger) seen budget's scaled linearly; None before
        the first finished job."""
        budget = float(budget)
        known = self._median.get(budget)
        if known is not None or not self._median:
            return known
        seen = sorted(self._median)
        near = seen[max(bisect.bisect_left(seen, budget) - 1, 0)]
        return self._median[near] * budget / near if near else None


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
