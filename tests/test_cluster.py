"""The first day on a batch cluster, with the defaults (issue 26): real name servers, worker
processes and masters, nothing tuned. docs/cluster.md describes what these tests show."""
from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest
from ConfigSpace import ConfigurationSpace, Constant, Float

from conftest import wait_until
from ultrarun.frontends import RandomSearch
from ultrarun.job import JobStatus

pytestmark = pytest.mark.slow


def space(**constants: str) -> ConfigurationSpace:
    cs = ConfigurationSpace(seed=1)
    cs.add(Float("x", (0.0, 1.0)))
    for name, value in constants.items():
        cs.add(Constant(name, value))
    return cs


def master(cls, cluster, configspace, **kwargs):
    """A master as the README makes one: the run's name server and secret, nothing tuned."""
    return cls(configspace, run_id=cluster.run_id, nameserver=cluster.host,
               nameserver_port=cluster.port, secret=cluster.nameserver.secret,
               working_directory=cluster.dir, **kwargs)


class Running:
    """``master.run(...)`` in a thread, so the test can act on the run while it runs."""

    def __init__(self, master, **kwargs):
        self.master, self.result, self.error = master, None, None
        self.thread = threading.Thread(target=self._run, kwargs=kwargs, daemon=True)
        self.thread.start()

    def _run(self, **kwargs):
        try:
            self.result = self.master.run(**kwargs)
        except BaseException as exc:  # handed to the test
            self.error = exc

    def join(self, timeout: float, message: str):
        wait_until(lambda: not self.thread.is_alive(), timeout=timeout, message=message)
        if self.error is not None:
            raise self.error
        return self.result


def test_a_killed_worker_s_job_runs_elsewhere_at_once_with_the_default_ping_interval(cluster):
    """SIGKILL of a worker mid-job: its connection closes, the dispatcher probes it at once and
    the job runs on the other worker, long before a ping interval (the default) comes round."""
    flag = cluster.dir / "blocked"
    cluster.start_workers(2)
    bohb = master(RandomSearch, cluster, space(block_once=str(flag)), seed=1)
    try:
        run = Running(bohb, n_iterations=4, min_n_workers=2)
        wait_until(flag.exists, timeout=60, message="the first job to start")
        victim = int(wait_until(lambda: flag.read_text(), message="the victim's pid"))
        os.kill(victim, signal.SIGKILL)
        # the old default noticed at the next ping, 60 s on, and then ran the job again
        result = run.join(timeout=25, message="the run to end soon after the kill "
                                              "(the killed worker's job to run elsewhere)")
    finally:
        bohb.shutdown(shutdown_workers=False)
    runs = result.get_all_runs()
    assert len(runs) == 4 and all(r.loss is not None for r in runs)


def _names(cluster) -> dict[int, str]:
    """pid -> name of the run's workers in the name server."""
    from ultrarun.transport import parse_worker_name

    with cluster.client() as client:
        return {parse_worker_name(n)["pid"]: n
                for n in client.list(f"ultrarun.{cluster.run_id}.worker.")}


def test_n_workers_starts_a_dead_worker_again_and_unregisters_the_dead_one(cluster):
    """``ultrarun worker --n-workers 2``: a child SIGKILLed is logged with its signal, its name
    leaves the name server and a new child takes its place."""
    (supervisor,) = cluster.start_workers(1, "TestWorker", "--n-workers", "2", wait=False)
    def two(exclude: int | None = None):
        names = _names(cluster)
        return len(names) == 2 and exclude not in names and names

    first = wait_until(two, timeout=60, message="two workers to register")
    victim = min(first)
    os.kill(victim, signal.SIGKILL)
    after = wait_until(lambda: two(exclude=victim), timeout=60,
                       message="a new worker in the killed one's place, the dead one gone")
    assert set(after) - set(first), "a new process"
    log = wait_until(lambda: "starting worker" in supervisor.log() and supervisor.log(),
                     message="the restart to be logged")
    assert f"(pid {victim}) died: killed by SIGKILL" in log
    assert supervisor.proc.poll() is None


def test_n_workers_gives_up_a_worker_that_keeps_dying_and_says_why(cluster):
    """A worker that cannot start (here: a constructor argument it does not take) is started
    again up to --max-restarts times, then given up; the supervisor exits non-zero."""
    (supervisor,) = cluster.start_workers(1, "TestWorker", "--n-workers", "2",
                                          "--max-restarts", "1", "--arg", "nonsense=1",
                                          wait=False)
    code = supervisor.proc.wait(timeout=120)
    log = supervisor.log()
    assert code != 0
    assert "died: exit code" in log and "not starting it again" in log, log[-2000:]


