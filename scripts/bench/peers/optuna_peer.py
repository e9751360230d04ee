"""Optuna's TPE (multivariate, grouped) with its Hyperband pruner on the shared problems.

    /tmp/peers/optuna/bin/python scripts/bench/peers/optuna_peer.py [--problems ...] [--seeds 0-9]

Venv: ``python -m venv /tmp/peers/optuna && /tmp/peers/optuna/bin/pip install optuna
scikit-learn``. Sequential trials; a trial is evaluated at the rungs 1, 3, 9, 27 until the pruner
stops it, and each evaluation is charged its budget (as ultrarun's successive halving is).
"""
import os
import sys
import warnings

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import optuna  # noqa: E402

from problems import MAX_BUDGET, PROBLEMS, Trace, emit_run, is_active, runner_arguments  # noqa: E402

RUNGS = (1.0, 3.0, 9.0, 27.0)


def suggest(trial, params):
    config = {}
    for p in params:  # parents come before their children in every problem
        if not is_active(p, config):
            continue
        if p.kind == "float":
            config[p.name] = trial.suggest_float(p.name, p.low, p.high, log=p.log)
        elif p.kind == "int":
            config[p.name] = trial.suggest_int(p.name, int(p.low), int(p.high), log=p.log)
        else:
            config[p.name] = trial.suggest_categorical(p.name, list(p.choices))
    return config


def run(problem, seed, total):
    trace = Trace(total)
    sampler = optuna.samplers.TPESampler(multivariate=True, group=True, seed=seed)
    pruner = optuna.pruners.HyperbandPruner(min_resource=1, max_resource=int(MAX_BUDGET),
                                            reduction_factor=3)
    study = optuna.create_study(sampler=sampler, pruner=pruner)

    def objective(trial):
        config = suggest(trial, problem.params)
        for budget in RUNGS:
            loss = trace.evaluate(problem, config, budget)
            trial.report(loss, int(budget))
            if budget < MAX_BUDGET and trial.should_prune():
                raise optuna.TrialPruned()
        return loss

    while not trace.exhausted:
        study.optimize(objective, n_trials=1)
    return trace


def main():
    args = runner_arguments(__doc__)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore")  # ExperimentalWarning for multivariate / group
    for name in args.problems:
        for seed in args.seeds:
            emit_run("optuna_tpe_hb", name, seed, run(PROBLEMS[name], seed, args.total_budget),
                     version=optuna.__version__)


if __name__ == "__main__":
    main()
