"""Local and parallel with processes: the same script is the master, or with --worker a worker
that knows only the name server's address and the run id."""
import argparse
import json
import logging

import ConfigSpace as CS

import hpbandster.core.nameserver as hpns
from hpbandster.core.worker import Worker
from hpbandster.optimizers import BOHB

logging.basicConfig(level=logging.WARNING)


class MyWorker(Worker):
    def compute(self, config, budget, **kwargs):
        return {"loss": float((config["x"] - 0.7) ** 2 + 1 / budget), "info": {"budget": budget}}

    @staticmethod
    def get_configspace():
        config_space = CS.ConfigurationSpace()
        config_space.add_hyperparameter(CS.UniformFloatHyperparameter("x", lower=0, upper=1))
        return config_space


parser = argparse.ArgumentParser()
parser.add_argument("--n_workers", type=int, default=2)
parser.add_argument("--worker", action="store_true")
args = parser.parse_args()

if args.worker:
    w = MyWorker(nameserver="127.0.0.1", run_id="processes")
    w.run(background=False)
    exit(0)

NS = hpns.NameServer(run_id="processes", host="127.0.0.1", port=None)
NS.start()
bohb = BOHB(configspace=MyWorker.get_configspace(), run_id="processes", min_budget=1, max_budget=9)
res = bohb.run(n_iterations=2, min_n_workers=args.n_workers)
bohb.shutdown(shutdown_workers=True)
NS.shutdown()
print(json.dumps({"runs": len(res.get_all_runs()),
                  "failed": sum(r.loss is None for r in res.get_all_runs())}))
