"""Hundreds of workers on one dispatcher: a whole BOHB run with every job accounted for, and what
the dispatcher does per second (pings, probes, name-server listings, calls it serves) bounded per
worker whatever W is, with a fixed number of threads (docs/benchmarks.md, "Scale").

The workers are threads in a few processes (this file is also their program: ``python
tests/test_scale.py --run-id ... --dir ... --n N --first I``)."""
from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import threading
import time

N_WORKERS = 200
N_PROCS = 4
JOB_S = 0.05
PING_INTERVAL = 1.0


def _worker_threads(argv: list[str]) -> None:
    """N worker threads of the run in this process, until SIGTERM."""
    import argparse
    import logging

    from ultrarun.security import Credentials
    from ultrarun.worker import Worker

    p = argparse.ArgumentParser()
    p.add_argument("--run-id", required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--first", type=int, required=True)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)

    class SleepWorker(Worker):
        def compute(self, config_id, config, budget, working_directory, **kwargs):
            time.sleep(JOB_S)
            return {"loss": float(config["x1"]) ** 2 + float(config["x2"]) / budget, "info": {}}

    creds = Credentials.read(a.dir, a.run_id)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    workers = []
    for i in range(a.first, a.first + a.n):
        w = SleepWorker(a.run_id, creds.host, creds.port, worker_id=i, secret=creds.secret)
        w.run(background=True)
        workers.append(w)
    print(json.dumps({"registered": len(workers)}), flush=True)
    while not done.wait(1.0):
        if os.getppid() == 1:
            break
    for w in workers:
        w.shutdown()


if __name__ == "__main__":
    _worker_threads(sys.argv[1:])
    sys.exit(0)

import pytest  # noqa: E402

from conftest import wait_until  # noqa: E402
from ultrarun.benchmarks import branin_space  # noqa: E402
from ultrarun.dispatcher import _LIST_GAP, _SENDERS  # noqa: E402
from ultrarun.frontends import BOHB  # noqa: E402
from ultrarun.job import JobStatus  # noqa: E402

pytestmark = pytest.mark.slow


def _start_worker_processes(cluster, n_workers: int, n_procs: int) -> list[subprocess.Popen]:
    procs = []
    per = n_workers // n_procs
    for k in range(n_procs):
        procs.append(subprocess.Popen(
            [sys.executable, __file__, "--run-id", cluster.run_id, "--dir", str(cluster.dir),
             "--n", str(per), "--first", str(k * per)], stdout=subprocess.DEVNULL))
    return procs


def _stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def test_two_hundred_workers_run_bohb_with_every_job_once_and_bounded_calls(cluster, tmp_path):
    threads_before = threading.active_count()
    master = BOHB(branin_space(), run_id=cluster.run_id, nameserver=cluster.host,
                  nameserver_port=cluster.port, secret=cluster.nameserver.secret,
                  min_budget=1, max_budget=27, eta=3, seed=0, ping_interval=PING_INTERVAL,
                  working_directory=tmp_path, show_progress=False)
    procs = []
    try:
        started = time.monotonic()
        master.dispatcher.start()  # first: the workers find it by calling it
        procs = _start_worker_processes(cluster, N_WORKERS, N_PROCS)
        n_iterations = 12
        result = master.run(n_iterations=n_iterations, min_n_workers=N_WORKERS)
        elapsed = time.monotonic() - started
        status = master.dispatcher.status()
        counters = status["counters"]
        grown = threading.active_count() - threads_before

        # every job of the schedule ran exactly once and came back
        expected = sum(master.iter_generator.num_jobs(i) for i in range(n_iterations))
        runs = result.get_all_runs()
        assert len(runs) == expected
        assert len({(r.config_id, r.budget) for r in runs}) == expected
        assert all(r.status is JobStatus.SUCCESS and r.loss is not None for r in runs)
        assert status["finished"] == {"SUCCESS": expected}
        assert status["queued"] == 0 and status["running"] == 0
        journal = [json.loads(line) for line in master.journal.path.read_text().splitlines()]
        assert sum(r["t"] == "result" for r in journal) == expected
        assert len(result.get_id2config_mapping()) == sum(r["t"] == "config" for r in journal)
        used = {j.worker_name for j in master.jobs}
        assert len(used) >= min(expected, N_WORKERS) // 2, "the work should spread"

        # what the dispatcher did, per worker and per second, does not grow with W: each
        # worker is pinged at most once per ping interval, probed at most once, and calls in
        # once per result plus a few hellos; the name server is listed at most once per
        # _LIST_GAP, however often discovery is triggered (the master does, while it waits)
        intervals = elapsed / PING_INTERVAL + 2
        assert counters["listings"] <= elapsed / min(_LIST_GAP, PING_INTERVAL) + 2, counters
        assert counters["pings"] <= N_WORKERS * intervals, counters
        assert counters["probes"] <= N_WORKERS, counters
        assert counters["syncs"] <= expected + 3 * N_WORKERS, counters
        assert counters["jobs"] <= expected, counters  # each job pushed at most once
        # a fixed number of threads, not one per connected worker: senders, monitor,
        # callbacks, the server loops of the dispatcher and the name server
        assert grown <= _SENDERS + 4, f"{grown} new threads for {N_WORKERS} workers"
        assert math.isfinite(min(r.loss for r in runs))
    finally:
        master.shutdown()
        _stop(procs)


def test_the_pool_is_found_by_listing_when_the_workers_came_first(cluster, tmp_path):
    """Workers registered before the dispatcher: one listing finds them all, each probed once."""
    procs = _start_worker_processes(cluster, 40, 2)
    try:
        client = cluster.client()
        try:
            wait_until(lambda: len(client.list(f"ultrarun.{cluster.run_id}.worker.")) == 40,
                       timeout=60, message="40 workers to register")
        finally:
            client.close()
        d, results = cluster.dispatcher(ping_interval=30)
        wait_until(lambda: d.number_of_workers() == 40, timeout=30, message="40 workers known")
        for i in range(80):
            d.submit_job(i, config={"x1": 0.0, "x2": 0.0}, budget=1.0)
        jobs = results.wait_for(80, timeout=60)
        assert all(j.status is JobStatus.SUCCESS for j in jobs)
        counters = d.status()["counters"]
        # each name probed once at most (a worker whose own hello came first needs none)
        assert counters["probes"] <= 40 and counters["pings"] <= 40, counters
        assert counters["listings"] <= 3, counters
    finally:
        _stop(procs)
