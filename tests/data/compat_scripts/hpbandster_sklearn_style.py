"""What hpbandster-sklearn's ``HpBandSterSearchCV`` does: it seeds the space by setting
``cs.seed``, starts a name server on a free port and a worker that cross-validates an
estimator with the budget as its iteration count, and runs BOHB."""
import json
import logging

import ConfigSpace as CS
import ConfigSpace.hyperparameters as CSH
import numpy as np
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

import hpbandster.core.nameserver as hpns
from hpbandster.core.worker import Worker
from hpbandster.optimizers import BOHB

logging.basicConfig(level=logging.WARNING)
X, y = load_iris(return_X_y=True)


class SklearnWorker(Worker):
    def compute(self, config, budget, **kwargs):
        estimator = LogisticRegression(C=config["C"], max_iter=int(budget))
        score = np.mean(cross_val_score(estimator, X, y, cv=3))
        return {"loss": 1.0 - float(score), "info": {"score": float(score)}}


cs = CS.ConfigurationSpace()
cs.add_hyperparameter(CSH.UniformFloatHyperparameter("C", lower=1e-3, upper=1e2, log=True))
cs.seed = 3  # hpbandster-sklearn: `self.param_distributions.seed = self.random_state`

NS = hpns.NameServer(run_id="HpBandSterSearchCV", host="127.0.0.1", port=0)
host, port = NS.start()
workers = [SklearnWorker(nameserver=host, nameserver_port=port, run_id="HpBandSterSearchCV", id=i)
           for i in range(2)]
for worker in workers:
    worker.run(background=True)
bohb = BOHB(configspace=cs, run_id="HpBandSterSearchCV", nameserver=host, nameserver_port=port,
            min_budget=3, max_budget=27, eta=3)
res = bohb.run(n_iterations=2, min_n_workers=2)
bohb.shutdown(shutdown_workers=True)
NS.shutdown()
runs = res.get_all_runs()
best = res.get_id2config_mapping()[res.get_incumbent_id()]["config"]
print(json.dumps({"runs": len(runs), "failed": sum(r.loss is None for r in runs),
                  "best_C": best["C"], "seed": cs.seed}))
