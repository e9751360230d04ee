"""Local and sequential: a name server on Pyro's default port, one worker in a thread, BOHB."""
import argparse
import json
import logging

import ConfigSpace as CS
import numpy

import hpbandster.core.nameserver as hpns
import hpbandster.core.result as hpres
from hpbandster.core.worker import Worker
from hpbandster.optimizers import BOHB

logging.basicConfig(level=logging.WARNING)


class MyWorker(Worker):
    def __init__(self, *args, sleep_interval=0, **kwargs):
        super().__init__(*args, **kwargs)
        self.sleep_interval = sleep_interval

    def compute(self, config, budget, **kwargs):
        noise = numpy.random.randn() / budget
        return {"loss": float((config["x"] - 0.3) ** 2 + abs(noise)), "info": {"noise": noise}}

    @staticmethod
    def get_configspace():
        config_space = CS.ConfigurationSpace()
        config_space.add_hyperparameter(CS.UniformFloatHyperparameter("x", lower=0, upper=1))
        return config_space


parser = argparse.ArgumentParser()
parser.add_argument("--min_budget", type=float, default=1)
parser.add_argument("--max_budget", type=float, default=27)
parser.add_argument("--n_iterations", type=int, default=4)
parser.add_argument("--log_dir", type=str, default=None)
args = parser.parse_args()

NS = hpns.NameServer(run_id="sequential", host="127.0.0.1", port=None)
NS.start()
w = MyWorker(sleep_interval=0, nameserver="127.0.0.1", run_id="sequential")
w.run(background=True)
result_logger = None if args.log_dir is None else hpres.json_result_logger(args.log_dir, overwrite=True)
bohb = BOHB(configspace=w.get_configspace(), run_id="sequential", nameserver="127.0.0.1",
            min_budget=args.min_budget, max_budget=args.max_budget, result_logger=result_logger)
res = bohb.run(n_iterations=args.n_iterations)
bohb.shutdown(shutdown_workers=True)
NS.shutdown()

id2config = res.get_id2config_mapping()
incumbent = res.get_incumbent_id()
print(json.dumps({"port": NS.port, "runs": len(res.get_all_runs()), "configs": len(id2config),
                  "incumbent": id2config[incumbent]["config"],
                  "budgets": list(res.HB_config["budgets"]), "eta": res.HB_config["eta"]}))
