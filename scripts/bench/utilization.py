"""Worker utilisation of synchronous Hyperband and ASHA.

    python scripts/bench/utilization.py [--workers 8] [--lengths 1 4 16 64] [--prefetch 1]
                                        [--asha-iterations]
                                        [--hpbandster-python /tmp/hpb-venv/bin/python]

W worker processes; a job sleeps 10 ms x budget; eta=3 over budgets 1..27. For each length n it
runs n Hyperband iterations, then ASHA for the same wall time (``time_left_for_this_task`` = the
Hyperband run's duration, ``run(n_iterations=None)``): what ASHA does with the time synchronous
Hyperband needs. ``--asha-iterations`` also runs n ASHA iterations of 27 configurations each, a
fixed amount of work whose end (the chain of promotions of the last configurations) no scheduler
can spread over 8 workers. Each run prints one JSON line with

- ``utilisation``: the workers' compute time / (W x wall time from the first compute's start to
  the last compute's end);
- ``utilisation_until_last_launch``: the same over the window in which the master still had
  jobs to launch (the final drain of a run is excluded);
- ``idle_start``, ``idle_between_jobs`` and ``idle_final_drain``: where the rest went
  (worker-time fractions: before a worker's first job, between jobs, after its last job);
- ``work_s`` (compute seconds done), ``jobs``, ``max_budget_jobs`` and ``run_s`` (``run()``'s
  duration).

``--prefetch 1`` lets a worker hold its next job while it computes (hides the result's round
trip); ``--queue 0 1`` keeps one job queued beyond the job slots.

With --hpbandster-python, hpbandster_utilization_peer.py (next to this file) then runs under that
interpreter (a virtual environment holding hpbandster 0.7.4) with the same --workers and
--lengths; it measures HpBandSter's HyperBand the same way, and its JSON lines, marked
"peer": "hpbandster", are printed here too.

HpBandSter 0.7.4 measured on the reference machine with the same setup: 25% for one iteration,
91% for 16 iterations (end-to-end utilisation).
"""
from __future__ import annotations

import argparse
import logging
import math
import time

from _common import emit, run_peer, utilisation
from ultrarun.benchmarks import branin_space
from ultrarun.frontends import HyperBand
from ultrarun.local import LocalCluster
from ultrarun.worker import Worker

SLEEP_PER_BUDGET = 0.01
HPBANDSTER = {1: 0.25, 16: 0.91}  # measured on the reference machine, not here


class SleepWorker(Worker):
    def compute(self, config, budget, **kwargs):
        start = time.time()
        time.sleep(SLEEP_PER_BUDGET * budget)
        return {"loss": float(config["x1"]) * budget, "info": {"start": start, "end": time.time()}}


def measure(jobs, n_workers: int) -> dict:
    """The workers' own compute intervals: time spent on anything else (waiting for a job,
    sending a result) is idle time."""
    return utilisation([(j.result["info"]["start"], j.result["info"]["end"]) for j in jobs],
                       [j.timestamps["started"] for j in jobs],
                       [j.worker_name for j in jobs], n_workers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--lengths", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--queue", type=int, nargs=2, default=[-1, 0], metavar=("MIN", "MAX"),
                        help="the masters' job_queue_sizes (relative to the job slots)")
    parser.add_argument("--prefetch", type=int, default=0,
                        help="jobs a busy worker may hold besides its running one")
    parser.add_argument("--asha-iterations", action="store_true",
                        help="also run ASHA for the same number of iterations (27 configurations "
                             "each) instead of the same time")
    parser.add_argument("--hpbandster-python", metavar="PATH",
                        help="also run hpbandster_utilization_peer.py with this interpreter "
                             "(after ours)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with LocalCluster(n_workers=args.workers, worker_class=SleepWorker) as cluster:
        def run(length: int, mode: str, seconds: float = math.inf) -> tuple[dict, float]:
            master = HyperBand(branin_space(), run_id=cluster.run_id, min_budget=1,
                               max_budget=27, eta=3, seed=length, asha=mode != "hyperband",
                               nameserver=cluster.nameserver.host,
                               nameserver_port=cluster.nameserver_port, secret=cluster.secret,
                               working_directory=cluster.working_directory, show_progress=False,
                               job_queue_sizes=tuple(args.queue), prefetch=args.prefetch,
                               time_left_for_this_task=seconds, overwrite=True)
            try:
                master.wait_for_workers(args.workers)
                t0 = time.monotonic()
                master.run(n_iterations=None if mode == "asha" else length,
                           min_n_workers=args.workers)
                took = time.monotonic() - t0
            finally:
                master.shutdown()
            row = {"bench": "utilization", "mode": mode, "iterations": length,
                   "workers": args.workers, "job_queue_sizes": args.queue,
                   "prefetch": args.prefetch, "run_s": round(took, 3),
                   **measure(master.jobs, args.workers),
                   "work_s": round(sum(j.kwargs["budget"] for j in master.jobs)
                                   * SLEEP_PER_BUDGET, 3),
                   "max_budget_jobs": sum(j.kwargs["budget"] == 27 for j in master.jobs)}
            return row, took

        for length in args.lengths:
            hyperband, took = run(length, "hyperband")
            if length in HPBANDSTER:
                hyperband["hpbandster_utilisation"] = HPBANDSTER[length]
            emit(**hyperband)
            asha, _ = run(length, "asha", seconds=took)
            asha["time_left_for_this_task"] = round(took, 3)
            emit(**asha)
            if args.asha_iterations:
                emit(**run(length, "asha_iterations")[0])
    if args.hpbandster_python:
        run_peer(args.hpbandster_python, "hpbandster_utilization_peer.py",
                 ["--workers", str(args.workers), "--lengths", *map(str, args.lengths)])


if __name__ == "__main__":
    main()
