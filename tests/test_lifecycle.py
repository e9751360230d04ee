"""The one job lifecycle (ultrarun/lifecycle.py), as a pure model with a fake clock."""
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from ultrarun.dispatcher import Dispatcher
from ultrarun.errors import ConfigurationError
from ultrarun.job import Job, JobStatus
from ultrarun.lifecycle import JobStateError, Lifecycle, RetryPolicy
from ultrarun.runners import AbstractRunner


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def time(self) -> float:
        self.now += 1.0
        return self.now


def test_states_in_order_with_the_clock_s_timestamps() -> None:
    life = Lifecycle(clock=Clock())
    job = Job(id=1, kwargs={"budget": 2.0})
    life.submitted(job)
    life.start(job, "w1")
    assert job.status is JobStatus.RUNNING and job.worker_name == "w1"
    life.timed(job, 4.0)
    life.requeue(job, costs_attempt=True)
    assert (job.status, job.attempt, job.worker_name) == (JobStatus.QUEUED, 2, None)
    life.start(job, "w2")
    life.finish(job, JobStatus.CRASHED, {"loss": 1.0}, "boom", {"error": "boom"})
    assert job.result is None and job.info == {"error": "boom"} and job.exception == "boom"
    assert job.timestamps == {"submitted": 101.0, "started": 103.0, "finished": 104.0}
    assert life.durations.estimate(2.0) == 4.0, "the crashed run's time is learnt too"
    with pytest.raises(JobStateError, match="CRASHED to SUCCESS"):
        life.finish(job, JobStatus.SUCCESS, {"loss": 1.0})


@given(st.lists(st.sampled_from(list(JobStatus)), max_size=6))
def test_no_sequence_of_moves_skips_the_lifecycle(steps: list[JobStatus]) -> None:
    life, job = Lifecycle(clock=Clock()), Job(id=1, kwargs={})
    seen = [job.status]
    for to in steps:
        try:
            life.finish(job, to) if to.is_final else (
                life.start(job) if to is JobStatus.RUNNING else life.requeue(job, False))
        except JobStateError:
            continue
        seen.append(job.status)
    for before, after in zip(seen, seen[1:]):
        assert not before.is_final, f"{seen}: a final state moved on"
        assert after is not JobStatus.SUCCESS or before is JobStatus.RUNNING, seen


def test_one_retry_default_everywhere() -> None:
    """The dispatcher and the runners take their default from the one RetryPolicy."""
    import inspect

    default = RetryPolicy().max_retries
    for made in (Dispatcher.__init__, AbstractRunner.__init__):
        assert inspect.signature(made).parameters["max_retries"].default == default
    assert RetryPolicy(1, {JobStatus.CRASHED}).retries(JobStatus.CRASHED, 1)
    assert not RetryPolicy(1, {JobStatus.CRASHED}).retries(JobStatus.CRASHED, 2)
    assert not RetryPolicy(1).retries(JobStatus.CRASHED, 1)
    with pytest.raises(ConfigurationError, match="retry_on"):
        RetryPolicy(retry_on={JobStatus.LOST})
