"""HpBandSter's first example, ported: name server, workers and BOHB in one script.

    python workers/example_local.py --n-workers 2 --n-iterations 3

Workers run as threads here; for processes and clusters see example_cluster.py.
"""
from __future__ import annotations

import argparse
import logging
import tempfile

from ultrarun import BOHB, NameServer
from ultrarun.benchmarks import branin_space

from branin_worker import BraninWorker


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-workers", type=int, default=2)
    parser.add_argument("--n-iterations", type=int, default=3)
    parser.add_argument("--run-id", default="example1")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    ns = NameServer(run_id=args.run_id, host="127.0.0.1", port=0)
    host, port = ns.start()
    workers = []
    for i in range(args.n_workers):
        w = BraninWorker(run_id=args.run_id, nameserver=host, nameserver_port=port, id=i,
                         sleep_per_budget=0.001)
        w.run(background=True)
        workers.append(w)
    bohb = BOHB(configspace=branin_space(), run_id=args.run_id, nameserver=host,
                nameserver_port=port, min_budget=1, max_budget=27, seed=0,
                working_directory=tempfile.mkdtemp(prefix="ultrarun-example-"))
    try:
        res = bohb.run(n_iterations=args.n_iterations, min_n_workers=args.n_workers)
    finally:
        bohb.shutdown(shutdown_workers=True)
        ns.shutdown()
    id2config = res.get_id2config_mapping()
    incumbent = res.get_incumbent_id()
    print("best found configuration:", id2config[incumbent]["config"])
    print(f"{len(id2config)} configurations, {len(res.get_all_runs())} runs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
