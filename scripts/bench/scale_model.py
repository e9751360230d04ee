"""The master's CPU per job spent in the optimizer, at many observations and many jobs in flight.

    python scripts/bench/scale_model.py [--observations 1000 10000] [--in-flight 0 256 1000]
                                        [--optimizers tpe bohb dehb random] [--jobs 300]

What a master at scale does per job, without the runtime: ``ask`` one configuration at the
lowest budget and ``tell`` the result of one, with N results already told (spread over the
budgets 1, 3, 9, 27 as ASHA's rungs fill: 27:9:3:1) and P configurations in flight (asked, not
told: BOHB counts them as bad, a constant liar). ``tpe`` is the default front end's optimizer
(``minimize``, ``ultrarun demo``) with its defaults, measured first. Each tell at the model's
budget makes the next ask refit the model (TPE: once 0.5% of its results are new), as in a run. Prints one JSON line per (optimizer, N, P) with the median
and mean wall ms per ask+tell over ``--jobs`` jobs and the process's CPU ms per job (refits
included: the number to compare on a shared machine), and for TPE the CPU ms of one refit of
its densities at the end (``refit_cpu_ms``, the mean of 10). The issue's goal: <= 1 ms at 10,000
observations.
"""
from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from _common import emit
from ultrarun.benchmarks import branin, branin_space
from ultrarun import optimizers

BUDGETS = (1.0, 3.0, 9.0, 27.0)
SHARES = np.array([27, 9, 3, 1], dtype=float) / 40
#: the optimizer of every front end, the default's first
OPTIMIZERS = {"tpe": optimizers.TPE, "bohb": optimizers.BOHB, "dehb": optimizers.DEHB,
              "random": optimizers.RandomSearch}


def measure(kind: str, n_obs: int, in_flight: int, jobs: int, seed: int = 0) -> dict:
    opt = OPTIMIZERS[kind](branin_space(), seed=seed)
    rng = np.random.default_rng(seed)
    budgets = rng.choice(BUDGETS, size=n_obs, p=SHARES)
    # N results of random configurations (as at a run's start), learnt in one call
    configs = [dict(c) for c in branin_space(seed=seed).sample_configuration(n_obs)]
    opt.replay([(c, branin(c, b, 27.0), float(b)) for c, b in zip(configs, budgets)])
    flying = [(opt.ask(1.0)[0][0], 1.0) for _ in range(in_flight)]
    times = []
    cpu = time.process_time()
    for i in range(jobs):
        t0 = time.perf_counter()
        config, _ = opt.ask(1.0)[0]
        done, budget = flying.pop(0) if flying else (config, 1.0)
        budget = BUDGETS[i % 4]  # results come back at every rung, the model's included
        opt.tell(done, branin(done, budget, 27.0), budget)
        times.append(time.perf_counter() - t0)
        if done is not config:
            flying.append((config, 1.0))
    cpu = time.process_time() - cpu
    refit = None
    if hasattr(opt, "_fit"):  # TPE: one refit of its densities on everything it knows now
        budget, pending = opt.current_model_budget(), len(opt._pending)
        t0 = time.process_time()
        for _ in range(10):
            opt._fit(budget, pending)
        refit = round(100 * (time.process_time() - t0), 3)
    return {"bench": "scale_model", "optimizer": kind, "observations": n_obs,
            "in_flight": in_flight, "jobs": jobs,
            "median_ms_per_job": round(1000 * statistics.median(times), 3),
            "mean_ms_per_job": round(1000 * statistics.fmean(times), 3),
            "cpu_ms_per_job": round(1000 * cpu / jobs, 3), "refit_cpu_ms": refit,
            "model_budget": getattr(opt, "current_model_budget", lambda: None)()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--observations", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--in-flight", type=int, nargs="+", default=[0, 256, 1000])
    parser.add_argument("--optimizers", nargs="+", default=list(OPTIMIZERS),
                        choices=list(OPTIMIZERS))
    parser.add_argument("--jobs", type=int, default=300)
    args = parser.parse_args()
    for kind in args.optimizers:
        for n_obs in args.observations:
            for in_flight in args.in_flight:
                emit(**measure(kind, n_obs, in_flight, args.jobs))


if __name__ == "__main__":
    main()
