"""A real model on real data: a support vector machine on scikit-learn's handwritten digits.

The budget is the fraction of the training set the model is fitted on (1/9 to 1), so small
budgets are cheap and rank configurations roughly as the full data does. The data ships with
scikit-learn (``load_digits``: 1797 8x8 images, 10 classes); ``pip install scikit-learn``.

    python workers/sklearn_digits_worker.py                  # BOHB on this machine, from any directory
    ultrarun worker workers/sklearn_digits_worker.py:DigitsWorker --run-id exp1 --working-dir /shared/exp1

The master of a cluster run uses ``digits_space()`` and ``min_budget=1/9, max_budget=1``.
"""
from __future__ import annotations


import numpy as np
from ConfigSpace import ConfigurationSpace, Float

from ultrarun import Worker

from run_locally import run_locally

MIN_BUDGET, MAX_BUDGET = 1 / 9, 1.0


def digits_space(seed=None):
    return ConfigurationSpace(seed=seed, space=[Float("C", (1e-2, 1e3), log=True),
                                                Float("gamma", (1e-5, 1e-1), log=True)])


class DigitsWorker(Worker):
    """Loss: 1 - validation accuracy of ``SVC(C, gamma)`` fitted on ``budget`` of the training set."""

    def __init__(self, *args, validation_fraction=0.3, **kwargs):
        super().__init__(*args, **kwargs)
        from sklearn.datasets import load_digits  # loaded once per worker, not once per job

        x, y = load_digits(return_X_y=True)
        order = np.random.default_rng(0).permutation(len(y))  # the same split in every worker
        n_valid = int(validation_fraction * len(y))
        self.x_valid, self.y_valid = x[order[:n_valid]] / 16.0, y[order[:n_valid]]
        self.x_train, self.y_train = x[order[n_valid:]] / 16.0, y[order[n_valid:]]

    def compute(self, config_id, config, budget, working_directory, **kwargs):
        from sklearn.svm import SVC

        n = max(int(round(budget * len(self.y_train))), 30)
        model = SVC(C=config["C"], gamma=config["gamma"])
        model.fit(self.x_train[:n], self.y_train[:n])
        accuracy = float(model.score(self.x_valid, self.y_valid))
        return {"loss": 1.0 - accuracy, "info": {"accuracy": accuracy, "n_train": n}}


def main(argv=None):
    result = run_locally(DigitsWorker, digits_space(), MIN_BUDGET, MAX_BUDGET, argv, __doc__)
    best = result.get_runs_by_id(result.get_incumbent_id())[-1]
    config = result.get_id2config_mapping()[best.config_id]["config"]
    print(f"best: C={config['C']:.3g} gamma={config['gamma']:.3g}: validation accuracy "
          f"{best.info['accuracy']:.3f} on the full training set "
          f"({len(result.get_all_runs())} runs)")
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
