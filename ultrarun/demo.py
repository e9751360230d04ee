"""``ultrarun demo``: a real optimisation end to end on this machine (docs/cli.md)."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from .benchmarks import BRANIN_OPTIMUM, BraninWorker, branin_space
from .frontends import DEFAULT_METHOD, METHODS
from .local import LocalCluster
from .results import json_result_logger


def run_demo(args: argparse.Namespace) -> int:
    out = Path(args.output).resolve()
    out.mkdir(parents=True, exist_ok=True)
    method = args.optimizer or DEFAULT_METHOD
    iterations = "asha" if args.asha else getattr(args, "iterations", None)
    schedule = f" ({iterations})" if iterations else ""
    print(f"ultrarun demo: {method}{schedule} on multi-fidelity Branin, budgets 1..27, "
          f"{args.n_workers} worker processes", flush=True)
    t0 = time.time()
    with LocalCluster(n_workers=args.n_workers, worker_class=BraninWorker,
                      worker_kwargs={"max_budget": 27.0, "sleep_per_budget": 0.01},
                      run_id="demo", working_directory=out) as cluster:
        print(f"name server at {cluster.nameserver.host}:{cluster.nameserver_port}", flush=True)
        front = METHODS[method]
        kwargs = dict(min_budget=1, max_budget=27, eta=3, seed=args.seed, run_id="demo",
                      nameserver=cluster.nameserver.host, nameserver_port=cluster.nameserver_port,
                      secret=cluster.secret, working_directory=out,
                      result_logger=json_result_logger(out), overwrite=True)
        if method != "random" and iterations is not None:
            kwargs["iterations"] = iterations
        seconds = getattr(args, "seconds", None)
        if seconds is not None:
            kwargs["time_left_for_this_task"] = seconds
        else:  # a fixed number of iterations: reproducible per seed
            kwargs["deterministic"] = True
        space = branin_space()
        space.to_json(out / "configspace.json")  # for the dashboard's axes (docs/dashboard.md)
        master = front(space, **kwargs)
        try:
            result = master.run(n_iterations=None if seconds is not None else args.n_iterations,
                                min_n_workers=args.n_workers)
        finally:
            master.shutdown(shutdown_workers=True)
    runs = result.get_all_runs()
    failed = sum(1 for r in runs if r.loss is None)
    print(f"\n{len(runs)} jobs ({failed} failed) on {len(result.get_id2config_mapping())} "
          f"configurations in {time.time() - t0:.1f}s", flush=True)
    print("incumbent per budget (Branin's optimum is 0.397887):")
    for budget, (config_id, loss) in sorted(result.get_incumbents_per_budget().items()):
        config = result.get_id2config_mapping()[config_id]["config"]
        pretty = ", ".join(f"{k}={v:.4f}" for k, v in sorted(config.items()))
        print(f"  budget {budget:>5g}: loss {loss:.5f} (regret {loss - BRANIN_OPTIMUM:.5f})  "
              f"config {config_id}: {pretty}")
    print(f"results: {out / 'configs.json'}, {out / 'results.json'}")
    from .report import write_report

    try:
        html = write_report(out)
    except ImportError as exc:  # matplotlib missing: the message says what to install
        print(f"no report: {exc}")
        return 0
    print(f"report: {html}")
    return 0
