"""scale.py's measurements, taken with HpBandSter 0.7.4's own classes.

    /tmp/peers/hpbandster/bin/python scripts/bench/scale_hpbandster_peer.py --workers 1000
        --procs 16 --job-seconds 4 [--iterations 64] [--random-rounds 4] [--runs hyperband random]

Runs inside a virtual environment holding hpbandster 0.7.4 (numpy < 2, ConfigSpace < 0.7); it
never imports ultrarun. The setup is scale.py's: W HpBandSter workers
(hpbandster.core.worker.Worker, ``run(background=True)``) as threads spread over K processes,
every job sleeping D seconds and returning its own compute start and end; budgets 1..27, eta 3,
Branin; HpBandSter's name server in its own process. Runs:

- ``hyperband``: hpbandster.optimizers.BOHB, ``--iterations`` iterations (synchronous
  Hyperband; HpBandSter's bracket sizes);
- ``random``: hpbandster.optimizers.RandomSearch (4 configurations per iteration at the largest
  budget), ``--random-rounds`` x W / 4 iterations: enough jobs for that many rounds of W.

HpBandSter has no ASHA and no time bound. Pyro's THREADPOOL_SIZE is raised to 2W + 100 for
every process (``PYRO_THREADPOOL_SIZE``): with its default of 40, HpBandSter's name server refuses
connections while hundreds of workers register and those workers die. Each run prints one JSON line, marked
``"peer": "hpbandster"``, with scale.py's fields where HpBandSter allows them: HpBandSter's
dispatcher serves every connection from a thread of its own and calls the master's result
callback (where BOHB refits its model) from those threads, so ``master_cpu_ms_per_job`` is the
main thread's (the one in ``run()``) and ``process_cpu_ms_per_job`` (master and dispatcher
together) is the figure to compare. ``bound`` is left to scale.py (``--bound-only
--bracket-formula hpbandster``).

Every wait has a deadline and every process started here is torn down in a finally block.
"""
from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import threading
import time

import _common
from _common import quiet_hpbandster_logging, wait_for
from scale_common import (WorkerProcesses, branin, cpu_by_role, footprint, process_cpu_s,
                          serve_until_terminated, thread_cpu)

HERE = os.path.abspath(__file__)
PEER = "hpbandster"
RUN_ID = "scale"
NS_HOST = "127.0.0.1"


def emit(**fields) -> None:
    _common.emit(peer=PEER, **fields)


def branin_space(seed: int):
    import ConfigSpace as CS
    cs = CS.ConfigurationSpace(seed=seed)
    cs.add_hyperparameters([CS.UniformFloatHyperparameter("x1", -5.0, 10.0),
                            CS.UniformFloatHyperparameter("x2", 0.0, 15.0)])
    return cs


# ------------------------------------------------------------------------------ processes
def ns_main(argv: list[str]) -> None:
    """``_ns --port-file F``: HpBandSter's name server until SIGTERM."""
    import signal

    from hpbandster.core.nameserver import NameServer

    p = argparse.ArgumentParser()
    p.add_argument("--port-file", required=True)
    a = p.parse_args(argv)
    quiet_hpbandster_logging()
    ns = NameServer(run_id=RUN_ID, host=NS_HOST, port=0)
    _, port = ns.start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with open(a.port_file + ".tmp", "w") as fh:
        fh.write(str(port))
    os.replace(a.port_file + ".tmp", a.port_file)
    while not done.wait(1.0):
        if os.getppid() == 1:
            break
    ns.shutdown()


