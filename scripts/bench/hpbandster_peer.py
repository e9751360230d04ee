"""The same dispatch measurements as dispatch.py, taken with HpBandSter's own classes.

    /tmp/hpb-venv/bin/python scripts/bench/hpbandster_peer.py [--jobs 2000] [--workers 4]

Runs inside a separate virtual environment holding hpbandster 0.7.4 (it needs numpy < 2 and
ConfigSpace < 1); it never imports ultrarun. Uses hpbandster.core.nameserver.NameServer,
hpbandster.core.worker.Worker and hpbandster.core.dispatcher.Dispatcher with Pyro4's and
HpBandSter's defaults (no Pyro settings are changed). Prints one JSON line per measurement, each
with "peer": "hpbandster". Compare ratios to the raw Pyro4 baseline of the same run, not absolute
numbers.

Every wait has a deadline and every process started here is torn down in a finally block.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import _common
from _common import (parse_peer_worker_args, quiet_hpbandster_logging, round_trips_per_second,
                     start_peer_workers, stop, wait_for)

import Pyro4
import Pyro4.naming

HERE = os.path.abspath(__file__)
PEER = "hpbandster"


def emit(**fields) -> None:
    _common.emit(peer=PEER, **fields)


# ------------------------------------------------------------------------------ worker process
def worker_main(argv: list[str]) -> None:
    from hpbandster.core.worker import Worker

    class NoopWorker(Worker):
        def compute(self, config_id, config, budget, working_directory, **kwargs):
            return {"loss": 0.0, "info": {}}

    a = parse_peer_worker_args(argv)
    quiet_hpbandster_logging()
    w = NoopWorker(run_id=a.run_id, nameserver=a.ns_host, nameserver_port=a.ns_port, id=a.id,
                   logger=logging.getLogger("hpbandster.worker"))
    w.run(background=False)




# ----------------------------------------------------------------------------------- helpers


class Counter:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.n = 0
        self.done = threading.Event()
        self.target = 0
        self.finished: dict = {}
        self.errors = 0

    def reset(self, target: int) -> None:
        with self.lock:
            self.n, self.done, self.target = 0, threading.Event(), target

    def __call__(self, job) -> None:
        now = time.perf_counter()
        with self.lock:
            self.n += 1
            if job.exception is not None:
                self.errors += 1
            key = tuple(job.id) if isinstance(job.id, list) else job.id
            self.finished[key] = now
            if self.n >= self.target:
                self.done.set()


class DispatcherThread:
    """Runs an HpBandSter Dispatcher the way hpbandster.core.master.Master does: run() in a thread."""

    def __init__(self, callback, run_id: str, ns_host: str, ns_port: int, ping_interval: float):
        from hpbandster.core.dispatcher import Dispatcher
        self.d = Dispatcher(callback, run_id=run_id, ping_interval=ping_interval,
                            nameserver=ns_host, nameserver_port=ns_port,
                            logger=logging.getLogger("hpbandster.dispatcher"))
        self.thread = threading.Thread(target=self.d.run, name="hpbandster dispatcher",
                                       daemon=True)

    def start(self) -> None:
        self.thread.start()

    def shutdown(self, timeout: float = 30) -> None:
        if not self.thread.is_alive():
            return
        # run() creates the daemon a moment after the thread starts
        try:
            wait_for(lambda: hasattr(self.d, "pyro_daemon"), 10, "dispatcher daemon")
            self.d.shutdown()
        except Exception as exc:  # noqa: BLE001 - teardown must go on
            print(f"dispatcher shutdown: {exc!r}", file=sys.stderr)
        self.thread.join(timeout)
        if self.thread.is_alive():
            print("dispatcher thread did not exit in time", file=sys.stderr)


class NS:
    """hpbandster.core.nameserver.NameServer, plus a name-server proxy for polling."""

    def __init__(self, run_id: str, workdir: str):
        from hpbandster.core.nameserver import NameServer
        self.ns = NameServer(run_id=run_id, working_directory=workdir, host="localhost", port=0)
        self.host, self.port = self.ns.start()
        self.proxy = Pyro4.Proxy(f"PYRO:{Pyro4.constants.NAMESERVER_NAME}@{self.host}:{self.port}")

    def count(self, prefix: str) -> int:
        return len(self.proxy.list(prefix=prefix))

    def close(self) -> None:
        try:
            self.proxy._pyroRelease()
        finally:
            self.ns.shutdown()


def worker_prefix(run_id: str) -> str:
    return f"hpbandster.run_{run_id}.worker."


# ------------------------------------------------------------------------------- measurements
@Pyro4.expose
class Echo:
    def echo(self, value):
        return value


def raw_pyro_round_trips(n: int) -> float:
    """Baseline: synchronous round trips of a small dict through a daemon made the way HpBandSter
    makes its daemons (Pyro4.core.Daemon(host=None), Pyro4 defaults)."""
    daemon = Pyro4.core.Daemon(host=None)
    uri = daemon.register(Echo())
    t = threading.Thread(target=daemon.requestLoop, daemon=True)
    t.start()
    try:
        with Pyro4.Proxy(uri) as proxy:
            proxy._pyroTimeout = 30
            return round_trips_per_second(proxy.echo, n)
    finally:
        daemon.shutdown()
        t.join(10)
        daemon.close()


def throughput_and_latency(n_jobs: int, n_workers: int, n_latency: int, ping_interval: float,
                           job_deadline: float) -> tuple[float, float, int]:
    run_id = "bench"
    with tempfile.TemporaryDirectory() as workdir:
        ns = NS(run_id, workdir)
        procs: list[subprocess.Popen] = []
        dt = None
        try:
            procs = start_peer_workers(HERE, run_id, ns.host, ns.port, n_workers)
            # workers first, then the dispatcher: its first discovery pass (at start) finds them
            wait_for(lambda: ns.count(worker_prefix(run_id)) == n_workers, 60, "worker registration")
            counter = Counter()
            dt = DispatcherThread(counter, run_id, ns.host, ns.port, ping_interval)
            dt.start()
            wait_for(lambda: dt.d.number_of_workers() == n_workers, 60, "dispatcher discovery")
            kw = dict(config={}, budget=1.0, working_directory=workdir)
            # warm up
            counter.reset(n_workers * 4)
            for i in range(counter.target):
                dt.d.submit_job(("warm", i), **kw)
            if not counter.done.wait(30):
                raise TimeoutError("warm-up jobs did not finish in 30 s")
            counter.reset(n_jobs)
            t0 = time.perf_counter()
            for i in range(n_jobs):
                dt.d.submit_job(i, config={"x": i}, budget=1.0, working_directory=workdir)
            if not counter.done.wait(job_deadline):
                raise TimeoutError(f"{counter.n}/{n_jobs} jobs finished within {job_deadline} s")
            rate = n_jobs / (time.perf_counter() - t0)
            latencies = []
            for i in range(n_latency):
                counter.reset(1)
                t1 = time.perf_counter()
                dt.d.submit_job(("lat", i), **kw)
                if not counter.done.wait(10):
                    raise TimeoutError(f"latency job {i} did not finish in 10 s")
                latencies.append(counter.finished[("lat", i)] - t1)
            return rate, statistics.median(latencies), counter.errors
        finally:
            if dt is not None:
                dt.shutdown()
            stop(procs)
            ns.close()


def discovery(n_workers: int, ping_interval: float, cap: float) -> dict:
    """Time from 'all workers registered in the name server' to 'the dispatcher knows them all',
    both start orders (as dispatch.py). A wait that hits the cap is reported as such."""
    out: dict = {}
    with tempfile.TemporaryDirectory() as workdir:
        ns = NS("disc", workdir)
        try:
            # 1) workers first, then the dispatcher
            run_id = "disc1"
            procs = start_peer_workers(HERE, run_id, ns.host, ns.port, n_workers)
            dt = None
            try:
                wait_for(lambda: ns.count(worker_prefix(run_id)) == n_workers, 120,
                         "worker registration")
                dt = DispatcherThread(lambda job: None, run_id, ns.host, ns.port, ping_interval)
                t0 = time.perf_counter()
                dt.start()
                try:
                    wait_for(lambda: dt.d.number_of_workers() == n_workers, cap, "discovery")
                    out["workers_first_s"] = time.perf_counter() - t0
                except TimeoutError:
                    out["workers_first_s"] = None
                    out["workers_first_cap_hit_s"] = cap
                    out["workers_first_known_at_cap"] = dt.d.number_of_workers()
            finally:
                if dt is not None:
                    dt.shutdown()
                stop(procs)
            # 2) dispatcher first, then the workers (a fresh run id: killed HpBandSter workers
            #    leave their names in the name server)
            run_id = "disc2"
            dt = DispatcherThread(lambda job: None, run_id, ns.host, ns.port, ping_interval)
            procs = []
            try:
                dt.start()
                wait_for(lambda: ns.count(f"hpbandster.run_{run_id}.dispatcher") == 1, 30,
                         "dispatcher registration")
                time.sleep(0.2)  # let its first (empty) discovery pass finish
                procs = start_peer_workers(HERE, run_id, ns.host, ns.port, n_workers)
                wait_for(lambda: ns.count(worker_prefix(run_id)) == n_workers, 120,
                         "worker registration")
                try:
                    out["dispatcher_first_s"] = wait_for(
                        lambda: dt.d.number_of_workers() == n_workers, cap, "discovery")
                except TimeoutError:
                    out["dispatcher_first_s"] = None
                    out["dispatcher_first_cap_hit_s"] = cap
                    out["dispatcher_first_known_at_cap"] = dt.d.number_of_workers()
            finally:
                dt.shutdown()
                stop(procs)
        finally:
            ns.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--latency-samples", type=int, default=300)
    parser.add_argument("--discover", type=int, default=16)
    parser.add_argument("--round-trips", type=int, default=5000)
    parser.add_argument("--ping-interval", type=float, default=60,
                        help="Dispatcher ping_interval; 60 is hpbandster Master's default "
                             "(the Dispatcher class alone defaults to 10)")
    parser.add_argument("--discover-cap", type=float, default=90,
                        help="deadline for each discovery wait, in seconds")
    parser.add_argument("--job-deadline", type=float, default=300)
    args = parser.parse_args()
    quiet_hpbandster_logging()

    import hpbandster
    versions = {"hpbandster": getattr(hpbandster, "__version__", "0.7.4"),
                "Pyro4": Pyro4.__version__, "python": sys.version.split()[0]}

    rtt = raw_pyro_round_trips(args.round_trips)
    emit(bench="raw_pyro4_round_trips", per_s=round(rtt), median_ms=round(1000 / rtt, 4),
         **versions)
    rate, latency, errors = throughput_and_latency(args.jobs, args.workers, args.latency_samples,
                                                   args.ping_interval, args.job_deadline)
    emit(bench="dispatch_noop_jobs", jobs=args.jobs, workers=args.workers, jobs_per_s=round(rate),
         ratio_to_raw_round_trips=round(rate / rtt, 3), job_errors=errors)
    emit(bench="submit_to_result_latency", median_ms=round(latency * 1000, 3),
         raw_round_trip_ms=round(1000 / rtt, 3), ratio=round(latency * rtt, 2))
    found = discovery(args.discover, args.ping_interval, args.discover_cap)
    emit(bench="discovery", workers=args.discover, ping_interval_s=args.ping_interval,
         **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in found.items()})


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_worker":
        worker_main(sys.argv[2:])
    else:
        # a SIGTERM (e.g. dispatch.py's deadline) unwinds through the finally blocks
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
        main()
