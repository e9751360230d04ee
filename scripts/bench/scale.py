"""Hundreds to a thousand workers on one master: utilisation, throughput and the master's costs.

    python scripts/bench/scale.py --workers 1000 --procs 16 --job-seconds 4 [--seconds 40]
        [--iterations 64] [--runs sh asha hyperband random] [--fronts tpe bohb dehb]
        [--prefetch 0]
        [--hpbandster-python /tmp/peers/hpbandster/bin/python]

W workers run as threads spread over K processes (``--procs``); every job sleeps a fixed
``--job-seconds`` D whatever its budget, so the master must feed W / D jobs per second. Budgets
1..27, eta 3, Branin as the loss. The master (and its dispatcher, in the same process) runs,
with each front end of ``--fronts`` (``tpe``: the default's, ``minimize``'s, first; ``bohb``,
``dehb``), each with its own defaults:

- ``sh``: synchronous successive halving (the brackets the default front end's adaptive
  schedule runs while the budgets agree), ``time_left_for_this_task = --seconds``;
- ``asha``: asynchronous successive halving, ``--seconds`` long;
- ``hyperband``: synchronous Hyperband, ``--iterations`` iterations;
- ``random``: random search at the largest budget, ``--seconds`` long (no front end's model);
- ``asha-random`` / ``hyperband-random``: the same schedules with random sampling (no model).

A name server runs in its own process, as on a cluster. The workers are started once, after the
first run's dispatcher (so they find it by calling it); later runs start a new master whose
dispatcher finds the workers already registered (by listing the name server). Each run prints one
JSON line:

- ``utilisation``: the workers' own compute time / (W x the span from the first compute's start
  to the last compute's end); ``bound``: the same for a zero-overhead simulation of the run's
  schedule (the barriers of synchronous Hyperband, the deadline of a time-bounded run), computed
  with the master's own iteration classes; ``jobs_per_s``: jobs / span;
- ``master_cpu_ms_per_job``: CPU of the master's threads (the thread in ``run()`` and the
  callback thread, where results are journaled and told to the optimizer) per job;
  ``dispatcher_cpu_ms_per_job``: its server loop, senders and monitor; per-thread CPU from
  ``/proc/self/task/*/schedstat``; ``process_cpu_ms_per_job``: the whole process;
  ``workers_cpu_ms_per_job``: all worker processes;
- ``discovery_s``: from the last worker's registration (or, for later runs, from the dispatcher's
  start) until the dispatcher knows all W;
- ``first_job_s``: from the call to ``run()`` until the first job's compute starts;
- ``rss_kb_per_worker``, ``fds_per_worker``: the process's growth from before the master was made
  until the dispatcher knew all W workers, per worker; ``threads`` and ``fds`` at the run's end;
- ``counters``: what the dispatcher did (pings, probes, syncs served, name-server listings,
  pushes), from ``Dispatcher.status()``.

With --hpbandster-python, scale_hpbandster_peer.py runs the ``hyperband`` and ``random`` runs with
HpBandSter 0.7.4's own classes under that interpreter, with the same W, K and D, and its JSON
lines (``"peer": "hpbandster"``) are printed here too.
"""
from __future__ import annotations

import argparse
import heapq
import logging
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import emit, run_peer, utilisation
from scale_common import (WorkerProcesses, branin, cpu_by_role, footprint, process_cpu_s,
                          serve_until_terminated, thread_cpu)

HERE = Path(__file__).resolve()
RUN_ID = "scale"
MIN_BUDGET, MAX_BUDGET, ETA = 1, 27, 3
RUNS = ("sh", "asha", "hyperband", "random", "asha-random", "hyperband-random")
#: runs that end at a deadline rather than after ``--iterations``
TIMED = ("sh", "asha", "random", "asha-random")
#: front ends with a model, the default's first
FRONTS = ("tpe", "bohb", "dehb")


