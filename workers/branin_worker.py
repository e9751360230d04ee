"""A ready-to-run worker: multi-fidelity Branin with pretend work proportional to the budget.

    ultrarun worker workers/branin_worker.py:BraninWorker --run-id exp1 --working-dir /shared/exp1

Copy it as the starting point of your own worker: replace ``compute``.
"""
from __future__ import annotations

import time

from ultrarun import Worker
from ultrarun.benchmarks import BRANIN_OPTIMUM, branin


class BraninWorker(Worker):
    def __init__(self, *args, max_budget: float = 27.0, sleep_per_budget: float = 0.01, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_budget = max_budget
        self.sleep_per_budget = sleep_per_budget

    def compute(self, config_id, config, budget, working_directory, **kwargs):
        time.sleep(self.sleep_per_budget * budget)  # stands in for training for `budget` epochs
        loss = branin(config, budget, self.max_budget)
        return {"loss": loss, "info": {"regret": loss - BRANIN_OPTIMUM}}
