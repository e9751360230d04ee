"""Evaluators: the DeepHyper-shaped front, run against every runner backend."""
from __future__ import annotations

import csv
import io
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

import runner_helpers_targets as targets
from ultrarun.errors import ConfigurationError
from ultrarun.job import Job, JobStatus
from ultrarun.runners import (Callback, CSVLoggerCallback, Evaluator, TqdmCallback,
                              evaluator_names, register_evaluator)

METHODS = ["serial", "thread", "process", "dask", "pyro"]
DEADLINE = 30.0


class Recorder(Callback):
    def __init__(self) -> None:
        self.launched: list[int] = []
        self.done: list[int] = []

    def on_launch(self, job: Job) -> None:
        self.launched.append(job.id)

    def on_done(self, job: Job) -> None:
        self.done.append(job.id)


@pytest.fixture(params=METHODS)
def create(request: pytest.FixtureRequest) -> Iterator[Callable[..., Evaluator]]:
    """``create(run_function, **method_kwargs)`` for the method under test; closes them all."""
    made: list[Evaluator] = []

    def factory(run_function: Callable[..., Any], **method_kwargs: Any) -> Evaluator:
        if request.param == "dask":
            method_kwargs.setdefault("dask_client", request.getfixturevalue("dask_client"))
        elif request.param != "serial":
            method_kwargs.setdefault("num_workers", 2)
        evaluator = Evaluator.create(run_function, method=request.param,
                                     method_kwargs=method_kwargs)
        made.append(evaluator)
        return evaluator

    factory.method = request.param  # type: ignore[attr-defined]
    yield factory
    for evaluator in made:
        evaluator.close()


def test_submit_gather_all(create: Callable[..., Evaluator]) -> None:
    recorder = Recorder()
    evaluator = create(targets.quadratic, callbacks=[recorder])
    args = [{"x": i / 4, "n": i} for i in range(6)]
    jobs = evaluator.submit(args)
    assert [job.id for job in jobs] == [1, 2, 3, 4, 5, 6]
    done = evaluator.gather("ALL")
    assert sorted(job.id for job in done) == [1, 2, 3, 4, 5, 6]
    for job in done:
        assert job.status is JobStatus.SUCCESS
        assert job.loss == pytest.approx((job.kwargs["x"] - 0.5) ** 2 + job.kwargs["n"])
        assert {"submitted", "started", "finished", "gathered"} <= set(job.timestamps)
    assert (evaluator.num_jobs_submitted, evaluator.num_jobs_gathered) == (6, 6)
    assert evaluator.num_workers >= 1
    assert sorted(recorder.launched) == sorted(recorder.done) == [1, 2, 3, 4, 5, 6]
    assert evaluator.gather("ALL") == []


def test_gather_batch_returns_at_least_size(create: Callable[..., Evaluator]) -> None:
    evaluator = create(targets.sleeps)
    evaluator.submit([{"sleep": 0.05, "x": i} for i in range(5)])
    first = evaluator.gather("BATCH", size=2)
    assert len(first) >= 2
    rest = evaluator.gather("BATCH", size=10)  # more than outstanding: reduced to them
    assert len(first) + len(rest) == 5
    assert sorted(job.loss for job in first + rest) == [0, 1, 2, 3, 4]


def test_failures_are_statuses(create: Callable[..., Evaluator]) -> None:
    evaluator = create(targets.raises)
    job, = evaluator.submit([{"x": 3}])
    done, = evaluator.gather("ALL")
    assert done is job and job.status is JobStatus.CRASHED
    assert "ValueError: bad x=3" in job.exception and job.loss is None


def test_walltime_limit(create: Callable[..., Evaluator]) -> None:
    evaluator = create(targets.sleeps, walltime_limit=1.0)
    evaluator.submit([{"sleep": 20}, {"sleep": 0, "x": 2}])
    statuses = {job.kwargs["sleep"]: job.status for job in evaluator.gather("ALL")}
    assert statuses == {20: JobStatus.TIMEOUT, 0: JobStatus.SUCCESS}


def test_timeout_cancels_running_jobs(create: Callable[..., Evaluator]) -> None:
    evaluator = create(targets.sleeps)
    if create.method == "serial":  # type: ignore[attr-defined]
        evaluator.submit([{"sleep": 0, "x": 1}])
        evaluator.set_timeout(0.2)
        time.sleep(0.3)  # let the deadline pass (this is the thing under test, not a sync)
        late, = evaluator.submit([{"sleep": 0, "x": 2}])
        done = evaluator.gather("ALL")
        assert late.status is JobStatus.CANCELLED and len(done) == 2
        return
    evaluator.submit([{"sleep": 0.0, "x": 0}])
    evaluator.gather("ALL")  # workers are up, so the quick job below cannot miss the deadline
    evaluator.set_timeout(1.0)
    # Threads and running Dask tasks cannot be interrupted (the job is reported CANCELLED but
    # occupies its worker to the end), so keep their long job short; processes are killed.
    long_sleep = DEADLINE if create.method == "process" else 2.0  # type: ignore[attr-defined]
    evaluator.submit([{"sleep": 0.0, "x": 1}, {"sleep": long_sleep, "x": 2}])
    done = evaluator.gather("ALL")  # a gather that waited for the long job would see it succeed
    assert {job.kwargs["x"]: job.status for job in done} == {1: JobStatus.SUCCESS,
                                                             2: JobStatus.CANCELLED}