def test_restart_back_off_doubles_and_a_long_life_resets_it():
    from ultrarun.supervisor import Restarts, describe_exit

    policy = Restarts(limit=3, base=1.0, cap=3.0, stable=60.0)
    assert [policy.after_death(0, 1.0) for _ in range(4)] == [1.0, 2.0, 3.0, None]
    assert policy.after_death(1, 5.0) == 1.0, "slots count apart"
    assert policy.after_death(0, 600.0) == 1.0, "a long life starts the count again"
    assert describe_exit(-9) == "killed by SIGKILL" and describe_exit(3) == "exit code 3"


def _pid_of(job) -> int:
    return job.result["info"]["pid"]


def test_sigterm_lets_the_running_job_finish_hands_nothing_back_and_exits_0(cluster):
    """A batch scheduler's SIGTERM before the walltime: the worker takes no new job, finishes
    the one it runs (its result counts, first attempt), leaves the name server and exits 0."""
    procs = cluster.start_workers(2)
    d, got = cluster.dispatcher(ping_interval=None)  # the default
    marker = cluster.marker("long")
    d.submit_job("long", config={"sleep": 3, "marker": str(marker), "x": 1.0}, budget=1.0)
    pid = int(wait_until(lambda: marker.exists() and marker.read_text(), message="the job"))
    (victim,) = [p for p in procs if p.pid == pid]
    os.kill(pid, signal.SIGTERM)
    wait_until(lambda: "is leaving" in victim.log(), message="the worker to say it leaves")
    d.submit_job("after", config={"x": 2.0}, budget=1.0)
    jobs = {j.id: j for j in got.wait_for(2, timeout=60)}
    assert jobs["long"].status is JobStatus.SUCCESS and jobs["long"].attempt == 1
    assert _pid_of(jobs["long"]) == pid, "its own result"
    assert _pid_of(jobs["after"]) != pid, "no new job for a leaving worker"
    assert victim.proc.wait(timeout=60) == 0
    assert pid not in _names(cluster)
    wait_until(lambda: d.number_of_workers() == 1, message="the worker to leave the pool")


def test_lifetime_hands_back_a_job_that_does_not_finish_within_the_grace(cluster):
    """--lifetime: at its end the worker leaves; a job longer than --grace is handed back and
    runs again on another worker at once; the worker exits 0 and is not restarted."""
    flag = cluster.dir / "blocked"
    (short,) = cluster.start_workers(1, "TestWorker", "--lifetime", "4", "--grace", "1")
    d, got = cluster.dispatcher(ping_interval=None)
    wait_until(lambda: d.number_of_workers() == 1, timeout=30, message="the first worker")
    d.submit_job("blocks", config={"block_once": str(flag), "x": 1.0}, budget=1.0)
    wait_until(flag.exists, timeout=30, message="the job to start on the short-lived worker")
    cluster.start_workers(1)
    assert short.proc.wait(timeout=60) == 0
    (job,) = got.wait_for(1, timeout=30)
    assert job.status is JobStatus.SUCCESS and job.attempt == 2
    assert "did not finish within the grace of 1s: handing it back" in short.log()


MASTER_SCRIPT = """
import sys
from ConfigSpace import ConfigurationSpace, Constant, Float
from ultrarun import HyperBand

cs = ConfigurationSpace(seed=1)
cs.add(Float("x", (0.0, 1.0)), Constant("sleep", 0.4))
master = HyperBand(cs, run_id={run_id!r}, min_budget=1, max_budget=9, eta=3, seed=1,
                   nameserver={host!r}, nameserver_port={port}, secret={secret!r},
                   working_directory={wd!r}, resume="--resume" in sys.argv)
result = master.run(n_iterations=1, min_n_workers=2)
master.shutdown(shutdown_workers=True)
runs = result.get_all_runs()
print("RUNS", len(runs), sum(r.loss is not None for r in runs))
"""


