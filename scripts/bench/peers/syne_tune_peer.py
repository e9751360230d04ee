"""syne-tune's BOHB (asynchronous successive halving with a KDE searcher) on the shared problems.

    /tmp/peers/syne-tune/bin/python scripts/bench/peers/syne_tune_peer.py [--seeds 0-9]

Venv: ``python -m venv /tmp/peers/syne-tune && /tmp/peers/syne-tune/bin/pip install
"syne-tune[basic]" scikit-learn statsmodels``. The scheduler is driven directly, one trial at a
time: a trial reports at the rungs 1, 3, 9, 27 until the scheduler stops it, and each report is
charged its budget. syne-tune has no conditional hyperparameters: ``l1_ratio`` is always
sampled and ignored when inactive.
"""
import datetime
import logging
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from syne_tune.backend.trial_status import Trial  # noqa: E402
from syne_tune.config_space import choice, loguniform, randint, uniform  # noqa: E402
from syne_tune.optimizer.baselines import BOHB  # noqa: E402
from syne_tune.optimizer.scheduler import SchedulerDecision  # noqa: E402

from problems import MAX_BUDGET, PROBLEMS, Trace, emit_run, is_active, runner_arguments  # noqa: E402

RUNGS = (1, 3, 9, 27)


def space(params):
    out = {}
    for p in params:
        if p.kind == "float":
            out[p.name] = (loguniform if p.log else uniform)(p.low, p.high)
        elif p.kind == "int":
            out[p.name] = randint(int(p.low), int(p.high))
        else:
            out[p.name] = choice(list(p.choices))
    out["epochs"] = int(MAX_BUDGET)
    return out


def run(problem, seed, total):
    trace = Trace(total)
    scheduler = BOHB(space(problem.params), metric="loss", time_attr="epoch", max_t=int(MAX_BUDGET),
                     do_minimize=True, random_seed=seed, grace_period=1, reduction_factor=3)
    trial_id = 0
    while not trace.exhausted:
        suggestion = scheduler.suggest()
        trial = Trial(trial_id=trial_id, config=suggestion.config,
                      creation_time=datetime.datetime.now())
        trial_id += 1
        scheduler.on_trial_add(trial)
        config = {p.name: suggestion.config[p.name] for p in problem.params}
        config = {p.name: config[p.name] for p in problem.params if is_active(p, config)}
        result = None
        for budget in RUNGS:
            result = {"loss": trace.evaluate(problem, config, float(budget)), "epoch": budget}
            if scheduler.on_trial_result(trial, result) != SchedulerDecision.CONTINUE:
                break
        scheduler.on_trial_complete(trial, result)
    return trace


def main():
    args = runner_arguments(__doc__)
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("syne_tune").setLevel(logging.ERROR)
    for name in args.problems:
        for seed in args.seeds:
            emit_run("syne_tune_bohb", name, seed, run(PROBLEMS[name], seed, args.total_budget))


if __name__ == "__main__":
    main()
