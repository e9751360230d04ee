"""Throughput of the runner backends next to the libraries they are built on.

Runs no-op and 10 ms jobs through each backend with one harness (submit all, collect all),
and the same jobs through ``concurrent.futures`` and raw ``dask.distributed`` in the same run.
Prints one JSON line per measurement:

    python scripts/bench/runners.py [--workers 2] [--noop-jobs 2000] [--sleep-jobs 400]

``ratio`` is elapsed time over the baseline's (lower is better; the targets are process <= 2x
ProcessPoolExecutor and dask <= 1.2x raw dask; the Pyro runner, long-lived Pyro workers behind the
dispatcher, is compared with ProcessPoolExecutor too). ``overhead_per_job_ms`` is the time beyond the
ideal (jobs x duration / workers), per job.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import multiprocessing
import time
from typing import Any, Callable

from ultrarun.runners import (AbstractRunner, DaskParallelRunner, ProcessRunner, PyroRunner,
                              SerialRunner,
                              TargetFunctionRunner, ThreadRunner, TrialInfo)


def target(config: dict[str, Any]) -> float:
    """The job: sleep ``config['sleep']`` seconds (0: no-op) and return a cost."""
    if config["sleep"]:
        time.sleep(config["sleep"])
    return 0.0


def through_runner(runner: AbstractRunner, configs: list[dict[str, Any]]) -> float:
    """Submit every job, collect every result; return the elapsed seconds."""
    start = time.perf_counter()
    for config in configs:
        runner.submit_trial(TrialInfo(config))
    done = 0
    while done < len(configs):
        runner.wait(60)
        done += sum(1 for _ in runner.iter_results())
    return time.perf_counter() - start


def through_executor(executor: concurrent.futures.Executor, configs: list[dict[str, Any]]) -> float:
    start = time.perf_counter()
    futures = [executor.submit(target, config) for config in configs]
    for future in concurrent.futures.as_completed(futures, timeout=600):
        future.result()
    return time.perf_counter() - start


def through_dask(client: Any, configs: list[dict[str, Any]]) -> float:
    from distributed import as_completed

    start = time.perf_counter()
    futures = [client.submit(target, config, pure=False) for config in configs]
    for future in as_completed(futures):
        future.result()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--noop-jobs", type=int, default=2000)
    parser.add_argument("--sleep-jobs", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    args = parser.parse_args(argv)

    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1, processes=True,
                           host="127.0.0.1", dashboard_address=None)
    client = Client(cluster)
    context = multiprocessing.get_context("forkserver")
    single = TargetFunctionRunner(target)
    pool_executor = concurrent.futures.ProcessPoolExecutor(args.workers, mp_context=context)
    thread_executor = concurrent.futures.ThreadPoolExecutor(args.workers)
    runners: dict[str, AbstractRunner] = {
        "serial": SerialRunner(single),
        "thread": ThreadRunner(single, n_workers=args.workers),
        "process": ProcessRunner(single, n_workers=args.workers, mp_context=context),
        "dask": DaskParallelRunner(single, dask_client=client),
        "pyro": PyroRunner(single, n_workers=args.workers),
    }
    # backend -> (how to run a batch, baseline name)
    measured: dict[str, tuple[Callable[[list[dict[str, Any]]], float], str | None]] = {
        "loop": (lambda cs: _loop(cs), None),
        "ThreadPoolExecutor": (lambda cs: through_executor(thread_executor, cs), None),
        "ProcessPoolExecutor": (lambda cs: through_executor(pool_executor, cs), None),
        "dask.distributed": (lambda cs: through_dask(client, cs), None),
        "serial": (lambda cs: through_runner(runners["serial"], cs), "loop"),
        "thread": (lambda cs: through_runner(runners["thread"], cs), "ThreadPoolExecutor"),
        "process": (lambda cs: through_runner(runners["process"], cs), "ProcessPoolExecutor"),
        "dask": (lambda cs: through_runner(runners["dask"], cs), "dask.distributed"),
        "pyro": (lambda cs: through_runner(runners["pyro"], cs), "ProcessPoolExecutor"),
    }
    try:
        for name, (run, _) in measured.items():  # warm up: start every pool
            run([{"sleep": 0.0}] * (2 * args.workers))
        for kind, sleep, n_jobs in (("noop", 0.0, args.noop_jobs), ("sleep10ms", 0.01, args.sleep_jobs)):
            configs = [{"sleep": sleep} for _ in range(n_jobs)]
            elapsed: dict[str, float] = {}
            for name, (run, baseline) in measured.items():
                workers = 1 if name in ("serial", "loop") else args.workers
                elapsed[name] = min(run(configs) for _ in range(args.repeat))
                ideal = n_jobs * sleep / workers
                print(json.dumps({
                    "backend": name, "job_kind": kind, "n_jobs": n_jobs, "workers": workers,
                    "jobs_per_s": round(n_jobs / elapsed[name], 1),
                    "overhead_per_job_ms": round(1000 * (elapsed[name] - ideal) / n_jobs, 4),
                    "baseline": baseline,
                    "ratio": None if baseline is None else round(elapsed[name] / elapsed[baseline], 3),
                }), flush=True)
    finally:
        for runner in runners.values():
            runner.close()
        pool_executor.shutdown()
        thread_executor.shutdown()
        client.close()
        cluster.close()


def _loop(configs: list[dict[str, Any]]) -> float:
    start = time.perf_counter()
    for config in configs:
        target(config)
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