# ------------------------------------------------------------------------ worker processes
def workers_main(argv: list[str]) -> None:
    """``scale.py _workers``: N worker threads in this process, until SIGTERM."""
    p = argparse.ArgumentParser()
    p.add_argument("--dir", required=True)
    p.add_argument("--job-seconds", type=float, required=True)
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--first", type=int, required=True)
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    from ultrarun.security import Credentials
    from ultrarun.worker import Worker

    class SleepWorker(Worker):
        def compute(self, config_id, config, budget, working_directory, **kwargs):
            start = time.time()
            time.sleep(a.job_seconds)
            return {"loss": branin(config, budget, MAX_BUDGET),
                    "info": {"start": start, "end": time.time()}}

    creds = Credentials.read(a.dir, RUN_ID)

    def start():
        workers, registered = [], []
        for i in range(a.first, a.first + a.n):
            w = SleepWorker(RUN_ID, creds.host, creds.port, worker_id=i, secret=creds.secret)
            w.run(background=True)
            registered.append(time.time())
            workers.append(w)
        return workers, registered

    serve_until_terminated(start, lambda w: w.shutdown())


# ------------------------------------------------------------------------------ the bound
def simulate(generator, n_iterations: int | None, n_workers: int, job_s: float,
             seconds: float = math.inf) -> dict:
    """The run's schedule with zero overhead: W workers, every job ``job_s`` long, driven the way
    the master drives its iterations (the next iteration starts when the current ones have
    nothing to hand out; no job starts that would end after ``seconds``); jobs that end at the
    same moment are all registered before anything starts. Utilisation as measured: compute /
    (W x first start to last end)."""
    from ultrarun.job import JobStatus

    rng = random.Random(0)

    def sampler(budget, n):
        return [({"x": rng.random()}, {}) for _ in range(n)]

    iterations, running, seq = [], [], 0
    to_start = math.inf if n_iterations is None else n_iterations
    now, jobs, last_end = 0.0, 0, 0.0
    fits = None if math.isinf(seconds) else (lambda budget: now + job_s <= seconds)
    while True:
        while len(running) < n_workers and (fits is None or now + job_s <= seconds):
            run = None
            for it in iterations:
                if not it.is_finished:
                    run = it.get_next_run(fits)
                    if run is not None:
                        break
            if run is not None:
                seq += 1
                heapq.heappush(running, (now + job_s, seq, run[0], run[2]))
                jobs += 1
                continue
            if to_start > 0:
                iterations.append(generator.get_next_iteration(len(iterations), sampler))
                to_start -= 1
                continue
            break
        if not running:
            break
        now = last_end = running[0][0]
        while running and running[0][0] == now:  # zero overhead: jobs that end together are
            _, _, config_id, budget = heapq.heappop(running)  # all in before the next launch
            iterations[config_id[0]].register_result(config_id, budget, rng.random(),
                                                     JobStatus.SUCCESS)
    return {"bound": round(jobs * job_s / (n_workers * last_end), 4) if jobs else None,
            "bound_jobs": jobs, "bound_span_s": round(last_end, 3)}


# ------------------------------------------------------------------------------- the runs
def make_master(kind: str, front_name: str, creds, args, working_directory: str):
    from ultrarun.benchmarks import branin_space
    from ultrarun.frontends import METHODS, HyperBand, RandomSearch

    common = dict(run_id=RUN_ID, nameserver=creds.host, nameserver_port=creds.port,
                  secret=creds.secret, working_directory=working_directory,
                  show_progress=False, prefetch=args.prefetch, min_budget=MIN_BUDGET,
                  max_budget=MAX_BUDGET, eta=ETA, seed=args.seed,
                  checkpoint_file=os.path.join(working_directory,
                                               f"{kind}-{front_name}.journal.jsonl"),
                  job_queue_sizes=tuple(args.queue))
    if kind in TIMED:
        common["time_left_for_this_task"] = args.seconds
    if kind == "random":
        return RandomSearch(branin_space(), **common)
    front = HyperBand if kind.endswith("-random") else METHODS[front_name]
    iterations = {"sh": "successive_halving", "asha": "asha"}.get(kind.split("-")[0], "hyperband")
    return front(branin_space(), iterations=iterations, bracket_formula=args.bracket_formula,
                 **common)


