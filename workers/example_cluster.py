"""HpBandSter's cluster example, ported: one script for the master node and the worker nodes.

On the master node:   python workers/example_cluster.py --shared-directory /shared/exp1 --nic eth0
On every worker node: python workers/example_cluster.py --shared-directory /shared/exp1 --worker

The master starts the name server, which writes the credentials file into the shared directory;
workers wait for that file, read host, port and the run secret from it, and join.
"""
from __future__ import annotations

import argparse
import logging

from ultrarun import BOHB, NameServer, json_result_logger, nic_name_to_host
from ultrarun.benchmarks import branin_space

from branin_worker import BraninWorker


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run-id", default="cluster1")
    parser.add_argument("--shared-directory", required=True)
    parser.add_argument("--nic", default="lo", help="network interface to listen on")
    parser.add_argument("--worker", action="store_true", help="run a worker, not the master")
    parser.add_argument("--n-iterations", type=int, default=4)
    parser.add_argument("--min-workers", type=int, default=1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    host = nic_name_to_host(args.nic)

    if args.worker:
        w = BraninWorker(run_id=args.run_id, host=host, timeout=120)
        w.load_nameserver_credentials(working_directory=args.shared_directory)
        w.run(background=False)  # until the master shuts us down (or 120 s idle)
        return 0

    ns = NameServer(run_id=args.run_id, host=host, port=0,
                    working_directory=args.shared_directory)
    ns_host, ns_port = ns.start()
    bohb = BOHB(configspace=branin_space(), run_id=args.run_id, host=host, nameserver=ns_host,
                nameserver_port=ns_port, min_budget=1, max_budget=27,
                working_directory=args.shared_directory,
                result_logger=json_result_logger(args.shared_directory, overwrite=True))
    try:
        res = bohb.run(n_iterations=args.n_iterations, min_n_workers=args.min_workers)
    finally:
        bohb.shutdown(shutdown_workers=True)
        ns.shutdown()
    print("incumbent:", res.get_id2config_mapping()[res.get_incumbent_id()]["config"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
