"""The ready-to-run programs in workers/ and scripts/ work as their docstrings say."""
from __future__ import annotations

import os
import stat
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


def test_ssh_launcher_starts_workers_on_each_host(cluster, tmp_path):
    # A stand-in for ssh that runs the remote command here: the script's own command line is
    # what is tested.
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "ssh"
    fake.write_text('#!/bin/sh\nwhile [ "${1#-}" != "$1" ]; do [ "$1" = "-o" ] && shift; '
                    'shift; done\nshift\nexec sh -c "$*"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    hosts = tmp_path / "hosts.txt"
    hosts.write_text("# our nodes\nnode-a\nnode-b\n")
    # ... and `ultrarun` resolves to this Python's console script, as on a node set up alike
    env = dict(os.environ,
               PATH=os.pathsep.join([str(bindir), os.path.dirname(sys.executable),
                                     os.environ["PATH"]]))
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


def test_slurm_scripts_are_valid_bash():
    for script in (ROOT / "scripts/slurm").glob("*.sbatch"):
        assert subprocess.run(["bash", "-n", str(script)]).returncode == 0, script