def _journal_results(path: Path) -> list[dict]:
    import json

    if not path.exists():
        return []
    return [r for r in map(json.loads, path.read_text().splitlines()) if r.get("t") == "result"]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_master_says_how_to_resume_keeps_the_workers_and_resumes_in_full(
        cluster, sig):
    """Ctrl-C (or SIGTERM) on `python master.py`: a one-line message that says how to resume,
    no traceback, the workers keep running, the jobs in flight are not journaled as failures;
    run again with resume=True, the run ends complete, and says what it replayed."""
    import subprocess
    import sys

    workers = cluster.start_workers(2)
    script = cluster.dir / "master.py"
    script.write_text(MASTER_SCRIPT.format(run_id=cluster.run_id, host=cluster.host,
                                           port=cluster.port, secret=cluster.nameserver.secret,
                                           wd=str(cluster.dir)))
    journal = cluster.dir / f"ultrarun-{cluster.run_id}.journal.jsonl"
    first = subprocess.Popen([sys.executable, str(script)], cwd=cluster.dir, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: len(_journal_results(journal)) >= 3, timeout=60,
                   message="three results in the journal")
        first.send_signal(sig)
        out, err = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode != 0
    assert "Traceback" not in err, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert "interrupted" in last and "resume=True" in last, err[-3000:]
    assert all(w.proc.poll() is None for w in workers), "the workers keep running"
    assert not [r for r in _journal_results(journal) if r["status"] == "CANCELLED"]
    done_before = len(_journal_results(journal))

    again = subprocess.run([sys.executable, str(script), "--resume"], cwd=cluster.dir,
                           text=True, capture_output=True, timeout=120)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"{done_before} results replayed" in again.stderr, again.stderr[-3000:]
    assert "RUNS 13 13" in again.stdout, (again.stdout, again.stderr[-3000:])


def test_a_run_where_every_job_failed_says_so_and_the_readme_idiom_names_the_failure(
        cluster, caplog):
    """Every job raises: the run logs an error with the first traceback, and README's
    ``get_id2config_mapping()[get_incumbent_id()]`` raises an error that names the failures
    and shows the traceback, not ``KeyError: None``."""
    import logging

    cluster.start_workers(2)
    rs = master(RandomSearch, cluster, space(mode="crash"), seed=1)
    try:
        with caplog.at_level(logging.ERROR, logger="ultrarun.master"):
            result = rs.run(n_iterations=3, min_n_workers=2)
    finally:
        rs.shutdown(shutdown_workers=False)
    with pytest.raises(KeyError) as info:
        result.get_id2config_mapping()[result.get_incumbent_id()]
    text = str(info.value)
    assert "no run finished with a loss" in text and "3 of 3 runs failed (CRASHED: 3)" in text, text
    assert "ValueError: crash on purpose" in text and "Traceback" in text, text
    assert any("no run finished with a loss" in r.getMessage() for r in caplog.records)
    with pytest.raises(KeyError, match="no run finished with a loss"):
        result.get_runs_by_id(result.get_incumbent_id())


def test_a_master_with_a_wrong_run_id_names_the_runs_that_have_workers(cluster, caplog):
    import logging

    from ultrarun.errors import UltrarunError

    cluster.start_workers(2)
    wrong = RandomSearch(space(), run_id="exp-typo", nameserver=cluster.host,
                         nameserver_port=cluster.port, secret=cluster.nameserver.secret,
                         working_directory=cluster.dir)
    try:
        with caplog.at_level(logging.INFO, logger="ultrarun.master"):
            with pytest.raises(UltrarunError) as info:
                wrong.run(n_iterations=1, min_n_workers=1, min_n_workers_timeout=2)
    finally:
        wrong.shutdown()
    hint = f"the name server has workers of run(s) {cluster.run_id} (2): is the run id right?"
    assert hint in str(info.value)
    assert any(hint in r.getMessage() for r in caplog.records if "waiting" in r.getMessage())


QUIET_MASTER = """
from ConfigSpace import ConfigurationSpace, Constant, Float
from ultrarun import HyperBand

cs = ConfigurationSpace(seed=1)
cs.add(Float("x", (0.0, 1.0)), Constant("sleep", 2.0))
master = HyperBand(cs, run_id={run_id!r}, min_budget=1, max_budget=9, eta=3, seed=1,
                   nameserver={host!r}, nameserver_port={port}, secret={secret!r},
                   working_directory={wd!r})
master.run(n_iterations=1, min_n_workers=2)
master.shutdown(shutdown_workers=False)
"""