def workers_main(argv: list[str]) -> None:
    """``_workers``: N HpBandSter worker threads in this process, until SIGTERM."""
    import Pyro4
    from hpbandster.core.worker import Worker

    p = argparse.ArgumentParser()
    p.add_argument("--ns-port", type=int, required=True)
    p.add_argument("--job-seconds", type=float, required=True)
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--first", type=int, required=True)
    a = p.parse_args(argv)
    quiet_hpbandster_logging()

    class SleepWorker(Worker):
        def compute(self, config_id, config, budget, working_directory, **kwargs):
            start = time.time()
            time.sleep(a.job_seconds)
            return {"loss": branin(config, budget),
                    "info": {"start": start, "end": time.time(), "worker": self.worker_id}}

    def start():
        logger = logging.getLogger("hpbandster.worker")
        logger.setLevel(logging.WARNING)
        workers = []
        for i in range(a.first, a.first + a.n):
            w = SleepWorker(run_id=RUN_ID, nameserver=NS_HOST, nameserver_port=a.ns_port,
                            id=i, logger=logger)
            w.run(background=True)
            workers.append(w)
        # run(background=True) returns before the worker registers: watch the name server
        seen: dict[str, float] = {}
        names = {w.worker_id for w in workers}
        deadline = time.monotonic() + 180
        with Pyro4.locateNS(host=NS_HOST, port=a.ns_port) as ns:
            while len(seen) < len(names) and time.monotonic() < deadline:
                now = time.time()
                for name in ns.list(prefix=f"hpbandster.run_{RUN_ID}.worker."):
                    if name in names and name not in seen:
                        seen[name] = now
                time.sleep(0.01)
        return workers, list(seen.values())

    def stop(worker) -> None:
        daemon = getattr(worker, "pyro_daemon", None)
        if daemon is not None:
            daemon.shutdown()

    serve_until_terminated(start, stop)


# ----------------------------------------------------------------------------------- runs
def role(name: str, tid: int) -> str:
    return "master" if name == "MainThread" else "dispatcher"


def stop_master(master) -> None:
    """Master.shutdown() without its unbounded join."""
    d = master.dispatcher
    try:
        wait_for(lambda: hasattr(d, "pyro_daemon"), 10, "dispatcher daemon")
        d.shutdown(shutdown_workers=False)
    except Exception as exc:  # noqa: BLE001 - teardown must go on
        print(f"dispatcher shutdown: {exc!r}", file=sys.stderr)
    master.dispatcher_thread.join(30)


