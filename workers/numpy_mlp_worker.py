"""A small neural network in plain numpy (no PyTorch), trained for ``budget`` epochs.

A one-hidden-layer MLP (ReLU, softmax, mini-batch SGD with momentum and weight decay) learns to
separate three interleaved spirals, data the file makes itself (900 points, fixed seed). The
budget is the number of epochs (3 to 81): the classic multi-fidelity setting, where a few epochs
already tell the hopeless learning rates from the good ones.

    python workers/numpy_mlp_worker.py                       # BOHB on this machine, from any directory
    ultrarun worker workers/numpy_mlp_worker.py:MLPWorker --run-id exp1 --working-dir /shared/exp1

The master of a cluster run uses ``mlp_space()`` and ``min_budget=3, max_budget=81``.
"""
from __future__ import annotations


import numpy as np
from ConfigSpace import Categorical, ConfigurationSpace, Float, Integer

from ultrarun import Worker

from run_locally import run_locally

MIN_BUDGET, MAX_BUDGET = 3, 81


def mlp_space(seed=None):
    return ConfigurationSpace(seed=seed, space=[
        Float("learning_rate", (1e-3, 1.0), log=True),
        Integer("hidden_units", (4, 128), log=True),
        Float("weight_decay", (1e-6, 1e-2), log=True),
        Categorical("batch_size", [16, 32, 64, 128]),
    ])


def spirals(n_per_class=300, n_classes=3, noise=0.2, seed=0):
    """``n_classes`` interleaved spirals in 2-D: a task a linear model cannot solve."""
    rng = np.random.default_rng(seed)
    radius = np.tile(np.linspace(0.05, 1.0, n_per_class), n_classes)
    labels = np.repeat(np.arange(n_classes), n_per_class)
    angle = labels * 2 * np.pi / n_classes + radius * 4 + rng.normal(0, noise, labels.size)
    points = np.column_stack([radius * np.sin(angle), radius * np.cos(angle)])
    return points, labels


class MLPWorker(Worker):
    """Loss: validation cross-entropy after ``budget`` epochs; info has the accuracy."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        x, y = spirals()
        order = np.random.default_rng(1).permutation(len(y))
        valid, train = order[:300], order[300:]
        self.x_train, self.y_train = x[train], y[train]
        self.x_valid, self.y_valid = x[valid], y[valid]

    def compute(self, config_id, config, budget, working_directory, **kwargs):
        rng = np.random.default_rng(0)  # the same start for every configuration
        n_in, n_hidden, n_out = 2, int(config["hidden_units"]), 3
        params = [rng.normal(0, np.sqrt(2 / n_in), (n_in, n_hidden)), np.zeros(n_hidden),
                  rng.normal(0, np.sqrt(1 / n_hidden), (n_hidden, n_out)), np.zeros(n_out)]
        velocity = [np.zeros_like(p) for p in params]
        lr, decay = config["learning_rate"], config["weight_decay"]
        batch = int(config["batch_size"])
        for _ in range(int(budget)):
            order = rng.permutation(len(self.y_train))
            for start in range(0, len(order), batch):
                idx = order[start:start + batch]
                grads = _gradients(params, self.x_train[idx], self.y_train[idx])
                for p, v, g in zip(params, velocity, grads):
                    v *= 0.9
                    v -= lr * (g + decay * p)
                    p += v
        loss, accuracy = _evaluate(params, self.x_valid, self.y_valid)
        if not np.isfinite(loss):  # diverged: a learning rate too large
            loss = 10.0
        return {"loss": float(loss), "info": {"accuracy": float(accuracy), "epochs": int(budget)}}


def _forward(params, x):
    w1, b1, w2, b2 = params
    hidden = np.maximum(x @ w1 + b1, 0.0)
    logits = hidden @ w2 + b2
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    return hidden, probs / probs.sum(axis=1, keepdims=True)


def _gradients(params, x, y):
    w1, b1, w2, b2 = params
    hidden, probs = _forward(params, x)
    d_logits = probs
    d_logits[np.arange(len(y)), y] -= 1.0
    d_logits /= len(y)
    d_hidden = (d_logits @ w2.T) * (hidden > 0)
    return [x.T @ d_hidden, d_hidden.sum(axis=0), hidden.T @ d_logits, d_logits.sum(axis=0)]


def _evaluate(params, x, y):
    with np.errstate(all="ignore"):
        _, probs = _forward(params, x)
        loss = -np.mean(np.log(probs[np.arange(len(y)), y] + 1e-12))
    return loss, np.mean(probs.argmax(axis=1) == y)


def main(argv=None):
    result = run_locally(MLPWorker, mlp_space(), MIN_BUDGET, MAX_BUDGET, argv, __doc__)
    best = result.get_runs_by_id(result.get_incumbent_id())[-1]
    config = result.get_id2config_mapping()[best.config_id]["config"]
    print(f"best after {best.info['epochs']} epochs: {config}: validation loss {best.loss:.3f}, "
          f"accuracy {best.info['accuracy']:.3f} ({len(result.get_all_runs())} runs)")
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