def role(name: str, tid: int) -> str:
    if name == "MainThread" or name == "dispatcher-callbacks":
        return "master"
    if name.startswith(("pyro-", "dispatch-send", "dispatcher-")):
        return "dispatcher"
    return "bench"


def wait_known(dispatcher, n: int, timeout: float) -> float:
    """Wall-clock time at which the dispatcher knew ``n`` workers."""
    deadline = time.monotonic() + timeout
    while dispatcher.number_of_workers() < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the dispatcher knows {dispatcher.number_of_workers()} of {n} "
                               f"workers after {timeout} s")
        time.sleep(0.002)
    return time.time()


def one_run(kind: str, front: str | None, args, creds, wd: str, state: dict) -> dict:
    master = make_master(kind, front, creds, args, wd)
    d = master.dispatcher
    before = footprint()
    started = time.time()
    d.start()
    if state.get("workers") is None:
        state["workers"] = WorkerProcesses(
            [sys.executable, str(HERE), "_workers", "--dir", wd, "--job-seconds",
             str(args.job_seconds)], args.workers, args.procs)
        last = state["workers"].wait_registered(args.startup_timeout)
        known = wait_known(d, args.workers, args.startup_timeout)
        discovery = {"discovery_s": round(known - last, 3),
                     "discovery": "workers started after the dispatcher, from the last "
                                  "registration",
                     "startup_s": round(known - started, 3)}
    else:
        known = wait_known(d, args.workers, args.startup_timeout)
        discovery = {"discovery_s": round(known - started, 3),
                     "discovery": "dispatcher started after the workers, from its start"}
    workers: WorkerProcesses = state["workers"]
    known_fp = footprint()
    cpu0, wcpu0, pcpu0 = thread_cpu(), workers.cpu_s(), process_cpu_s()
    timed = kind in TIMED
    t_run = time.time()
    try:
        master.run(n_iterations=None if timed else args.iterations, min_n_workers=args.workers)
        run_s = time.time() - t_run
        cpu = cpu_by_role(cpu0, thread_cpu(), role)
        wcpu, pcpu = workers.cpu_s() - wcpu0, process_cpu_s() - pcpu0
        end_fp = footprint()
        status = d.status()
    finally:
        master.shutdown()
    jobs = [j for j in master.jobs if j.result and "start" in (j.result.get("info") or {})]
    n = len(master.jobs)
    spans = [(j.result["info"]["start"], j.result["info"]["end"]) for j in jobs]
    util = utilisation(spans, [j.timestamps["started"] for j in jobs],
                       [j.worker_name for j in jobs], args.workers)
    span = max(e for _, e in spans) - min(s for s, _ in spans)
    bound = simulate(master.iter_generator, None if timed else args.iterations, args.workers,
                     args.job_seconds, args.seconds if timed else math.inf)
    optimizer = master.optimizer
    observations = (sum(len(v) for v in getattr(optimizer, "_losses", {}).values())
                    or sum(len(v) for v in getattr(optimizer, "_results", {}).values()))
    W = args.workers
    return {
        "bench": "scale", "peer": "ultrarun", "run": kind, "front": front,
        "optimizer": type(optimizer).__name__, "workers": W, "procs": args.procs,
        "job_s": args.job_seconds, "prefetch": args.prefetch, "queue": args.queue,
        "bracket_formula": args.bracket_formula,
        "iterations": None if timed else args.iterations,
        "seconds": args.seconds if timed else None, "run_s": round(run_s, 3),
        "jobs": n, "failed": sum(j.status.failed for j in master.jobs),
        "jobs_per_s": round(len(spans) / span, 2), "needed_jobs_per_s": round(W / args.job_seconds, 2),
        **util, **bound,
        "points_below_bound": (round(100 * (bound["bound"] - util["utilisation"]), 2)
                               if bound["bound"] else None),
        "master_cpu_ms_per_job": round(1000 * cpu.get("master", 0) / n, 3),
        "dispatcher_cpu_ms_per_job": round(1000 * cpu.get("dispatcher", 0) / n, 3),
        "process_cpu_ms_per_job": round(1000 * pcpu / n, 3),
        "workers_cpu_ms_per_job": round(1000 * wcpu / n, 3),
        "master_cpu_share": round(cpu.get("master", 0) / run_s, 3),
        "process_cpu_share": round(pcpu / run_s, 3),
        **discovery,
        "first_job_s": round(min(s for s, _ in spans) - t_run, 3),
        "first_job_sent_s": round(min(j.timestamps["started"] for j in master.jobs) - t_run, 3),
        "rss_kb_per_worker": round((known_fp["rss_kb"] - before["rss_kb"]) / W, 2),
        "fds_per_worker": round((end_fp["fds"] - before["fds"]) / W, 3),
        "threads": end_fp["threads"], "fds": end_fp["fds"], "rss_mb": round(end_fp["rss_kb"] / 1024, 1),
        "model_observations": observations,
        "counters": status.get("counters"),
        "load_before": state.get("load"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=256)
    parser.add_argument("--procs", type=int, default=4, help="worker processes")
    parser.add_argument("--job-seconds", type=float, default=2.0)
    parser.add_argument("--seconds", type=float, default=30.0,
                        help="length of the time-bounded runs (sh, asha, random)")
    parser.add_argument("--iterations", type=int, default=64,
                        help="iterations of the synchronous Hyperband runs")
    parser.add_argument("--runs", nargs="+", default=["sh", "asha", "hyperband", "random"],
                        choices=RUNS)
    parser.add_argument("--fronts", nargs="+", default=list(FRONTS), choices=FRONTS,
                        help="front ends the model-based runs use, each run once per front end")
    parser.add_argument("--prefetch", type=int, default=0)
    parser.add_argument("--queue", type=int, nargs=2, default=[-1, 0], metavar=("MIN", "MAX"),
                        help="the master's job_queue_sizes (relative to the job slots)")
    parser.add_argument("--bracket-formula", default="paper", choices=("paper", "hpbandster"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--startup-timeout", type=float, default=600)
    parser.add_argument("--hpbandster-python", metavar="PATH",
                        help="also run scale_hpbandster_peer.py with this interpreter (after "
                             "ours): the hyperband and random runs")
    parser.add_argument("--bound-only", action="store_true",
                        help="print the zero-overhead bounds and exit")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.bound_only:
        from ultrarun.frontends import _generator
        for kind in args.runs:
            timed = kind in TIMED
            gen = _generator(MIN_BUDGET, MAX_BUDGET, ETA, kind.startswith("asha"),
                             "successive_halving" if kind == "sh" else None,
                             args.bracket_formula)
            emit(bench="scale_bound", run=kind, workers=args.workers,
                 **simulate(gen, None if timed else args.iterations, args.workers,
                            args.job_seconds, args.seconds if timed else math.inf))
        return
    state: dict = {"load": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="ultrarun-scale-") as wd:
        ns = subprocess.Popen([sys.executable, "-m", "ultrarun", "nameserver", "--run-id",
                               RUN_ID, "--working-dir", wd, "-q"], stdout=subprocess.DEVNULL)
        try:
            from ultrarun.security import Credentials
            deadline = time.monotonic() + 60
            while True:
                try:
                    creds = Credentials.read(wd, RUN_ID)
                    break
                except FileNotFoundError:
                    if time.monotonic() > deadline or ns.poll() is not None:
                        raise RuntimeError("the name server did not start")
                    time.sleep(0.05)
            for kind in args.runs:
                model = kind not in ("random", "asha-random", "hyperband-random")
                for front in (args.fronts if model else [None]):
                    state["load"] = os.getloadavg()[0]
                    emit(**one_run(kind, front, args, creds, wd, state))
        finally:
            if state.get("workers") is not None:
                state["workers"].stop()
            ns.terminate()
            ns.wait(timeout=30)
    if args.hpbandster_python:
        run_peer(args.hpbandster_python, "scale_hpbandster_peer.py",
                 ["--workers", str(args.workers), "--procs", str(args.procs), "--job-seconds",
                  str(args.job_seconds), "--iterations", str(args.iterations)])


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_workers":
        workers_main(sys.argv[2:])
    else:
        main()
