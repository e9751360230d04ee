"""The master of a cluster run, as the launch scripts in scripts/ call it: BOHB over the workers
of run RUN_ID, which meet through the credentials file in the shared directory.

    python workers/example_master.py --run-id exp1 --shared-directory /shared/exp1

It waits for the name server's credentials file, then for ``--min-workers`` workers (saying so
every 10 s, giving up after ``--min-workers-timeout`` seconds), runs BOHB on multi-fidelity
Branin (budgets 1 to 27, as ``ultrarun.benchmarks:BraninWorker`` and workers/branin_worker.py
expect), logs the results to SHARED/results and shuts the workers down. Copy it for your own
run: change the configuration space and the budgets to your worker's.
"""
from __future__ import annotations

import argparse
import logging
import threading
import time

from ultrarun import BOHB, json_result_logger
from ultrarun.benchmarks import branin_space
from ultrarun.security import Credentials


def wait_for_credentials(directory, run_id, timeout):
    """The name server may start a moment after this script: wait for its credentials file."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return Credentials.read(directory, run_id)
        except FileNotFoundError:
            if time.monotonic() >= deadline:
                raise SystemExit(f"no credentials file for run {run_id} in {directory} after "
                                 f"{timeout:g} s: is the name server running?") from None
            threading.Event().wait(0.2)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--shared-directory", required=True)
    parser.add_argument("--n-iterations", type=int, default=4, help="BOHB iterations (default 4)")
    parser.add_argument("--min-workers", type=int, default=1,
                        help="workers to wait for before the first job (default 1)")
    parser.add_argument("--min-workers-timeout", type=float, default=600,
                        help="give up after this many seconds without them (default 600)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    creds = wait_for_credentials(args.shared_directory, args.run_id, timeout=120)
    bohb = BOHB(branin_space(), run_id=args.run_id, min_budget=1, max_budget=27,
                nameserver=creds.host, nameserver_port=creds.port, secret=creds.secret,
                working_directory=args.shared_directory,
                result_logger=json_result_logger(f"{args.shared_directory}/results",
                                                 overwrite=True))
    try:
        result = bohb.run(n_iterations=args.n_iterations, min_n_workers=args.min_workers,
                          min_n_workers_timeout=args.min_workers_timeout)
    finally:
        bohb.shutdown(shutdown_workers=True)
    incumbent = result.get_incumbent_id()
    print(f"incumbent: {result.get_id2config_mapping()[incumbent]['config']} "
          f"({len(result.get_all_runs())} runs)", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
