"""DeepHyper's README: a run function over three hyperparameters, an HpProblem, CBO's search
with an evaluator made by ``Evaluator.create(run, method="thread", ...)`` and a TqdmCallback,
then the results DataFrame. (Fewer evaluations than the README's.)"""
import json
import sys

from deephyper.evaluator import Evaluator
from deephyper.evaluator.callback import TqdmCallback
from deephyper.hpo import CBO, HpProblem


def run(job):
    x = job.parameters["x"]
    b = job.parameters["b"]
    function = job.parameters["function"]
    if function == "linear":
        y = x + b
    elif function == "cubic":
        y = x ** 3 + b
    return y


problem = HpProblem()
problem.add_hyperparameter((-10.0, 10.0), "x")
problem.add_hyperparameter((0, 10), "b")
problem.add_hyperparameter(["linear", "cubic"], "function")

method = sys.argv[1] if len(sys.argv) > 1 else "thread"
evaluator = Evaluator.create(run, method=method,
                             method_kwargs={"num_workers": 2, "callbacks": [TqdmCallback()]})
search = CBO(problem, random_state=42, log_dir="search", solution_selection="argmax_obs")
results = search.search(evaluator, max_evals=12)
evaluator.close()
print(json.dumps({"rows": len(results), "columns": sorted(results.columns),
                  "statuses": sorted(set(results["job_status"])),
                  "best": float(results["objective"].max()),
                  "evaluator": type(evaluator).__mro__[1].__module__}))
