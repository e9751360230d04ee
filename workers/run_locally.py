"""What the example workers do when started as a script: a short BOHB run on this machine.

    result = run_locally(MyWorker, my_space(), min_budget=1, max_budget=27, description=__doc__)

Starts a name server and ``--n-workers`` worker processes of the class (LocalCluster), runs
``--n-iterations`` of BOHB over them and returns the Result. Call it under
``if __name__ == "__main__":``, with the worker class defined at module level.
"""
from __future__ import annotations

import argparse

from ultrarun import BOHB, LocalCluster


def run_locally(worker_class, configspace, min_budget, max_budget, argv=None, description=None,
                n_iterations=2):
    parser = argparse.ArgumentParser(description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n-workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--n-iterations", type=int, default=n_iterations,
                        help=f"BOHB iterations (default {n_iterations})")
    args = parser.parse_args(argv)
    with LocalCluster(n_workers=args.n_workers, worker_class=worker_class) as cluster:
        bohb = BOHB(configspace, run_id=cluster.run_id, min_budget=min_budget,
                    max_budget=max_budget, seed=0, nameserver=cluster.nameserver.host,
                    nameserver_port=cluster.nameserver_port, secret=cluster.secret,
                    working_directory=cluster.working_directory)
        try:
            return bohb.run(n_iterations=args.n_iterations, min_n_workers=args.n_workers)
        finally:
            bohb.shutdown(shutdown_workers=True)
