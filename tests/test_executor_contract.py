"""The executor contract (docs/architecture.md, "The executor contract"), run against every
executor the master can drive: the Pyro dispatcher with real worker processes, and a runner
adapted once (``as_executor()``) on a process pool and on threads.

Each test asserts what the master relies on: every job reported exactly once with its own
result, the retry policy applied once, cancel and shutdown reporting what did not run, and the
durations the deadline logic reads.
"""
from __future__ import annotations

import collections
from pathlib import Path
from typing import Any, Iterator

import pytest

import runner_helpers_targets as targets
from conftest import Collector, wait_until
from ultrarun.dispatcher import Dispatcher
from ultrarun.executor import Executor, RetryPolicy
from ultrarun.job import JobStatus
from ultrarun.local import LocalCluster
from ultrarun.runners import ProcessRunner, TargetFunctionRunner, ThreadRunner

N_WORKERS = 2


@pytest.fixture(params=["dispatcher", "process-runner", "thread-runner"])
def executor(request: pytest.FixtureRequest) -> Iterator[tuple[Executor, Collector]]:
    """A started executor with two workers, reporting to a Collector; always torn down."""
    results = Collector()
    closers: list[Any] = []
    try:
        if request.param == "dispatcher":
            cluster = LocalCluster(n_workers=N_WORKERS, eval_func=targets.contract).start()
            closers.append(cluster.shutdown)
            made: Executor = Dispatcher(results, run_id=cluster.run_id,
                                        nameserver=cluster.nameserver.host,
                                        nameserver_port=cluster.nameserver_port,
                                        secret=cluster.secret)
        else:
            kind = ProcessRunner if request.param == "process-runner" else ThreadRunner
            runner = kind(TargetFunctionRunner(targets.contract), n_workers=N_WORKERS)
            closers.append(runner.close)
            made = runner.as_executor().bind(results)
        closers.append(lambda: made.shutdown())
        made.start()
        wait_until(lambda: made.number_of_workers() == N_WORKERS, timeout=60,
                   message=f"{N_WORKERS} workers")
        yield made, results
    finally:
        for close in reversed(closers):
            close()


def _started(tally: Path) -> int:
    return len(tally.read_text().splitlines()) if tally.exists() else 0


def _once_each(results: Collector, ids: list) -> dict:
    """The jobs reported, by id; fails if any id was reported twice or never."""
    counts = collections.Counter(job.id for job in results.jobs)
    assert sorted(counts) == sorted(ids) and set(counts.values()) == {1}, counts
    return {job.id: job for job in results.jobs}


def test_every_job_is_reported_once_with_its_own_result(executor):
    made, results = executor
    for i in range(10):
        made.submit_job(i, config={"x": i}, budget=2.0)
    results.wait_for(10, timeout=60)
    made.shutdown()
    jobs = _once_each(results, list(range(10)))
    for i, job in jobs.items():
        assert job.status is JobStatus.SUCCESS and job.result["loss"] == 2.0 * i
        assert job.timestamps["submitted"] <= job.timestamps["started"] \
            <= job.timestamps["finished"]
    assert made.durations.estimate(2.0) is not None, "the deadline logic learns job lengths"


def test_a_crashing_job_retried_once_runs_exactly_twice(executor, tmp_path):
    made, results = executor
    made.retry = RetryPolicy(max_retries=1, retry_on=frozenset({JobStatus.CRASHED}))
    tally = tmp_path / "tally"
    made.submit_job("crash", config={"x": 1, "crash": True, "tally": str(tally)}, budget=1.0)
    job, = results.wait_for(1, timeout=60)
    assert job.status is JobStatus.CRASHED and job.result is None
    assert "crash on purpose" in job.exception
    made.shutdown()
    assert _started(tally) == 2 and len(results.jobs) == 1


def test_cancel_reports_every_queued_job_cancelled_once(executor, tmp_path):
    made, results = executor
    tally = tmp_path / "tally"
    for i in range(N_WORKERS):  # these occupy every worker
        made.submit_job(("long", i), config={"x": i, "sleep": 3.0, "tally": str(tally)},
                        budget=1.0)
    wait_until(lambda: _started(tally) == N_WORKERS, timeout=60, message="the long jobs")
    queued = [("queued", i) for i in range(4)]
    for job_id in queued:
        made.submit_job(job_id, config={"x": 1, "tally": str(tally)}, budget=1.0)
    assert made.cancel_queued_jobs() >= len(queued)
    results.wait_for(N_WORKERS + len(queued), timeout=60)
    made.shutdown()
    jobs = _once_each(results, [("long", i) for i in range(N_WORKERS)] + queued)
    assert all(jobs[job_id].status is JobStatus.CANCELLED for job_id in queued)
    assert _started(tally) == N_WORKERS, "no queued job ran after its cancel"


def test_shutdown_reports_what_is_queued_or_running_cancelled(executor, tmp_path):
    made, results = executor
    tally = tmp_path / "tally"
    ids = [("job", i) for i in range(N_WORKERS + 2)]
    for job_id in ids:
        made.submit_job(job_id, config={"x": 1, "sleep": 30.0, "tally": str(tally)},
                        budget=1.0)
    wait_until(lambda: _started(tally) == N_WORKERS, timeout=60, message="the running jobs")
    made.shutdown()
    made.shutdown()  # idempotent
    results.wait_for(len(ids), timeout=20)  # long before the 30 s jobs could have ended
    jobs = _once_each(results, ids)
    assert all(job.status is JobStatus.CANCELLED for job in jobs.values())


def test_a_failed_job_has_no_result_and_its_time_is_learnt(executor):
    """One lifecycle: a failed job ends with ``result`` None, its states and timestamps in
    order, and the durations learn from every compute a worker timed, a crash included."""
    made, results = executor
    made.retry = RetryPolicy(max_retries=0)
    made.submit_job("crash", config={"x": 1, "crash": True}, budget=3.0)
    job, = results.wait_for(1, timeout=60)
    made.shutdown()
    assert job.status is JobStatus.CRASHED and job.result is None and job.loss is None
    assert "crash on purpose" in job.exception
    assert job.timestamps["submitted"] <= job.timestamps["started"] <= job.timestamps["finished"]
    assert job.duration is not None and job.duration >= 0
    assert made.durations.estimate(3.0) is not None, "a crashed compute held its worker too"