def test_csv_dump_parses_back(create: Callable[..., Evaluator], tmp_path: Path) -> None:
    log = tmp_path / "log.csv"
    bar = io.StringIO()
    evaluator = create(targets.with_info,
                       callbacks=[CSVLoggerCallback(str(log)), TqdmCallback(file=bar, mininterval=0)])
    evaluator.submit([{"x": 1.0}, {"x": 2.0}, {"x": "bad"}])
    evaluator.gather("ALL")
    path = evaluator.dump_jobs_done_to_csv(log_dir=str(tmp_path / "out"), filename="results.csv")
    with open(path, newline="") as stream:
        rows = {row["job_id"]: row for row in csv.DictReader(stream)}
    assert set(rows) == {"1", "2", "3"}
    assert float(rows["1"]["loss"]) == 1.0 and rows["1"]["status"] == "SUCCESS"
    assert rows["2"]["p:x"] == "2.0"
    assert rows["3"]["status"] == "CRASHED" and rows["3"]["loss"] == "" and rows["3"]["error"]
    assert float(rows["1"]["m:gathered"]) >= float(rows["1"]["m:submitted"]) >= 0
    with open(log, newline="") as stream:
        assert sorted(row["job_id"] for row in csv.DictReader(stream)) == ["1", "2", "3"]
    assert "3/3" in bar.getvalue()


def test_context_manager_closes(create: Callable[..., Evaluator]) -> None:
    with create(targets.quadratic) as evaluator:
        evaluator.submit([{"x": 0.5}])
        assert evaluator.gather("ALL")[0].loss == 0.0
    evaluator.close()
    with pytest.raises(ConfigurationError, match="closed"):
        evaluator.submit([{"x": 1}])


# ---------------------------------------------------------------------- argument checks
@pytest.mark.parametrize("call, message", [
    (lambda: Evaluator.create(targets.noop, method="nope"), "unknown evaluator method"),
    (lambda: Evaluator.create(targets.noop, method_kwargs=[1]), "method_kwargs"),
    (lambda: Evaluator.create(targets.noop).gather("SOME"), "gather type"),
    (lambda: Evaluator.create(targets.noop).gather("BATCH", size=0), "size"),
    (lambda: Evaluator.create(targets.noop).submit({"x": 1}), "list of dicts"),
    (lambda: Evaluator.create(targets.noop).submit([{"x": 1}, 5]), "items \\[1\\]"),
    (lambda: Evaluator.create(targets.noop).set_timeout(-1), "timeout"),
    (lambda: Evaluator.create(targets.noop, "serial", {"num_workers": 0}), "num_workers"),
])
def test_bad_arguments_are_configuration_errors(call: Callable[[], Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        call()


def test_registration_hook() -> None:
    register_evaluator("test-method", lambda fn, **kw: Evaluator(fn, backend="thread", **kw))
    assert {"serial", "thread", "process", "dask", "mpicomm", "ray", "test-method"} <= set(
        evaluator_names())
    with Evaluator.create(targets.quadratic, "test-method", {"num_workers": 1}) as evaluator:
        evaluator.submit([{"x": 0.5}])
        assert evaluator.gather("ALL")[0].loss == 0.0
    from ultrarun.runners import _evaluator

    del _evaluator._EVALUATORS["test-method"]


def test_run_function_kwargs() -> None:
    with Evaluator.create(targets.quadratic, method_kwargs={
            "run_function_kwargs": {"seed": 1}}) as evaluator:
        evaluator.submit([{"x": 1.5}])
        assert evaluator.gather("ALL")[0].loss == 1.0


def test_ray_evaluator() -> None:
    pytest.importorskip("ray")
    with Evaluator.create(targets.quadratic, "ray", {"num_workers": 2}) as evaluator:
        evaluator.submit([{"x": 0.5}, {"x": 1.5}])
        jobs = evaluator.gather("ALL")
        assert all(job.status is JobStatus.SUCCESS for job in jobs), [j.exception for j in jobs]
        assert sorted(job.loss for job in jobs) == [0.0, 1.0]


def test_a_failed_job_has_no_result_and_keeps_its_info() -> None:
    """The one lifecycle: a failed job's ``result`` is None on every executor; why it failed
    is ``exception`` and ``info`` (plain data); a success's ``info`` is its result's."""
    with Evaluator.create(targets.with_info, method="serial") as evaluator:
        evaluator.submit([{"x": 1.0}, {"x": "bad"}])
        ok, bad = sorted(evaluator.gather("ALL"), key=lambda job: job.id)
    assert ok.status is JobStatus.SUCCESS and ok.info is ok.result["info"]
    assert bad.status is JobStatus.CRASHED and bad.result is None and bad.loss is None
    assert "ValueError" in bad.info["error"] and bad.exception
    assert bad.timestamps["submitted"] <= bad.timestamps["started"] <= bad.timestamps["finished"]
