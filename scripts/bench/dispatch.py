"""Dispatch throughput, latency and discovery time, next to raw Pyro4 round trips.

    python scripts/bench/dispatch.py [--jobs 5000] [--workers 4] [--discover 16]
                                     [--hpbandster-python /tmp/hpb-venv/bin/python]

Prints one JSON line per measurement. Timings on shared machines are noisy: compare the ratios
to the raw Pyro4 baseline measured in the same run, not absolute numbers.

With --hpbandster-python, hpbandster_peer.py (next to this file) then runs under that interpreter
(a virtual environment holding hpbandster 0.7.4) with the same --workers, --latency-samples,
--discover and --round-trips (its own --jobs default), and its JSON lines, marked
"peer": "hpbandster", are printed here too.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import emit, round_trips_per_second, run_peer, stop, wait_for
from ultrarun import transport
from ultrarun.dispatcher import Dispatcher
from ultrarun.nameserver import NameServer
from ultrarun.worker import Worker

HERE = Path(__file__).resolve()


class NoopWorker(Worker):
    def compute(self, config, budget, **kwargs):
        return {"loss": 0.0, "info": {}}


@transport.expose
class Echo:
    def echo(self, value):
        return value


def raw_pyro_round_trips(n: int) -> float:
    """The baseline: synchronous round trips of a small dict through a daemon made the same way."""
    with transport.Server(Echo(), "bench-secret") as server:
        with transport.Connection(server.uri, "bench-secret") as conn:
            return round_trips_per_second(lambda value: conn.call("echo", value), n)


def start_workers(run_id: str, workdir: str, n: int) -> list[subprocess.Popen]:
    cmd = [sys.executable, "-m", "ultrarun", "worker", f"{HERE}:NoopWorker", "--run-id", run_id,
           "--working-dir", workdir, "-q"]
    return [subprocess.Popen(cmd + ["--worker-id", str(i)]) for i in range(n)]


class Counter:
    def __init__(self) -> None:
        self.n = 0
        self.done = threading.Event()
        self.target = 0
        self.finished: dict = {}

    def __call__(self, job) -> None:
        self.n += 1
        self.finished[job.id] = time.perf_counter()
        if self.n >= self.target:
            self.done.set()


def throughput_and_latency(n_jobs: int, n_workers: int, n_latency: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as workdir, \
            NameServer("bench", working_directory=workdir) as ns:
        procs = start_workers("bench", workdir, n_workers)
        counter = Counter()
        d = Dispatcher(counter, run_id="bench", nameserver=ns.host, nameserver_port=ns.port)
        try:
            d.start()
            wait_for(lambda: d.number_of_workers() == n_workers, 60)
            # warm up connections
            counter.target = n_workers * 4
            for i in range(counter.target):
                d.submit_job(("warm", i), config={}, budget=1.0)
            counter.done.wait(30)
            counter.n, counter.done = 0, threading.Event()
            counter.target = n_jobs
            t0 = time.perf_counter()
            for i in range(n_jobs):
                d.submit_job(i, config={"x": i}, budget=1.0)
            if not counter.done.wait(300):
                raise TimeoutError("jobs did not finish")
            rate = n_jobs / (time.perf_counter() - t0)
            latencies = []
            for i in range(n_latency):
                counter.n, counter.done, counter.target = 0, threading.Event(), 1
                t1 = time.perf_counter()
                d.submit_job(("lat", i), config={}, budget=1.0)
                counter.done.wait(10)
                latencies.append(counter.finished[("lat", i)] - t1)
            return rate, statistics.median(latencies)
        finally:
            d.shutdown()
            stop(procs)


def discovery(n_workers: int) -> dict:
    """Time from 'all workers registered' to 'dispatcher knows them', both start orders."""
    out = {}
    with tempfile.TemporaryDirectory() as workdir, \
            NameServer("disc", working_directory=workdir) as ns:
        client = ns.client()
        prefix = transport.worker_prefix("disc")
        procs = start_workers("disc", workdir, n_workers)
        try:
            wait_for(lambda: len(client.list(prefix)) == n_workers, 120)
            d = Dispatcher(lambda job: None, run_id="disc", nameserver=ns.host,
                           nameserver_port=ns.port, ping_interval=60)
            t0 = time.perf_counter()
            d.start()
            wait_for(lambda: d.number_of_workers() == n_workers, 60)
            out["workers_first_s"] = time.perf_counter() - t0
        finally:
            stop(procs)
        d.shutdown()
        wait_for(lambda: len(client.list(prefix)) == 0, 60)
        d = Dispatcher(lambda job: None, run_id="disc", nameserver=ns.host,
                       nameserver_port=ns.port, ping_interval=60)
        d.start()
        procs = start_workers("disc", workdir, n_workers)
        try:
            wait_for(lambda: len(client.list(prefix)) == n_workers, 120)
            out["dispatcher_first_s"] = wait_for(lambda: d.number_of_workers() == n_workers, 60)
        finally:
            d.shutdown()
            stop(procs)
        client.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--latency-samples", type=int, default=300)
    parser.add_argument("--discover", type=int, default=16)
    parser.add_argument("--round-trips", type=int, default=5000)
    parser.add_argument("--hpbandster-python", metavar="PATH",
                        help="also run hpbandster_peer.py with this interpreter (after ours)")
    args = parser.parse_args()

    rtt = raw_pyro_round_trips(args.round_trips)
    emit(bench="raw_pyro4_round_trips", per_s=round(rtt), median_ms=round(1000 / rtt, 4))
    rate, latency = throughput_and_latency(args.jobs, args.workers, args.latency_samples)
    emit(bench="dispatch_noop_jobs", jobs=args.jobs, workers=args.workers, jobs_per_s=round(rate),
         ratio_to_raw_round_trips=round(rate / rtt, 3), target_jobs_per_s=3000)
    emit(bench="submit_to_result_latency", median_ms=round(latency * 1000, 3),
         raw_round_trip_ms=round(1000 / rtt, 3), ratio=round(latency * rtt, 2), target_ms=0.5)
    found = discovery(args.discover)
    emit(bench="discovery", workers=args.discover, **{k: round(v, 4) for k, v in found.items()},
         target_s=0.1)
    if args.hpbandster_python:
        run_peer(args.hpbandster_python, "hpbandster_peer.py",
                 ["--workers", str(args.workers), "--latency-samples", str(args.latency_samples),
                  "--discover", str(args.discover), "--round-trips", str(args.round_trips)])


if __name__ == "__main__":
    os.environ.setdefault("ULTRARUN_SECRET", "bench-secret")
    main()
