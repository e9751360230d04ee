"""Writes this directory's data with HpBandSter 0.7.4 itself (run with a Python that has it,
numpy < 2 and ConfigSpace < 1; never with ultrarun):

    /tmp/peers/hpbandster/bin/python tests/data/hpbandster-0.7.4/make_data.py

- ``run/configs.json``, ``run/results.json``: the logs of a BOHB run (budgets 1..9, eta 3, two
  iterations, fixed seeds) on a function of two hyperparameters that fails for x > 0.9;
- ``result.pkl``: the Result that run returned, pickled;
- ``worker.pkl``: a worker of ``pickled_worker.py`` pickled under HpBandSter's names.
"""
import json
import logging
import os
import pickle
import sys

import numpy as np
import ConfigSpace as CS

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import hpbandster.core.nameserver as hpns  # noqa: E402
import hpbandster.core.result as hpres  # noqa: E402
from hpbandster.optimizers import BOHB  # noqa: E402

from pickled_worker import PicklableWorker  # noqa: E402

logging.basicConfig(level=logging.WARNING)


def main():
    np.random.seed(7)
    space = CS.ConfigurationSpace(seed=7)
    space.add_hyperparameters([CS.UniformFloatHyperparameter("x", 0, 1),
                               CS.CategoricalHyperparameter("kind", ["a", "b"])])
    run_dir = os.path.join(HERE, "run")
    logger = hpres.json_result_logger(directory=run_dir, overwrite=True)
    ns = hpns.NameServer(run_id="hpb074", host="127.0.0.1", port=0)
    host, port = ns.start()
    worker = PicklableWorker(run_id="hpb074", nameserver=host, nameserver_port=port,
                             logger=logging.getLogger("worker"))
    worker.run(background=True)
    bohb = BOHB(configspace=space, run_id="hpb074", nameserver=host, nameserver_port=port,
                min_budget=1, max_budget=9, eta=3, result_logger=logger,
                logger=logging.getLogger("master"))
    result = bohb.run(n_iterations=2)
    bohb.shutdown(shutdown_workers=True)
    ns.shutdown()
    with open(os.path.join(HERE, "result.pkl"), "wb") as fh:
        pickle.dump(result, fh)
    idle = PicklableWorker(run_id="hpb074", nameserver="127.0.0.1", nameserver_port=9999,
                           logger=logging.getLogger("worker"), id=3, timeout=60)
    idle.offset = 0.25
    with open(os.path.join(HERE, "worker.pkl"), "wb") as fh:
        pickle.dump(idle, fh)
    incumbent = result.get_incumbent_id()
    summary = {"runs": len(result.get_all_runs()), "configs": len(result.get_id2config_mapping()),
               "incumbent": list(incumbent),
               "incumbent_loss": result.get_runs_by_id(incumbent)[-1].loss,
               "failed": sum(r.loss is None for r in result.get_all_runs())}
    with open(os.path.join(HERE, "expected.json"), "w") as fh:
        json.dump(summary, fh, indent=1)
    print(summary)


if __name__ == "__main__":
    main()
