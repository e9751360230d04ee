"""One job lifecycle, kept the same way by every executor (docs/architecture.md, "One job
lifecycle").

A job goes QUEUED -> RUNNING -> one final state, back from RUNNING to QUEUED when it runs
again, and from QUEUED straight to CANCELLED. The dispatcher's pool, the runner executor, the
runners' bookkeeping and the Evaluator all move their jobs with a :class:`Lifecycle`, so every
backend has the same rules:

- the states are seen in order (a guarded :func:`move`; a wrong move is a bug, raised);
- a failed job's ``result`` is None: why it failed is in ``exception``, its data in ``info``
  (a successful job's ``info`` is its ``result['info']``);
- timestamps come from the lifecycle's clock (``time``, or a fake in tests);
- :class:`RetryPolicy` decides when a job runs again (one default: ``max_retries=3``);
- :class:`Durations` learns from every compute a worker timed, whatever its status: a crashed
  or timed-out compute held its worker as long as it reports.
"""
from __future__ import annotations

import bisect
import collections
import statistics
import time
from dataclasses import dataclass
from typing import Any

from .errors import ConfigurationError, JobError
from .job import Job, JobStatus

_MOVES = {
    JobStatus.QUEUED: {JobStatus.RUNNING, JobStatus.CANCELLED},
    JobStatus.RUNNING: {JobStatus.QUEUED} | {s for s in JobStatus if s.is_final},
}


class JobStateError(JobError):
    """A job was asked to move where its lifecycle does not go (a bug, never a user's)."""


def move(job: Job, to: JobStatus) -> None:
    """The one place a job's state changes."""
    if to not in _MOVES.get(job.status, ()):
        raise JobStateError(f"job {job.id!r} cannot go from {job.status.name} to {to.name}")
    job.status = to


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

    def retries(self, status: JobStatus, attempt: int) -> bool:
        """Whether a run that ended ``status`` (not lost) at ``attempt`` runs again."""
        return status in self.retry_on and self.again(attempt)


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


class Lifecycle:
    """Moves jobs for one executor: its retry policy, its durations and its clock (``time()``
    for the jobs' timestamps)."""

    def __init__(self, retry: RetryPolicy | None = None, durations: Durations | None = None,
                 clock: Any = time):
        self.retry = retry or RetryPolicy()
        self.durations = durations or Durations()
        self.clock = clock

    def submitted(self, job: Job) -> None:
        if job.status is not JobStatus.QUEUED:
            raise JobStateError(f"job {job.id!r} is {job.status.name}, not QUEUED")
        job.timestamps.setdefault("submitted", self.clock.time())

    def start(self, job: Job, worker: str | None = None) -> None:
        """Handed to ``worker`` (or to a runner, which names none)."""
        move(job, JobStatus.RUNNING)
        job.worker_name = worker if worker is not None else job.worker_name
        job.timestamps["started"] = self.clock.time()

    def timed(self, job: Job, seconds: float | None) -> None:
        """A run ended and its worker timed it (None: it did not say): the one feeding rule of
        the durations, whatever the run's status and whether it runs again."""
        job.duration = seconds
        self.durations.record(job.kwargs.get("budget"), seconds)

    def requeue(self, job: Job, costs_attempt: bool) -> None:
        """Back to QUEUED (its next run is attempt + 1 if this one counts)."""
        move(job, JobStatus.QUEUED)
        job.worker_name = None
        job.attempt += costs_attempt

    def finish(self, job: Job, status: JobStatus, result: Any = None,
               exception: str | None = None, info: dict | None = None,
               ran: tuple[float, float] | None = None) -> Job:
        """The job ends ``status``: ``result`` kept on SUCCESS only (``info`` is then its
        ``'info'``); ``exception`` and ``info`` (plain data) say why a failed one failed.
        ``ran``: when the run started and ended by its worker's word, where it says so."""
        move(job, status)
        ok = status is JobStatus.SUCCESS
        job.result = result if ok else None
        job.info = (result.get("info") if isinstance(result, dict) else None) if ok else info
        job.exception = exception
        if ran is not None:
            job.timestamps["started"] = ran[0]
        job.timestamps["finished"] = self.clock.time() if ran is None else ran[1]
        return job


__all__ = ["Lifecycle", "RetryPolicy", "Durations", "JobStateError", "move"]
