"""HpBandSter's example 1 as users copy it (``MyWorker`` from ``hpbandster.examples.commons``),
then a worker in the style of HpBandSter's example workers, with the ConfigSpace 0.4 arguments
they write (a string default, ``q=``, a normal without bounds) and categoricals mixing ints and
floats, that writes each configuration it gets to a JSON file."""
import argparse
import json
import logging
import os

import ConfigSpace as CS
import ConfigSpace.hyperparameters as CSH

import hpbandster.core.nameserver as hpns
from hpbandster.core.worker import Worker
from hpbandster.examples.commons import MyWorker
from hpbandster.optimizers import BOHB

logging.basicConfig(level=logging.WARNING)


class JsonWorker(Worker):
    def compute(self, config_id, config, budget, working_directory):
        with open(os.path.join(working_directory, "config_%d_%d_%d.json" % config_id), "w") as fh:
            json.dump(config, fh)
        types = sorted({type(value).__name__ for value in config.values()})
        return {"loss": float(config["lr"]) + config["dropout"] / budget,
                "info": {"types": types, "choice": config["choice"],
                         "choice_type": type(config["choice"]).__name__}}

    @staticmethod
    def get_configspace():
        cs = CS.ConfigurationSpace()
        lr = CSH.UniformFloatHyperparameter("lr", lower=1e-6, upper=1e-1, default_value="1e-2",
                                            log=True)
        units = CSH.UniformIntegerHyperparameter("units", lower=8, upper=64, q=8)
        dropout = CSH.UniformFloatHyperparameter("dropout", lower=0.0, upper=0.9,
                                                 default_value=0.5, q=0.1)
        shift = CSH.NormalFloatHyperparameter("shift", mu=0, sigma=1)
        choice = CSH.CategoricalHyperparameter("choice", [1, 2.5])
        flag = CSH.CategoricalHyperparameter("flag", [True, False])
        optimizer = CSH.CategoricalHyperparameter("optimizer", ["Adam", "SGD"])
        cs.add_hyperparameters([lr, units, dropout, shift, choice, flag, optimizer])
        return cs


parser = argparse.ArgumentParser()
parser.add_argument("--workdir", type=str, default=".")
args = parser.parse_args()

NS = hpns.NameServer(run_id="example1", host="127.0.0.1", port=None)
NS.start()
w = MyWorker(sleep_interval=0, nameserver="127.0.0.1", run_id="example1")
w.run(background=True)
bohb = BOHB(configspace=w.get_configspace(), run_id="example1", nameserver="127.0.0.1",
            min_budget=9, max_budget=243)
res = bohb.run(n_iterations=2)
bohb.shutdown(shutdown_workers=True)
example1 = len(res.get_all_runs())

w = JsonWorker(nameserver="127.0.0.1", run_id="example1")
w.run(background=True)
bohb = BOHB(configspace=JsonWorker.get_configspace(), run_id="example1", nameserver="127.0.0.1",
            min_budget=1, max_budget=9, working_directory=args.workdir)
res = bohb.run(n_iterations=2)
bohb.shutdown(shutdown_workers=True)
NS.shutdown()
runs = res.get_all_runs()
print(json.dumps({"example1": example1, "runs": len(runs),
                  "configs": len(res.get_id2config_mapping()),
                  "failed": sum(r.loss is None for r in runs),
                  "types": sorted({t for r in runs if r.info for t in r.info["types"]}),
                  "choices": sorted({(r.info["choice"], r.info["choice_type"])
                                     for r in runs if r.info}),
                  "written": len([f for f in os.listdir(args.workdir) if f.endswith(".json")])}))
