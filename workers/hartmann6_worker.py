"""A ready-to-run worker: multi-fidelity Hartmann6 (six dimensions, minimum -3.32237 at full budget).

    python workers/hartmann6_worker.py                       # BOHB on this machine, from any directory
    ultrarun worker workers/hartmann6_worker.py:Hartmann6Worker --run-id exp1 --working-dir /shared/exp1

The master of a cluster run uses ``hartmann6_space()`` from ``ultrarun.benchmarks`` and
``min_budget=1, max_budget=27``. Copy it as the starting point of your own worker: replace ``compute``.
"""
from __future__ import annotations

import time

from ultrarun import Worker
from ultrarun.benchmarks import HARTMANN6_OPTIMUM, hartmann6, hartmann6_space

from run_locally import run_locally


class Hartmann6Worker(Worker):
    def __init__(self, *args, max_budget=27.0, sleep_per_budget=0.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_budget = max_budget
        self.sleep_per_budget = sleep_per_budget

    def compute(self, config_id, config, budget, working_directory, **kwargs):
        time.sleep(self.sleep_per_budget * budget)  # stands in for training for `budget` epochs
        loss = hartmann6(config, budget, self.max_budget)
        return {"loss": loss, "info": {"regret": loss - HARTMANN6_OPTIMUM}}


def main(argv=None):
    result = run_locally(Hartmann6Worker, hartmann6_space(), 1, 27, argv, __doc__, n_iterations=4)
    config_id, loss = result.get_incumbents_per_budget()[27.0]
    print(f"best at budget 27: loss {loss:.4f}, regret {loss - HARTMANN6_OPTIMUM:.4f} "
          f"({len(result.get_all_runs())} runs)")
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
