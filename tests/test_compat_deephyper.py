"""DeepHyper's evaluator and searches on ultrarun, the way DeepHyper's README and evaluator
documentation use them: scripts with their ``deephyper.evaluator`` imports changed to
``ultrarun.compat.deephyper.evaluator``, DeepHyper's CBO search taking the evaluator, and the
same evaluator script with DeepHyper absent."""
from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest

from conftest import ROOT_DIR, TESTS
from ultrarun.compat.deephyper.evaluator import HPOJob, Evaluator, RunningJob

SCRIPTS = TESTS / "data" / "compat_scripts"
HAVE_DEEPHYPER = importlib.util.find_spec("deephyper") is not None
needs_deephyper = pytest.mark.skipif(not HAVE_DEEPHYPER, reason="DeepHyper is not installed "
                                     "(pip install 'ultrarun[deephyper]')")


def run(job: RunningJob) -> float:
    """DeepHyper maximises the objective it is given."""
    return -(job.parameters["x"] - 2.0) ** 2


def run_with_metadata(job: RunningJob) -> dict:
    if job["x"] < 0:
        return "F_negative_x"
    return {"objective": job["x"], "metadata": {"epochs": 3}}


async def run_async(job: RunningJob) -> float:
    return job["x"] * 2


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
    assert [job.output for job in jobs] == [-4.0, -1.0, 0.0, -1.0]


def test_a_searchs_jobs_metadata_and_failures():
    evaluator = Evaluator.create(run_with_metadata, method="thread")
    evaluator._job_class = HPOJob  # what DeepHyper's searches do
    try:
        evaluator.submit([{"x": 1.5}, {"x": -1.0}])
        ok, failed = sorted(evaluator.gather("ALL"), key=lambda job: job.args["x"], reverse=True)
    finally:
        evaluator.close()
    assert ok.objective == 1.5 and ok.metadata["epochs"] == 3
    assert "timestamp_submit" in ok.metadata and "timestamp_gather" in ok.metadata
    assert str(failed.objective).startswith("F_")


def test_async_run_functions_are_awaited():
    evaluator = Evaluator.create(run_async, method="thread", method_kwargs={"num_workers": 2})
    try:
        evaluator.submit([{"x": 1.0}, {"x": 3.0}])
        outputs = sorted(job.output for job in evaluator.gather("ALL"))
    finally:
        evaluator.close()
    assert outputs == [2.0, 6.0]


@needs_deephyper
def test_the_evaluator_is_deephypers_and_a_failure_is_gathered_not_raised():
    import deephyper.evaluator

    def broken(job):
        raise RuntimeError("no luck")

    evaluator = Evaluator.create(broken, method="thread")
    try:
        assert isinstance(evaluator, deephyper.evaluator.Evaluator)
        evaluator._job_class = deephyper.evaluator.HPOJob
        evaluator.submit([{"x": 1}])
        (job,) = evaluator.gather("ALL")
    finally:
        evaluator.close()
    assert job.objective == "F_CRASHED" and "no luck" in job.metadata["error"]


# ------------------------------------------------------------------ the scripts, as users run them
def run_script(name, tmp_path, *args, hide_deephyper=False):
    """A DeepHyper-style script with ``deephyper.evaluator`` changed to
    ``ultrarun.compat.deephyper.evaluator`` in its imports and nothing else, run in
    ``tmp_path``; its last line of output, as JSON."""
    text = re.sub(r"^(\s*from\s+)deephyper\.evaluator\b", r"\1ultrarun.compat.deephyper.evaluator",
                  (SCRIPTS / f"deephyper_{name}.py").read_text(), flags=re.MULTILINE)
    script = tmp_path / f"changed_{name}.py"
    script.write_text(text)
    env = dict(os.environ, HOME=str(tmp_path / "home"),
               PYTHONPATH=os.pathsep.join([str(ROOT_DIR), os.environ.get("PYTHONPATH", "")]))
    if hide_deephyper:  # as if it were not installed
        command = [sys.executable, "-c", "import runpy, sys; sys.modules['deephyper'] = None; "
                   f"sys.argv = {[str(script), *args]!r}; "
                   f"runpy.run_path({str(script)!r}, run_name='__main__')"]
    else:
        command = [sys.executable, str(script), *args]
    proc = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@needs_deephyper
@pytest.mark.slow
def test_readme_cbo_search_takes_the_evaluator(tmp_path):
    out = run_script("readme", tmp_path, "thread")
    assert out["evaluator"] == "deephyper.evaluator._evaluator"  # a DeepHyper Evaluator
    assert out["rows"] >= 12 and out["statuses"] == ["DONE"]
    assert {"p:x", "p:b", "p:function", "objective", "job_id", "job_status",
            "m:timestamp_submit", "m:timestamp_gather"} <= set(out["columns"])
    results = tmp_path / "search" / "results.csv"
    assert results.exists() and results.read_text().startswith("p:")


@needs_deephyper
@pytest.mark.slow
def test_a_search_on_ultraruns_cluster(tmp_path):
    """CBO's evaluations run in Pyro worker processes started for the evaluator."""
    out = run_script("cluster", tmp_path)
    assert out["rows"] >= 8 and out["statuses"] == ["DONE"]
    assert out["numbers"] + out["failed"] == out["rows"]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["thread", "process"])
@pytest.mark.parametrize("hide", [False, True], ids=["deephyper", "without-deephyper"])
def test_evaluator_docs_profile_async_csv_and_cancel_at_close(method, hide, tmp_path):
    if not hide and not HAVE_DEEPHYPER:
        pytest.skip("DeepHyper is not installed (pip install 'ultrarun[deephyper]')")
    out = run_script("evaluator_docs", tmp_path, method, hide_deephyper=hide)
    assert out["outputs"] == [-4.0, -1.0, -1.0, -0.0] and out["profiled"]
    assert out["cancelled"] == ["CANCELLED"]  # submitted, never gathered, still running
    assert out["doubled"] == [2.0, 5.0]
    assert out["csv_rows"] == 5  # four done and the cancelled one
    assert {"p:x", "job_id", "job_status", "m:timestamp_submit",
            "m:timestamp_gather"} <= set(out["csv_columns"])
