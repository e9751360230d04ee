"""Warm start: a new BOHB run is told the results of an earlier run (from its logs); the
earlier runs come back in the new Result as iteration -1."""
import argparse
import json
import logging

import ConfigSpace as CS

import hpbandster.core.nameserver as hpns
import hpbandster.core.result as hpres
from hpbandster.core.worker import Worker
from hpbandster.optimizers import BOHB

logging.basicConfig(level=logging.WARNING)


class MyWorker(Worker):
    def compute(self, config, budget, **kwargs):
        loss = (config["x"] - 0.3) ** 2 + (0.1 if config["kind"] == "b" else 0.0) + 1.0 / budget
        return {"loss": float(loss), "info": {}}

    @staticmethod
    def get_configspace():
        config_space = CS.ConfigurationSpace()
        config_space.add_hyperparameters([CS.UniformFloatHyperparameter("x", 0, 1),
                                          CS.CategoricalHyperparameter("kind", ["a", "b"])])
        return config_space


parser = argparse.ArgumentParser()
parser.add_argument("--run_id", type=str, default="warm")
parser.add_argument("--nic_name", type=str, default="lo")
parser.add_argument("--shared_directory", type=str)
parser.add_argument("--previous_run_dir", type=str)
args = parser.parse_args()

host = hpns.nic_name_to_host(args.nic_name)
result_logger = hpres.json_result_logger(directory=args.shared_directory, overwrite=False)
NS = hpns.NameServer(run_id=args.run_id, host=host, port=0, working_directory=args.shared_directory)
ns_host, ns_port = NS.start()
w = MyWorker(run_id=args.run_id, host=host, nameserver=ns_host, nameserver_port=ns_port, timeout=120)
w.run(background=True)
previous_run = hpres.logged_results_to_HBS_result(args.previous_run_dir)
bohb = BOHB(configspace=MyWorker.get_configspace(), run_id=args.run_id, host=host,
            nameserver=ns_host, nameserver_port=ns_port, result_logger=result_logger,
            min_budget=3, max_budget=9, previous_result=previous_run)
res = bohb.run(n_iterations=1)
bohb.shutdown(shutdown_workers=True)
NS.shutdown()

old = [r for r in res.get_all_runs() if r.config_id[0] == -1]
print(json.dumps({"runs": len(res.get_all_runs()), "previous": len(previous_run.get_all_runs()),
                  "warm": len(old), "last_warm_finished": max(r.time_stamps["finished"] for r in old),
                  "warm_failed": sum(r.loss is None for r in old),
                  "logged_new": len(hpres.logged_results_to_HBS_result(args.shared_directory).get_all_runs())}))
