"""The ready-to-run programs in workers/ and scripts/ work as their docstrings say: each example
worker runs a short real optimisation, and each launch script runs a whole run here, with the
scheduler's commands (sbatch, srun, qsub, bsub, ssh) replaced by local stand-ins."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import wait_until
from ultrarun.job import JobStatus

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def test_example_local_runs_bohb_with_thread_workers():
    out = subprocess.run([sys.executable, "example_local.py", "--n-workers", "2",
                          "--n-iterations", "1", "--run-id", f"ex{os.getpid()}"],
                         cwd=ROOT / "workers", capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "best found configuration: {'x1':" in out.stdout
    assert "27 configurations, 40 runs" in out.stdout


def test_example_cluster_master_and_worker_meet_through_the_shared_directory(tmp_path):
    run_id = f"cl{os.getpid()}"
    common = [sys.executable, "example_cluster.py", "--shared-directory", str(tmp_path),
              "--run-id", run_id, "--n-iterations", "1"]
    worker = subprocess.Popen(common + ["--worker"], cwd=ROOT / "workers",
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        master = subprocess.run(common, cwd=ROOT / "workers", capture_output=True, text=True,
                                timeout=180)
        assert master.returncode == 0, master.stderr
        assert "incumbent: {'x1':" in master.stdout
        assert worker.wait(timeout=30) == 0, "the master shuts its workers down"
        assert (tmp_path / "results.json").read_text().count("\n") == 40
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


@pytest.mark.parametrize("example, expect", [
    ("sklearn_digits_worker.py", "validation accuracy 0.9"),
    ("numpy_mlp_worker.py", "best after 81 epochs: {'batch_size':"),
    ("command_worker.py", "train_command.py --x1 "),
    ("hartmann6_worker.py", "best at budget 27: loss -"),
])
def test_example_workers_run_a_short_optimisation_from_any_directory(example, expect, tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "workers" / example), "--n-workers", "2",
                          "--n-iterations", "1"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=180)
    assert out.returncode == 0, out.stderr
    assert expect in out.stdout, out.stdout


def test_command_worker_reports_a_failing_command_as_a_crash(tmp_path):
    sys.path.insert(0, str(ROOT / "workers"))
    try:
        from command_worker import CommandWorker
    finally:
        sys.path.remove(str(ROOT / "workers"))
    worker = CommandWorker(run_id="cmd", command=f"{sys.executable} -c 'print(\"loss: {{x}}\")'")
    assert worker.compute((0, 0, 1), {"x": 0.25}, 1.0, str(tmp_path))["loss"] == 0.25
    broken = CommandWorker(run_id="cmd", command=[sys.executable, "-c", "import sys; sys.exit(3)"])
    with pytest.raises(RuntimeError, match="exited with code 3"):
        broken.compute((0, 0, 1), {}, 1.0, str(tmp_path))
    silent = CommandWorker(run_id="cmd", command=[sys.executable, "-c", "print('done')"])
    with pytest.raises(RuntimeError, match="no 'loss: <number>' line"):
        silent.compute((0, 0, 1), {}, 1.0, str(tmp_path))


# ------------------------------------------------------------------------- launch scripts
def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


@pytest.fixture
def scheduler(tmp_path):
    """A PATH on which sbatch, srun, qsub, bsub and ssh run jobs on this machine (see
    fake_scheduler.py), and `python` and `ultrarun` are this interpreter's; the jobs are
    stopped at the end whatever happened."""
    state = tmp_path / "scheduler"
    bindir = state / "bin"
    bindir.mkdir(parents=True)
    fake = Path(__file__).with_name("fake_scheduler.py")
    commands = {name: f'"{sys.executable}" "{fake}" {name}'
                for name in ("sbatch", "srun", "qsub", "bsub", "ssh")}
    commands.update(python=f'"{sys.executable}"', ultrarun=f'"{sys.executable}" -m ultrarun')
    for name, line in commands.items():
        (bindir / name).write_text(f'#!/bin/sh\nexec {line} "$@"\n')
        (bindir / name).chmod(0o755)
    env = dict(os.environ, PATH=f"{bindir}{os.pathsep}{os.environ['PATH']}",
               FAKE_SCHEDULER_DIR=str(state), HOST="127.0.0.1", IDLE_TIMEOUT="60",
               RUN_ID=f"sched{os.getpid()}", SHARED_DIR=str(tmp_path / "shared"))
    pids = state / "pids"

    def jobs() -> list[int]:
        return [int(p) for p in pids.read_text().split()] if pids.exists() else []

    try:
        yield env, jobs
    finally:
        for pid in jobs():
            if _alive(pid):
                os.killpg(pid, signal.SIGTERM)
        wait_until(lambda: not any(_alive(pid) for pid in jobs()), timeout=30,
                   message="the jobs to stop")


MASTER = [str(ROOT / "workers" / "example_master.py")]
MASTER_ARGS = ["--n-iterations", "1", "--min-workers", "2", "--min-workers-timeout", "120"]


@pytest.mark.parametrize("argv", [
    ["slurm/submit.sh", "2", "ultrarun.benchmarks:BraninWorker", *MASTER, *MASTER_ARGS],
    ["slurm/bohb.sbatch", f"{ROOT}/workers/branin_worker.py:BraninWorker", *MASTER, *MASTER_ARGS],
    ["pbs/submit.sh", "2", "ultrarun.benchmarks:BraninWorker", *MASTER, *MASTER_ARGS],
    ["lsf/submit.sh", "2", "ultrarun.benchmarks:BraninWorker", *MASTER, *MASTER_ARGS],
    ["ssh/run.sh", "HOSTS", "ultrarun.benchmarks:BraninWorker", *MASTER, "1", *MASTER_ARGS],
    ["local/run_all.sh", "ultrarun.benchmarks:BraninWorker", *MASTER, "2", *MASTER_ARGS],
], ids=["slurm", "slurm-one-allocation", "pbs", "lsf", "ssh", "local"])
def test_launch_script_runs_a_whole_optimisation(argv, scheduler, tmp_path):
    env, jobs = scheduler
    script = ROOT / "scripts" / argv[0]
    args = [str(tmp_path / "hosts.txt") if a == "HOSTS" else a for a in argv[1:]]
    (tmp_path / "hosts.txt").write_text("# two nodes\nnode-a\nnode-b\n")
    command = ["bash", str(script), *args]
    if script.suffix == ".sbatch":  # submitted as the user would: 3 tasks, task 0 the master
        command = ["sbatch", str(script), *args]
        env = dict(env, FAKE_NTASKS="3")
    out = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=240)
    assert out.returncode == 0, out.stdout + out.stderr
    results = Path(env["SHARED_DIR"]) / "results" / "results.json"
    wait_until(lambda: not any(_alive(pid) for pid in jobs()), timeout=180,
               message=f"the jobs of {argv[0]} to end")
    logs = "".join(p.read_text() for p in tmp_path.rglob("*.log")) + out.stdout
    assert results.exists(), logs
    runs = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(runs) == 40 and all(r[3]["loss"] is not None for r in runs), logs
    assert "incumbent: {'x1':" in logs
    assert not list(Path(env["SHARED_DIR"]).glob("ultrarun_run_*.json")), \
        "the name server stopped and removed its credentials file"


def test_ssh_launcher_starts_workers_on_each_host(cluster, scheduler, tmp_path):
    env, _ = scheduler
    hosts = tmp_path / "hosts.txt"
    hosts.write_text("# our nodes\nnode-a\nnode-b\n")
    out = subprocess.run(["bash", str(ROOT / "scripts/ssh/start_workers.sh"), str(hosts),
                          f"{ROOT}/tests/workers_for_tests.py:TestWorker", cluster.run_id,
                          str(cluster.dir), "2"], env=env, capture_output=True, text=True,
                         timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "started workers on 2 host(s)" in out.stdout
    d, results = cluster.dispatcher()
    try:
        wait_until(lambda: d.number_of_workers() == 4, timeout=60, message="4 workers")
        d.submit_job("job", config={"x": 2}, budget=1.0)
        assert results.wait_for(1)[0].status is JobStatus.SUCCESS
    finally:
        d.shutdown(shutdown_workers=True)
    client = cluster.nameserver.client()
    wait_until(lambda: not client.list(f"ultrarun.{cluster.run_id}.worker."), timeout=30,
               message=f"the workers to leave: {client.list(f'ultrarun.{cluster.run_id}.worker.')}")
    client.close()


def test_every_launch_script_is_valid_bash_and_tested():
    scripts = sorted(p for d in ("slurm", "pbs", "lsf", "ssh", "local")
                     for p in (ROOT / "scripts" / d).iterdir())
    for script in scripts:
        assert subprocess.run(["bash", "-n", str(script)]).returncode == 0, script
    assert {p.parent.name for p in scripts} == {"slurm", "pbs", "lsf", "ssh", "local"}
