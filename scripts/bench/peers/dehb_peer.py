"""DEHB 0.1.2 (the ``dehb`` package) on the shared problems, through its ask/tell interface.

    /tmp/peers/dehb/bin/python scripts/bench/peers/dehb_peer.py [--seeds 0-9]

Venv: ``python -m venv /tmp/peers/dehb && /tmp/peers/dehb/bin/pip install dehb scikit-learn``
(dehb pins numpy < 2). Defaults, budgets 1..27, eta 3, one worker.
"""
import logging
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from ConfigSpace import (Categorical, ConfigurationSpace, Float, InCondition,  # noqa: E402
                         Integer)
from dehb import DEHB  # noqa: E402

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
    cs = space(problem.params, seed)
    dehb = DEHB(cs=cs, dimensions=len(cs), min_fidelity=MIN_BUDGET, max_fidelity=MAX_BUDGET,
                eta=ETA, n_workers=1, output_path=os.path.join(workdir, f"{problem.name}{seed}"),
                seed=seed, log_level="ERROR")
    while not trace.exhausted:
        job = dehb.ask()
        config = {k: (v.item() if hasattr(v, "item") else v) for k, v in dict(job["config"]).items()}
        loss = trace.evaluate(problem, config, float(job["fidelity"]))
        dehb.tell(job, {"fitness": loss, "cost": float(job["fidelity"])})
    return trace


def main():
    args = runner_arguments(__doc__)
    logging.basicConfig(level=logging.ERROR)
    try:
        from loguru import logger
        logger.remove()
    except ImportError:
        pass
    with tempfile.TemporaryDirectory() as workdir:
        for name in args.problems:
            for seed in args.seeds:
                emit_run("dehb_package", name, seed,
                         run(PROBLEMS[name], seed, args.total_budget, workdir), version="0.1.2")


if __name__ == "__main__":
    main()
