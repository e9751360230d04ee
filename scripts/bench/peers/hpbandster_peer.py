"""HpBandSter 0.7.4's BOHB on the shared problems, one worker in this process.

    /tmp/peers/hpbandster/bin/python scripts/bench/peers/hpbandster_peer.py [--seeds 0-9]

Venv (HpBandSter needs numpy < 2 and ConfigSpace < 0.7): ``python -m venv /tmp/peers/hpbandster
&& /tmp/peers/hpbandster/bin/pip install "hpbandster==0.7.4" "numpy<2" "ConfigSpace<0.7"
"scipy<1.14" "statsmodels<0.15" "scikit-learn<1.6"``. BOHB with its defaults, budgets 1..27,
eta 3, Hyperband iterations until the total budget is spent.
"""
import logging
import os
import random
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import ConfigSpace as CS  # noqa: E402
import numpy as np  # noqa: E402
from hpbandster.core.nameserver import NameServer  # noqa: E402
from hpbandster.core.worker import Worker  # noqa: E402
from hpbandster.optimizers import BOHB  # noqa: E402

from problems import ETA, MAX_BUDGET, MIN_BUDGET, PROBLEMS, Trace, emit_run, runner_arguments  # noqa: E402


def space(params, seed):
    cs = CS.ConfigurationSpace(seed=seed)
    for p in params:
        if p.kind == "float":
            cs.add_hyperparameter(CS.UniformFloatHyperparameter(p.name, p.low, p.high, log=p.log))
        elif p.kind == "int":
            cs.add_hyperparameter(CS.UniformIntegerHyperparameter(p.name, int(p.low),
                                                                  int(p.high), log=p.log))
        else:
            cs.add_hyperparameter(CS.CategoricalHyperparameter(p.name, list(p.choices)))
    for p in params:
        if p.parent is not None:
            cs.add_condition(CS.InCondition(cs.get_hyperparameter(p.name),
                                            cs.get_hyperparameter(p.parent), list(p.parent_values)))
    return cs


class ProblemWorker(Worker):
    def __init__(self, problem, trace, **kwargs):
        super().__init__(**kwargs)
        self.problem, self.trace = problem, trace

    def compute(self, config, budget, **kwargs):
        config = {k: (v.item() if hasattr(v, "item") else v) for k, v in config.items()}
        return {"loss": self.trace.evaluate(self.problem, config, float(budget)), "info": {}}


def run(problem, seed, total, workdir):
    np.random.seed(seed)
    random.seed(seed)
    trace = Trace(total)
    run_id = f"q{seed}"
    ns = NameServer(run_id=run_id, host="127.0.0.1", port=0, working_directory=workdir)
    host, port = ns.start()
    worker = ProblemWorker(problem, trace, run_id=run_id, nameserver=host, nameserver_port=port)
    worker.run(background=True)
    bohb = BOHB(configspace=space(problem.params, seed), run_id=run_id, nameserver=host,
                nameserver_port=port, min_budget=MIN_BUDGET, max_budget=MAX_BUDGET, eta=ETA)
    try:
        iterations = 0
        while not trace.exhausted and iterations < 64:
            bohb.run(n_iterations=1)  # one more Hyperband iteration
            iterations += 1
    finally:
        bohb.shutdown(shutdown_workers=True)
        ns.shutdown()
    return trace


def main():
    args = runner_arguments(__doc__)
    logging.basicConfig(level=logging.ERROR)
    for name in ("hpbandster", "Pyro4"):
        logging.getLogger(name).setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as workdir:
        for name in args.problems:
            for seed in args.seeds:
                emit_run("hpbandster_bohb", name, seed,
                         run(PROBLEMS[name], seed, args.total_budget, workdir), version="0.7.4")


if __name__ == "__main__":
    main()
