"""Compute processes: every answer is the right call's, and nothing compute started outlives
its job (process mode of real worker processes, the limited caller, the process runner)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import runner_helpers_targets as targets
from conftest import wait_until
from ultrarun.job import JobStatus
from ultrarun.limits import LimitedCaller
from ultrarun.runners import ProcessRunner, TargetFunctionRunner, TrialInfo

PROCESS = ("--concurrent-type", "process")


def gone(pid: int) -> bool:
    """Whether the process ``pid`` has ended (a zombie nobody reaps counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as stream:
            return stream.read().rpartition(")")[2].split()[0] == "Z"
    except FileNotFoundError:
        return True


def pids_in(path: Path, timeout: float = 30.0) -> list[int]:
    """The pids a compute wrote to ``path`` (the grandchild's, then the compute process's)."""
    wait_until(path.exists, timeout=timeout, message=f"the compute to write {path}")
    return [int(p) for p in path.read_text().split()]


def assert_all_gone(pids: list[int], what: str) -> None:
    wait_until(lambda: all(gone(p) for p in pids), timeout=20,
               message=f"{what}: processes {[p for p in pids if not gone(p)]} to end")


# ------------------------------------------------------------------ one answer per call
def test_a_forking_compute_gives_every_job_its_own_result(cluster):
    """A compute whose fork returns, raises or forges an answer: each job still gets its own
    loss (2 x + 1) or ends CRASHED; the copy never answers a later job."""
    cluster.start_workers(1, "ProcessWorker", *PROCESS)
    d, results = cluster.dispatcher()
    forks = {1: "return", 3: "raise", 5: "forge", 7: "return"}
    for x in range(10):
        config = {"x": x, **({"fork": forks[x]} if x in forks else {})}
        d.submit_job(x, config=config, budget=1.0)
    jobs = results.wait_for(10, timeout=60)
    by_x = {job.kwargs["config"]["x"]: job for job in jobs}
    wrong = {x: (j.status.name, j.result) for x, j in by_x.items()
             if j.status is JobStatus.SUCCESS and j.result["loss"] != 2 * x + 1}
    assert not wrong, f"jobs given another job's answer: {wrong}"
    for x, job in by_x.items():
        if x != 5:  # the returning and raising copies are stopped before they can answer
            assert job.status is JobStatus.SUCCESS, (x, job.status, job.exception)
    assert by_x[5].status in (JobStatus.SUCCESS, JobStatus.CRASHED)
    if by_x[5].status is JobStatus.CRASHED:
        assert "answer" in by_x[5].exception, by_x[5].exception


def test_a_forged_answer_is_crashed_and_the_child_restarted():
    """Bytes on the answer pipe that are not the answer to this call: CRASHED with a message
    that says so, and the next call runs in a fresh child with its own answer."""
    caller = LimitedCaller(targets.forges_answer, None, None)
    try:
        first = caller.call({"x": 1})
        assert first.status is JobStatus.CRASHED, first
        assert "not the answer to this call" in first.info["error"]
        second = caller.call({"x": 2, "data": b""})
        assert second.status is JobStatus.SUCCESS and second.value == 2.0, second
        assert second.info is None
    finally:
        caller.close()


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300), x=st.integers(0, 10 ** 6))
def test_whatever_is_written_on_the_pipe_no_call_gets_a_wrong_answer(caller, data, x):
    out = caller.call({"x": x, "data": data})
    if out.status is JobStatus.SUCCESS:
        assert out.value == float(x)
        assert not data, "bytes before the answer went unnoticed"
    else:
        assert out.status is JobStatus.CRASHED, out
        assert "answer" in out.info["error"], out.info


@pytest.fixture(scope="module")
def caller():
    caller = LimitedCaller(targets.forges_answer, 20.0, None)
    yield caller
    caller.close()


def test_a_child_started_from_a_thread_outlives_the_thread():
    """Nothing is bound to the thread that started a child (unlike PR_SET_PDEATHSIG)."""
    caller = LimitedCaller(os.getpid, None, None)
    try:
        first: list = []
        thread = threading.Thread(target=lambda: first.append(caller.call()))
        thread.start()
        thread.join(timeout=60)
        second = caller.call()
        assert first[0].status is second.status is JobStatus.SUCCESS, (first, second)
        assert second.value == first[0].value  # the same child served both
    finally:
        caller.close()


