"""Many workers on one dispatcher: all are found and used, and the dispatcher's process does not
grow a thread per connected worker (Pyro's multiplex server; DESIGN.md invariant 8)."""
from __future__ import annotations

import signal
import subprocess
import sys
import threading

import pytest

from conftest import ROOT_DIR, wait_until
from ultrarun.dispatcher import _SENDERS
from ultrarun.job import JobStatus

pytestmark = pytest.mark.slow
N_WORKERS = 40


def test_forty_worker_processes_on_one_dispatcher(cluster):
    threads_before = threading.active_count()
    cmd = [sys.executable, "-m", "ultrarun", "worker", "tests/workers_for_tests.py:TestWorker",
           "--run-id", cluster.run_id, "--working-dir", str(cluster.dir), "--n-workers",
           str(N_WORKERS), "-q"]
    supervisor = subprocess.Popen(cmd, cwd=ROOT_DIR)
    try:
        d, results = cluster.dispatcher(ping_interval=0.5, timeout=5)
        wait_until(lambda: d.number_of_workers() == N_WORKERS, timeout=120,
                   message=f"{N_WORKERS} workers")
        for i in range(4 * N_WORKERS):
            d.submit_job(i, config={"x": i, "sleep": 0.05}, budget=1.0)
        jobs = results.wait_for(4 * N_WORKERS, timeout=120)
        assert all(j.status is JobStatus.SUCCESS for j in jobs)
        assert len({j.worker_name for j in jobs}) >= N_WORKERS * 3 // 4, \
            "the work should spread over the workers"
        # Name server + dispatcher in this process: a fixed number of threads (its senders, a
        # monitor, a callback thread, two server loops), not one per connected worker.
        grown = threading.active_count() - threads_before
        assert grown <= _SENDERS + 4, f"{grown} new threads for {N_WORKERS} connected workers"
        d.shutdown(shutdown_workers=True)
        assert supervisor.wait(timeout=60) == 0
    finally:
        if supervisor.poll() is None:
            supervisor.send_signal(signal.SIGTERM)
            try:
                supervisor.wait(timeout=30)
            except subprocess.TimeoutExpired:
                supervisor.kill()
                supervisor.wait()