def test_a_master_without_a_terminal_logs_progress_lines_while_it_runs(cluster):
    """`python master.py > log 2>&1` (a batch job's output), logging not configured: progress
    lines (done/total, running, failed, best, time left) appear while the run runs."""
    import subprocess
    import sys

    cluster.start_workers(2)
    script = cluster.dir / "quiet.py"
    script.write_text(QUIET_MASTER.format(run_id=cluster.run_id, host=cluster.host,
                                          port=cluster.port, secret=cluster.nameserver.secret,
                                          wd=str(cluster.dir)))
    log = cluster.dir / "master.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen([sys.executable, str(script)], cwd=cluster.dir, stdout=fh,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        line = wait_until(lambda: next((ln for ln in log.read_text().splitlines()
                                        if f"run {cluster.run_id}: " in ln and "/13 jobs" in ln
                                        and "ETA" in ln), None),
                          timeout=40, message="a progress line in the log while it runs")
        assert proc.poll() is None, "written while the run runs, not only at its end"
        assert " running, " in line and " failed" in line
        assert proc.wait(timeout=120) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "13/13 jobs, 0 running, 0 failed, best " in log.read_text()


MINIMIZE_SCRIPT = """
import os
with open(os.environ["IMPORTS_LOG"], "a") as fh:
    fh.write(f"{os.getpid()}\\n")
from ConfigSpace import ConfigurationSpace, Float
from ultrarun import minimize


def f(config, budget):
    return (config["x"] - 0.3) ** 2


if __name__ == "__main__":
    cs = ConfigurationSpace(seed=1)
    cs.add(Float("x", (0.0, 1.0)))
    result = minimize(f, cs, min_budget=1, max_budget=9, n_workers=4, n_iterations=1, seed=1)
    print("RUNS", len(result.get_all_runs()))
"""


def test_minimize_imports_the_script_once_for_its_workers_and_says_what_it_does(tmp_path):
    """`minimize(..., n_workers=4)`: the four workers are forked from one process that imported
    the script once (not four imports at the same time), and it says what it does meanwhile."""
    import subprocess
    import sys

    script = tmp_path / "quick.py"
    script.write_text(MINIMIZE_SCRIPT)
    imports = tmp_path / "imports.log"
    out = subprocess.run([sys.executable, str(script)], cwd=tmp_path, text=True,
                         capture_output=True, timeout=300,
                         env={**os.environ, "IMPORTS_LOG": str(imports)})
    assert out.returncode == 0, out.stderr[-3000:]
    assert "RUNS 13" in out.stdout
    assert len(imports.read_text().split()) == 2, "the script, and one fork server"
    assert "starting 4 worker processes" in out.stderr, out.stderr[-3000:]
    assert "4 worker processes up after" in out.stderr, out.stderr[-3000:]


def test_sigterm_to_the_process_group_of_n_workers_ends_them_gracefully_and_exits_0(cluster):
    """A scheduler's SIGTERM to the whole group (supervisor and children): the supervisor
    forwards it too, and the two count as one: the running job finishes, nothing restarts."""
    import subprocess
    import sys

    from conftest import WORKERS

    log_path = cluster.dir / "group.log"
    with open(log_path, "w") as fh:
        group = subprocess.Popen([sys.executable, "-m", "ultrarun", "worker", f"{WORKERS}:TestWorker",
                                  "--run-id", cluster.run_id, "--working-dir", str(cluster.dir),
                                  "--n-workers", "2"], stdout=fh, stderr=subprocess.STDOUT,
                                 start_new_session=True)
    try:
        wait_until(lambda: len(_names(cluster)) == 2, timeout=60, message="two workers")
        d, got = cluster.dispatcher(ping_interval=None)
        marker = cluster.marker("job")
        d.submit_job("job", config={"sleep": 3, "marker": str(marker), "x": 1.0}, budget=1.0)
        pid = int(wait_until(lambda: marker.exists() and marker.read_text(), timeout=30,
                             message="the job to start"))
        os.killpg(group.pid, signal.SIGTERM)
        (job,) = got.wait_for(1, timeout=60)
        assert job.status is JobStatus.SUCCESS and job.attempt == 1 and _pid_of(job) == pid
        assert group.wait(timeout=60) == 0
    finally:
        if group.poll() is None:
            os.killpg(group.pid, signal.SIGKILL)
            group.wait()
    text = log_path.read_text()
    assert "starting worker" not in text and "died" not in text, text[-3000:]