# ------------------------------------------------------------------ nothing outlives its job
def test_timeout_ends_what_compute_started(cluster, tmp_path):
    cluster.start_workers(1, "ProcessWorker", *PROCESS, "--time-limit", "1")
    d, results = cluster.dispatcher()
    d.submit_job("slow", config={"x": 1, "spawn": str(tmp_path / "pids")}, budget=1.0)
    job, = results.wait_for(1, timeout=60)
    assert job.status is JobStatus.TIMEOUT, job.exception
    assert_all_gone(pids_in(tmp_path / "pids"), "after TIMEOUT")


@pytest.mark.parametrize("busy_in_c", [False, True])
def test_worker_death_ends_what_compute_started(cluster, tmp_path, busy_in_c):
    """SIGKILL of the worker (nothing of it runs any more), while compute sleeps or is busy in
    one C call that holds the GIL."""
    worker, = cluster.start_workers(1, "ProcessWorker", *PROCESS)
    d, _ = cluster.dispatcher()
    d.submit_job("busy", config={"x": 1, "spawn": str(tmp_path / "pids"),
                                 "busy_in_c": busy_in_c}, budget=1.0)
    pids = pids_in(tmp_path / "pids")
    os.kill(worker.pid, signal.SIGKILL)
    worker.proc.wait(timeout=20)
    assert_all_gone(pids, "after the worker was killed")


def test_worker_shutdown_ends_the_running_compute(cluster, tmp_path):
    """SIGTERM: the worker leaves gracefully, and a job still running after ``--grace`` is
    handed back; the worker then shuts down, ending compute's processes with it."""
    worker, = cluster.start_workers(1, "ProcessWorker", *PROCESS, "--grace", "1")
    d, _ = cluster.dispatcher()
    d.submit_job("busy", config={"x": 1, "spawn": str(tmp_path / "pids")}, budget=1.0)
    pids = pids_in(tmp_path / "pids")
    worker.proc.terminate()  # the worker leaves, then shuts down
    assert worker.proc.wait(timeout=30) == 0, worker.log()
    assert_all_gone(pids, "after the worker shut down")


def test_limited_caller_timeout_memout_and_close_end_the_group(tmp_path):
    """The runners' limited calls: TIMEOUT, MEMOUT, and close() during a call (CANCELLED)."""
    for status, limits, extra in ((JobStatus.TIMEOUT, (1.0, None), {}),
                                  (JobStatus.MEMOUT, (None, 300), {"mb": 2000})):
        caller = LimitedCaller(targets.spawns_sleep, *limits)
        try:
            out = caller.call({"pids": str(tmp_path / status.name), **extra})
            assert out.status is status, out
            assert_all_gone(pids_in(tmp_path / status.name), f"after {status.name}")
        finally:
            caller.close()
    caller = LimitedCaller(targets.spawns_sleep, None, None)
    outcome: list = []
    thread = threading.Thread(target=lambda: outcome.append(caller.call({"pids": str(tmp_path / "b")})))
    thread.start()
    try:
        pids = pids_in(tmp_path / "b")
        caller.close()
        thread.join(timeout=20)
        assert not thread.is_alive(), "close() did not end the running call"
        assert outcome[0].status is JobStatus.CANCELLED, outcome
        assert_all_gone(pids, "after close()")
    finally:
        caller.close()
        thread.join(timeout=20)


def test_process_runner_cancel_ends_what_the_target_started(tmp_path):
    with ProcessRunner(TargetFunctionRunner(targets.spawns_sleep), n_workers=1) as runner:
        runner.submit_trial(TrialInfo({"pids": str(tmp_path / "pids")}))
        pids = pids_in(tmp_path / "pids")
        runner.cancel_pending()
        assert_all_gone(pids, "after cancel")


def test_process_runner_death_ends_what_the_target_started(tmp_path):
    """The runner's process is SIGKILLed while a pool process runs a target that started
    ``sleep 300``: the pool process and the sleep end too."""
    script = tmp_path / "runner.py"
    script.write_text(
        "import sys, time\n"
        "import runner_helpers_targets as targets\n"
        "from ultrarun.runners import ProcessRunner, TargetFunctionRunner, TrialInfo\n"
        "if __name__ == '__main__':\n"
        "    runner = ProcessRunner(TargetFunctionRunner(targets.spawns_sleep), n_workers=1)\n"
        "    runner.submit_trial(TrialInfo({'pids': sys.argv[1]}))\n"
        "    runner.wait(60)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(Path(targets.__file__).parent), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path / "pids")], env=env)
    try:
        pids = pids_in(tmp_path / "pids")
        proc.kill()
        proc.wait(timeout=20)
        assert_all_gone(pids, "after the runner's process was killed")
    finally:
        proc.kill()
        proc.wait(timeout=20)
