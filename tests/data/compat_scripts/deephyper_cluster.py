"""DeepHyper's search with ultrarun's cluster as its evaluator: ``method="pyro"`` starts a name
server and worker processes on this machine (on a cluster, a Dispatcher given as
``method_kwargs={"executor": ...}`` does the same with workers started elsewhere). The worker
processes import this script again, so it has a ``__main__`` guard."""
import json

from deephyper.evaluator import Evaluator
from deephyper.hpo import CBO, HpProblem


def run(job):
    if job.parameters["x"] > 9.5:
        raise ValueError("x is too large")
    return -(job.parameters["x"] - 1.0) ** 2


if __name__ == "__main__":
    problem = HpProblem()
    problem.add_hyperparameter((-10.0, 10.0), "x")
    evaluator = Evaluator.create(run, method="pyro", method_kwargs={"num_workers": 2})
    search = CBO(problem, random_state=1, log_dir="search")
    results = search.search(evaluator, max_evals=8)
    evaluator.close()
    objectives = results["objective"].tolist()
    print(json.dumps({"rows": len(results), "statuses": sorted(set(results["job_status"])),
                      "numbers": sum(isinstance(o, float) for o in objectives),
                      "failed": sum(str(o).startswith("F_") for o in objectives)}))