def one_run(kind: str, args, ns_port: int, workdir: str, state: dict) -> dict:
    from hpbandster.optimizers import BOHB, RandomSearch

    W = args.workers
    front = BOHB if kind == "hyperband" else RandomSearch
    n_iterations = (args.iterations if kind == "hyperband"
                    else max(1, args.random_rounds * W // 4))
    before = footprint()
    started = time.time()
    master = front(configspace=branin_space(args.seed), run_id=RUN_ID, eta=3, min_budget=1,
                   max_budget=27, nameserver=NS_HOST, nameserver_port=ns_port,
                   working_directory=workdir, logger=logging.getLogger("hpbandster.master"))
    try:
        if state.get("workers") is None:
            state["workers"] = WorkerProcesses(
                [sys.executable, HERE, "_workers", "--ns-port", str(ns_port), "--job-seconds",
                 str(args.job_seconds)], W, args.procs)
            last = state["workers"].wait_registered(args.startup_timeout)
            wait_for(lambda: master.dispatcher.number_of_workers() >= W, args.startup_timeout,
                     "the dispatcher to know every worker")
            known = time.time()
            discovery = {"discovery_s": round(known - last, 3),
                         "discovery": "workers started after the dispatcher, from the last "
                                      "registration", "startup_s": round(known - started, 3)}
        else:
            wait_for(lambda: master.dispatcher.number_of_workers() >= W, args.startup_timeout,
                     "the dispatcher to know every worker")
            discovery = {"discovery_s": round(time.time() - started, 3),
                         "discovery": "dispatcher started after the workers, from its start"}
        workers: WorkerProcesses = state["workers"]
        known_fp = footprint()
        cpu0, wcpu0, pcpu0 = thread_cpu(), workers.cpu_s(), process_cpu_s()
        t_run = time.time()
        result = master.run(n_iterations=n_iterations, min_n_workers=W)
        run_s = time.time() - t_run
        cpu = cpu_by_role(cpu0, thread_cpu(), role)
        wcpu, pcpu = workers.cpu_s() - wcpu0, process_cpu_s() - pcpu0
        end_fp = footprint()
    finally:
        stop_master(master)
    runs = result.get_all_runs()
    done = [r for r in runs if r.info and "start" in r.info]
    spans = [(r.info["start"], r.info["end"]) for r in done]
    launches = [r.time_stamps["started"] + result.HB_config["time_ref"] for r in done]
    util = _common.utilisation(spans, launches, [r.info["worker"] for r in done], W)
    span = max(e for _, e in spans) - min(s for s, _ in spans)
    n = len(runs)
    return {
        "bench": "scale", "run": kind, "workers": W, "procs": args.procs,
        "job_s": args.job_seconds, "iterations": n_iterations, "run_s": round(run_s, 3),
        "jobs": n, "failed": n - len(done), "jobs_per_s": round(len(spans) / span, 2),
        "needed_jobs_per_s": round(W / args.job_seconds, 2), **util,
        "master_cpu_ms_per_job": round(1000 * cpu.get("master", 0) / n, 3),
        "dispatcher_cpu_ms_per_job": round(1000 * cpu.get("dispatcher", 0) / n, 3),
        "process_cpu_ms_per_job": round(1000 * pcpu / n, 3),
        "workers_cpu_ms_per_job": round(1000 * wcpu / n, 3),
        "process_cpu_share": round(pcpu / run_s, 3), **discovery,
        "first_job_s": round(min(s for s, _ in spans) - t_run, 3),
        "rss_kb_per_worker": round((known_fp["rss_kb"] - before["rss_kb"]) / W, 2),
        "fds_per_worker": round((end_fp["fds"] - before["fds"]) / W, 3),
        "threads": end_fp["threads"], "fds": end_fp["fds"],
        "rss_mb": round(end_fp["rss_kb"] / 1024, 1), "load_before": state.get("load"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=256)
    parser.add_argument("--procs", type=int, default=4)
    parser.add_argument("--job-seconds", type=float, default=2.0)
    parser.add_argument("--iterations", type=int, default=64)
    parser.add_argument("--random-rounds", type=int, default=4)
    parser.add_argument("--runs", nargs="+", default=["hyperband", "random"],
                        choices=("hyperband", "random"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--startup-timeout", type=float, default=600)
    args = parser.parse_args()
    # Pyro's thread-pool servers (HpBandSter's name server, dispatcher and workers) refuse
    # connections beyond THREADPOOL_SIZE (default 40): with hundreds of workers registering at
    # once, HpBandSter's workers die with "no free workers". Raise it for every process here.
    os.environ.setdefault("PYRO_THREADPOOL_SIZE", str(max(200, 2 * args.workers + 100)))
    quiet_hpbandster_logging()
    state: dict = {}
    with tempfile.TemporaryDirectory(prefix="hpbandster-scale-") as wd:
        port_file = os.path.join(wd, "ns-port")
        ns = subprocess.Popen([sys.executable, HERE, "_ns", "--port-file", port_file])
        try:
            wait_for(lambda: os.path.exists(port_file) or ns.poll() is not None, 60,
                     "the name server")
            with open(port_file) as fh:
                ns_port = int(fh.read())
            for kind in args.runs:
                state["load"] = os.getloadavg()[0]
                emit(**one_run(kind, args, ns_port, wd, state))
        finally:
            if state.get("workers") is not None:
                state["workers"].stop()
            ns.terminate()
            ns.wait(timeout=30)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_workers":
        workers_main(sys.argv[2:])
    elif len(sys.argv) > 1 and sys.argv[1] == "_ns":
        ns_main(sys.argv[2:])
    else:
        main()
