"""ultraopt's tutorial 07: checkpoint, interruption, then warm start. fmin writes a checkpoint
every result; the run is interrupted (here by the objective itself, after 30 evaluations);
joblib loads the checkpoint (the optimizer), FMinResult wraps it, and two new runs warm start
from it: "continue" with the file's path, "resume" with the loaded result."""
import json
import sys

from joblib import load

from ultraopt import FMinResult, fmin
from ultraopt.tests.mock import config_space, evaluate

strategy = sys.argv[1] if len(sys.argv) > 1 else "Serial"
calls = {"n": 0}


def interrupted(config):
    calls["n"] += 1
    if calls["n"] > 30:
        raise KeyboardInterrupt
    return evaluate(config)


try:
    fmin(interrupted, config_space, checkpoint_file="checkout.pkl", checkpoint_freq=1,
         n_iterations=100000, parallel_strategy=strategy, n_jobs=2 if strategy != "Serial" else 1,
         show_progressbar=False)
except KeyboardInterrupt:
    pass
checkout_content = load("checkout.pkl")
backup = load("checkout.pkl.bak")
result = FMinResult(checkout_content)
print(result)
continued = fmin(evaluate, config_space, n_iterations=10, previous_result="checkout.pkl",
                 warm_start_strategy="continue", show_progressbar=False)
resumed = fmin(evaluate, config_space, n_iterations=10, previous_result=result,
               warm_start_strategy="resume", show_progressbar=False)
print(json.dumps({"type": type(checkout_content).__name__,
                  "checkpointed": result.budget2info[1]["num_configs"],
                  "backup": len(backup.budget2obvs[1]["losses"]),
                  "continued": continued.budget2info[1]["num_configs"],
                  "resumed": resumed.budget2info[1]["num_configs"],
                  "improved": continued.best_loss <= result.best_loss}))
