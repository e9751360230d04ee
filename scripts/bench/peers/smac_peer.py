"""SMAC3's multi-fidelity facade (random forest + Hyperband) on the shared problems.

    /tmp/peers/smac/bin/python scripts/bench/peers/smac_peer.py [--seeds 0-9]

Venv: ``python -m venv /tmp/peers/smac && /tmp/peers/smac/bin/pip install smac scikit-learn``.
``MultiFidelityFacade`` with its Hyperband intensifier (eta 3), budgets 1..27, ask/tell, one
worker; each trial is charged its budget.
"""
import logging
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from ConfigSpace import (Categorical, ConfigurationSpace, Float, InCondition,  # noqa: E402
                         Integer)
from smac import MultiFidelityFacade, Scenario  # noqa: E402
from smac.runhistory.dataclasses import TrialValue  # noqa: E402

from problems import ETA, MAX_BUDGET, MIN_BUDGET, PROBLEMS, Trace, emit_run, runner_arguments  # noqa: E402


def space(params, seed):
    cs = ConfigurationSpace(seed=seed)
    for p in params:
        if p.kind == "float":
            cs.add(Float(p.name, (p.low, p.high), log=p.log))
        elif p.kind == "int":
            cs.add(Integer(p.name, (int(p.low), int(p.high)), log=p.log))
        else:
            cs.add(Categorical(p.name, list(p.choices)))
    for p in params:
        if p.parent is not None:
            cs.add(InCondition(cs[p.name], cs[p.parent], list(p.parent_values)))
    return cs


def run(problem, seed, total, workdir):
    trace = Trace(total)
    scenario = Scenario(space(problem.params, seed), deterministic=True, n_trials=100000,
                        min_budget=MIN_BUDGET, max_budget=MAX_BUDGET, seed=seed,
                        output_directory=os.path.join(workdir, f"{problem.name}{seed}"))
    smac = MultiFidelityFacade(scenario, lambda config, seed=0, budget=1.0: 0.0,
                               intensifier=MultiFidelityFacade.get_intensifier(scenario, eta=ETA),
                               overwrite=True, logging_level=40)
    while not trace.exhausted:
        info = smac.ask()
        config = {k: (v.item() if hasattr(v, "item") else v) for k, v in dict(info.config).items()}
        loss = trace.evaluate(problem, config, float(info.budget))
        smac.tell(info, TrialValue(cost=loss))
    return trace


def main():
    args = runner_arguments(__doc__)
    logging.basicConfig(level=logging.ERROR)
    import smac as smac_module
    with tempfile.TemporaryDirectory() as workdir:
        for name in args.problems:
            for seed in args.seeds:
                emit_run("smac3_mf", name, seed, run(PROBLEMS[name], seed, args.total_budget,
                                                     workdir), version=smac_module.version)


if __name__ == "__main__":
    main()
