"""A custom optimizer with HpBandSter's API: a config generator that proposes points near the
best result so far, and a Master whose iterations are successive halving."""
import json
import logging

import ConfigSpace as CS
import numpy as np

import hpbandster.core.nameserver as hpns
from hpbandster.core.base_config_generator import base_config_generator
from hpbandster.core.master import Master
from hpbandster.core.worker import Worker
from hpbandster.optimizers.iterations import SuccessiveHalving

logging.basicConfig(level=logging.WARNING)


class NearBest(base_config_generator):
    def __init__(self, configspace, **kwargs):
        super().__init__(**kwargs)
        self.configspace = configspace
        self.rng = np.random.RandomState(3)
        self.seen = []
        self.proposed = 0

    def get_config(self, budget):
        self.proposed += 1
        if len(self.seen) < 5:
            return {"x": float(self.rng.uniform(-2, 2))}, {"model_based_pick": False}
        best = min(self.seen)[1]
        x = float(np.clip(best + self.rng.normal(scale=0.1), -2, 2))
        return {"x": x}, {"model_based_pick": True}

    def new_result(self, job, update_model=True):
        super().new_result(job)
        if job.result is not None:
            self.seen.append((job.result["loss"], job.kwargs["config"]["x"]))


class NearBestSH(Master):
    def __init__(self, configspace, **kwargs):
        super().__init__(config_generator=NearBest(configspace), **kwargs)
        self.budgets = np.array([1.0, 3.0, 9.0])
        self.config.update({"budgets": self.budgets, "max_budget": 9.0, "min_budget": 1.0, "eta": 3})

    def get_next_iteration(self, iteration, iteration_kwargs={}):
        return SuccessiveHalving(HPB_iter=iteration, num_configs=[9, 3, 1], budgets=self.budgets,
                                 config_sampler=self.config_generator.get_config, **iteration_kwargs)


class Quadratic(Worker):
    def compute(self, config, budget, **kwargs):
        return {"loss": float((config["x"] - 1.0) ** 2 + 0.1 / budget), "info": {}}


space = CS.ConfigurationSpace()
space.add_hyperparameter(CS.UniformFloatHyperparameter("x", lower=-2, upper=2))
NS = hpns.NameServer(run_id="custom", host="127.0.0.1", port=0)
ns_host, ns_port = NS.start()
w = Quadratic(run_id="custom", nameserver=ns_host, nameserver_port=ns_port)
w.run(background=True)
opt = NearBestSH(space, run_id="custom", nameserver=ns_host, nameserver_port=ns_port)
res = opt.run(n_iterations=3)
opt.shutdown(shutdown_workers=True)
NS.shutdown()

id2conf = res.get_id2config_mapping()
inc = res.get_incumbent_id()
print(json.dumps({"runs": len(res.get_all_runs()), "proposed": opt.config_generator.proposed,
                  "told": len(opt.config_generator.seen), "configs": len(id2conf),
                  "model_picks": sum(c["config_info"]["model_based_pick"] for c in id2conf.values()),
                  "incumbent_x": id2conf[inc]["config"]["x"], "eta": res.HB_config["eta"]}))
