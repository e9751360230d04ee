"""On a cluster: every process finds its address from the network interface, the master's name
server writes its credentials into a shared directory, workers read them from there, and the
Result is pickled into the shared directory."""
import argparse
import json
import logging
import os
import pickle

import ConfigSpace as CS

import hpbandster.core.nameserver as hpns
from hpbandster.core.worker import Worker
from hpbandster.optimizers import BOHB

logging.basicConfig(level=logging.WARNING)


class MyWorker(Worker):
    def compute(self, config, budget, **kwargs):
        return {"loss": float(abs(config["x"] - 0.2) + 1 / budget), "info": {"pid": os.getpid()}}

    @staticmethod
    def get_configspace():
        config_space = CS.ConfigurationSpace()
        config_space.add_hyperparameter(CS.UniformFloatHyperparameter("x", lower=0, upper=1))
        return config_space


parser = argparse.ArgumentParser()
parser.add_argument("--n_workers", type=int, default=2)
parser.add_argument("--worker", action="store_true")
parser.add_argument("--run_id", type=str)
parser.add_argument("--nic_name", type=str)
parser.add_argument("--shared_directory", type=str)
args = parser.parse_args()

host = hpns.nic_name_to_host(args.nic_name)

if args.worker:
    w = MyWorker(run_id=args.run_id, host=host)
    w.load_nameserver_credentials(working_directory=args.shared_directory)
    w.run(background=False)
    exit(0)

NS = hpns.NameServer(run_id=args.run_id, host=host, port=0, working_directory=args.shared_directory)
ns_host, ns_port = NS.start()
w = MyWorker(run_id=args.run_id, host=host, nameserver=ns_host, nameserver_port=ns_port)
w.run(background=True)
bohb = BOHB(configspace=MyWorker.get_configspace(), run_id=args.run_id, host=host,
            nameserver=ns_host, nameserver_port=ns_port, min_budget=1, max_budget=9)
res = bohb.run(n_iterations=2, min_n_workers=args.n_workers)
with open(os.path.join(args.shared_directory, "results.pkl"), "wb") as fh:
    pickle.dump(res, fh)
bohb.shutdown(shutdown_workers=True)
NS.shutdown()
pids = {r.info["pid"] for r in res.get_all_runs() if r.info}
print(json.dumps({"runs": len(res.get_all_runs()), "worker_pids": len(pids)}))
