"""What a runner runs and what comes out (the shape of SMAC3's trial types)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

from ..job import JobStatus

Cost = Union[float, list[float]]


@dataclass(frozen=True)
class TrialInfo:
    """What to run: a configuration on an instance, seed and budget (as in SMAC3)."""

    config: Any
    instance: str | None = None
    seed: int | None = None
    budget: float | None = None
    additional_info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrialValue:
    """What came out: cost(s), timings, final status and extra information (as in SMAC3).

    ``time`` is the wall-clock runtime of the target, ``cpu_time`` its CPU time (of the process
    that ran it), ``starttime``/``endtime`` are epoch seconds. Failures carry ``error`` and
    ``traceback`` in ``additional_info``.
    """

    cost: Cost
    time: float = 0.0
    cpu_time: float = 0.0
    status: JobStatus = JobStatus.SUCCESS
    starttime: float = 0.0
    endtime: float = 0.0
    additional_info: dict[str, Any] = field(default_factory=dict)


def worker_time(value: TrialValue) -> float | None:
    """Seconds the run held its worker, or None for a trial that did not run to an end (LOST,
    CANCELLED: the runner made that value up)."""
    return None if value.status in (JobStatus.LOST, JobStatus.CANCELLED) else value.time


@dataclass(frozen=True)
class WorkerLost:
    """Outcome a backend reports when the process running a trial vanished.

    That is an infrastructure failure: the base class resubmits the trial up to ``max_retries``
    times when ``retry`` is true, then reports it as LOST. A backend whose platform already
    retried (Dask's ``allowed-failures``) passes ``retry=False``.
    """

    reason: str
    retry: bool = True


#: What ``_poll`` may return for a trial: the pair from ``run_wrapper``, an exception, or a loss.
Outcome = Union[tuple[TrialInfo, TrialValue], BaseException, WorkerLost]


__all__ = ["Cost", "TrialInfo", "TrialValue", "WorkerLost", "Outcome", "worker_time"]
