"""DeepHyper's evaluator, the way its documentation uses it: ``Evaluator.create``, ``submit``,
``gather``, then ``job.args`` and ``job.output``."""
from __future__ import annotations

import pytest

from ultrarun.compat.deephyper.evaluator import Evaluator, RunningJob


def run(job: RunningJob) -> float:
    """DeepHyper maximises the objective it is given."""
    return -(job.parameters["x"] - 2.0) ** 2


def run_with_metadata(job: RunningJob) -> dict:
    if job["x"] < 0:
        return "F_negative_x"
    return {"objective": job["x"], "metadata": {"epochs": 3}}


@pytest.mark.parametrize("method, kwargs", [("serial", {"num_workers": 2}),
                                            ("thread", {"num_workers": 2})])
def test_create_submit_gather_and_read_args_and_output(method, kwargs):
    evaluator = Evaluator.create(run, method=method, method_kwargs=kwargs)
    try:
        assert evaluator.num_workers == 2
        evaluator.submit([{"x": float(x)} for x in range(4)])
        first = evaluator.gather("BATCH", size=1)
        rest = evaluator.gather("ALL")
    finally:
        evaluator.close()
    jobs = sorted(first + rest, key=lambda job: job.args["x"])
    assert [job.args for job in jobs] == [{"x": float(x)} for x in range(4)]
    assert [job.output["objective"] for job in jobs] == [-4.0, -1.0, 0.0, -1.0]
    assert all(job.objective == job.output["objective"] for job in jobs)
    assert all(job.parameters is job.args for job in jobs)


def test_metadata_and_failures():
    evaluator = Evaluator.create(run_with_metadata, method="serial")
    try:
        evaluator.submit([{"x": 1.5}, {"x": -1.0}])
        ok, failed = sorted(evaluator.gather("ALL"), key=lambda job: job.args["x"], reverse=True)
    finally:
        evaluator.close()
    assert ok.objective == 1.5 and ok.metadata["epochs"] == 3
    assert "timestamp_submit" in ok.metadata and "timestamp_gather" in ok.metadata
    assert failed.objective == "F_crashed" and "F_negative_x" in failed.exception
