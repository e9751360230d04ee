"""Local and parallel with threads: two workers in this process (told apart by id), BOHB waits
for both."""
import argparse
import json
import logging
import time

import ConfigSpace as CS

import hpbandster.core.nameserver as hpns
from hpbandster.core.worker import Worker
from hpbandster.optimizers import BOHB

logging.basicConfig(level=logging.WARNING)


class SleepyWorker(Worker):
    def __init__(self, *args, sleep_interval=0, **kwargs):
        super().__init__(*args, **kwargs)
        self.sleep_interval = sleep_interval

    def compute(self, config, budget, **kwargs):
        time.sleep(self.sleep_interval)
        return {"loss": float(abs(config["x"] - 0.5) + 1 / budget), "info": {}}

    @staticmethod
    def get_configspace():
        config_space = CS.ConfigurationSpace()
        config_space.add_hyperparameter(CS.UniformFloatHyperparameter("x", lower=0, upper=1))
        return config_space


parser = argparse.ArgumentParser()
parser.add_argument("--n_workers", type=int, default=2)
args = parser.parse_args()

NS = hpns.NameServer(run_id="threads", host="127.0.0.1", port=None)
NS.start()
workers = []
for i in range(args.n_workers):
    w = SleepyWorker(sleep_interval=0.02, nameserver="127.0.0.1", run_id="threads", id=i)
    w.run(background=True)
    workers.append(w)
bohb = BOHB(configspace=w.get_configspace(), run_id="threads", min_budget=1, max_budget=9)
res = bohb.run(n_iterations=2, min_n_workers=args.n_workers)
bohb.shutdown(shutdown_workers=True)
NS.shutdown()

spans = sorted((r.time_stamps["started"], r.time_stamps["finished"]) for r in res.get_all_runs())
overlapping = any(b[0] < a[1] for a, b in zip(spans, spans[1:]))
print(json.dumps({"runs": len(res.get_all_runs()), "overlapping": overlapping}))
