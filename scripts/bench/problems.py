"""The problems of the quality comparison, shared by ultrarun's runs and every peer's runner.

numpy (1.x or 2.x) and the standard library only, plus scikit-learn for ``sgd_digits``: no
ConfigSpace, because the peers run in their own virtual environments with their own ConfigSpace
(HpBandSter needs < 0.7) or none. Each runner turns :attr:`Problem.params` into its own search
space.

Every problem has budgets 1..27 (eta 3) and a loss to minimise:

- ``branin``: multi-fidelity Branin (2 floats), the fidelity shifts its coefficients; optimum
  0.397887 at budget 27. The formula is ``ultrarun.benchmarks.branin``'s (repeated here because
  the peers cannot import ultrarun).
- ``hartmann6``: multi-fidelity Hartmann6 (6 floats in [0, 1]); optimum -3.32237.
- ``counting_ones``: the BOHB paper's mixed benchmark, 8 binary categoricals and 8 floats in
  [0, 1]; the loss is minus the number of ones among the categoricals plus, per float ``x``, the
  mean of ``9 x budget`` Bernoulli(x) draws (seeded by the configuration and budget) below the
  top budget and ``x`` itself at it; optimum -16.
- ``sgd_digits``: scikit-learn's ``SGDClassifier`` on the digits data scikit-learn ships (1,797
  8x8 images, a fixed 75/25 split), budget = training epochs; loss = validation error. Seven
  hyperparameters: floats on a log scale, categoricals, and ``l1_ratio`` active only with the
  elasticnet penalty. Its optimum is unknown: regret is read against the best loss any method
  found in the same sitting.
- ``gb_diabetes``: scikit-learn's ``GradientBoostingRegressor`` on the diabetes data it ships
  (442 patients, a fixed 70/30 split), budget = boosting iterations; loss = validation MSE over
  the target's variance. Five hyperparameters (learning rate on a log scale, depth, leaf size,
  row and feature subsampling). The small budgets mislead: after one iteration the largest
  learning rates win (Spearman rho -0.9 between learning rate and loss), at 27 they overfit;
  the rank correlation of 200 random configurations' losses at budgets 1 and 27 is -0.19 (3 and
  27: 0.03, 9 and 27: 0.57). Its optimum is unknown, as ``sgd_digits``'.

A :class:`Trace` records what a run evaluated, in the order the results came in; regret at a
cumulative budget is computed from it (:func:`regret_at`), the same way for every runner.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Callable, Sequence

import numpy as np

MIN_BUDGET, MAX_BUDGET, ETA = 1.0, 27.0, 3
#: budget units of 16 Hyperband iterations (four full cycles of 1..27, eta 3): every runner's
#: total
DEFAULT_ITERATIONS = 16


@dataclass(frozen=True)
class Param:
    """One hyperparameter: ``kind`` is "float", "int" or "cat"; a conditional one is active only
    when ``parent`` takes one of ``parent_values``."""

    name: str
    kind: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple = ()
    parent: str | None = None
    parent_values: tuple = ()


@dataclass(frozen=True)
class Problem:
    name: str
    params: tuple[Param, ...]
    evaluate: Callable[[dict, float], float]
    optimum: float | None  # None: the best loss found in the sitting


def is_active(param: Param, config: dict) -> bool:
    return param.parent is None or config.get(param.parent) in param.parent_values


# --------------------------------------------------------------------------- branin, hartmann6
def branin(config: dict, budget: float) -> float:
    x1, x2 = float(config["x1"]), float(config["x2"])
    z = min(max(budget / MAX_BUDGET, 0.0), 1.0)
    b = 5.1 / (4 * math.pi ** 2) - 0.01 * (1 - z)
    c = 5 / math.pi - 0.1 * (1 - z)
    t = 1 / (8 * math.pi) + 0.05 * (1 - z)
    return (x2 - b * x1 ** 2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


_H6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_H6_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                  [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
_H6_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                         [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])


def hartmann6(config: dict, budget: float) -> float:
    x = np.array([float(config[f"x{i}"]) for i in range(6)])
    z = min(max(budget / MAX_BUDGET, 0.0), 1.0)
    alpha = _H6_ALPHA - 0.1 * (1 - z)
    return float(-np.sum(alpha * np.exp(-np.sum(_H6_A * (x - _H6_P) ** 2, axis=1))))


# --------------------------------------------------------------------------- counting ones
_N_ONES = 8


def _config_seed(config: dict, budget: float) -> int:
    text = json.dumps([[k, round(v, 10) if isinstance(v, float) else v]
                       for k, v in sorted(config.items())] + [float(budget)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def counting_ones(config: dict, budget: float) -> float:
    ones = sum(int(config[f"c{i}"]) for i in range(_N_ONES))
    x = np.array([float(config[f"x{i}"]) for i in range(_N_ONES)])
    if budget >= MAX_BUDGET:
        return -float(ones + x.sum())
    draws = int(round(9 * budget))
    rng = np.random.default_rng(_config_seed(config, budget))
    return -float(ones + (rng.binomial(draws, x) / draws).sum())


# --------------------------------------------------------------------------- sgd on digits
_DIGITS: Any = None


def _digits() -> Any:
    global _DIGITS
    if _DIGITS is None:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
        from sklearn.preprocessing import StandardScaler

        x, y = load_digits(return_X_y=True)
        x_train, x_valid, y_train, y_valid = train_test_split(x, y, test_size=0.25,
                                                              random_state=0, stratify=y)
        scaler = StandardScaler().fit(x_train)
        _DIGITS = scaler.transform(x_train), y_train, scaler.transform(x_valid), y_valid
    return _DIGITS


def sgd_digits(config: dict, budget: float) -> float:
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import SGDClassifier

    x_train, y_train, x_valid, y_valid = _digits()
    model = SGDClassifier(loss=config["loss"], penalty=config["penalty"], alpha=config["alpha"],
                          l1_ratio=config.get("l1_ratio", 0.15),
                          learning_rate=config["learning_rate"], eta0=config["eta0"],
                          power_t=config["power_t"], average=config["average"] == "yes",
                          max_iter=int(round(budget)), tol=None, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow with a huge eta0
        try:
            model.fit(x_train, y_train)
        except ValueError:  # diverged to NaN weights
            return 1.0
    return float(1.0 - model.score(x_valid, y_valid))


# --------------------------------------------------------------------------- gradient boosting
_DIABETES: Any = None


def _diabetes() -> Any:
    global _DIABETES
    if _DIABETES is None:
        from sklearn.datasets import load_diabetes
        from sklearn.model_selection import train_test_split

        x, y = load_diabetes(return_X_y=True)
        _DIABETES = train_test_split(x, y, test_size=0.3, random_state=0)
    return _DIABETES


def gb_diabetes(config: dict, budget: float) -> float:
    from sklearn.ensemble import GradientBoostingRegressor

    x_train, x_valid, y_train, y_valid = _diabetes()
    model = GradientBoostingRegressor(
        n_estimators=int(round(budget)), learning_rate=config["learning_rate"],
        max_depth=int(config["max_depth"]), min_samples_leaf=int(config["min_samples_leaf"]),
        subsample=config["subsample"], max_features=config["max_features"], random_state=0)
    model.fit(x_train, y_train)
    return float(np.mean((model.predict(x_valid) - y_valid) ** 2) / np.var(y_valid))


PROBLEMS: dict[str, Problem] = {
    "branin": Problem("branin", (Param("x1", "float", -5.0, 10.0), Param("x2", "float", 0.0, 15.0)),
                      branin, 0.397887),
    "hartmann6": Problem("hartmann6", tuple(Param(f"x{i}", "float", 0.0, 1.0) for i in range(6)),
                         hartmann6, -3.32237),
    "counting_ones": Problem(
        "counting_ones",
        tuple(Param(f"c{i}", "cat", choices=(0, 1)) for i in range(_N_ONES))
        + tuple(Param(f"x{i}", "float", 0.0, 1.0) for i in range(_N_ONES)),
        counting_ones, -2.0 * _N_ONES),
    "sgd_digits": Problem("sgd_digits", (
        Param("alpha", "float", 1e-7, 1e-1, log=True),
        Param("eta0", "float", 1e-5, 1.0, log=True),
        Param("power_t", "float", 0.05, 1.0),
        Param("loss", "cat", choices=("hinge", "log_loss", "modified_huber")),
        Param("penalty", "cat", choices=("l2", "l1", "elasticnet")),
        Param("l1_ratio", "float", 0.0, 1.0, parent="penalty", parent_values=("elasticnet",)),
        Param("learning_rate", "cat", choices=("constant", "optimal", "invscaling", "adaptive")),
        Param("average", "cat", choices=("no", "yes")),
    ), sgd_digits, None),
    "gb_diabetes": Problem("gb_diabetes", (
        Param("learning_rate", "float", 0.01, 1.0, log=True),
        Param("max_depth", "int", 1, 10),
        Param("min_samples_leaf", "int", 1, 50),
        Param("subsample", "float", 0.3, 1.0),
        Param("max_features", "float", 0.2, 1.0),
    ), gb_diabetes, None),
}


# --------------------------------------------------------------------------- budgets, traces
def hyperband_total_budget(iterations: int = DEFAULT_ITERATIONS) -> float:
    """Budget units ``iterations`` Hyperband iterations of 1..27 (eta 3) spend when nothing fails
    (the paper's bracket sizes, as ``ultrarun.iterations`` computes them)."""
    s_max = round(math.log(MAX_BUDGET / MIN_BUDGET, ETA))
    total = 0.0
    for i in range(iterations):
        s = s_max - i % (s_max + 1)
        n0 = math.ceil(Fraction(s_max + 1, s + 1) * ETA ** s)
        total += sum(math.floor(n0 / ETA ** k) * MAX_BUDGET / ETA ** (s - k) for k in range(s + 1))
    return total


@dataclass
class Trace:
    """What a run evaluated, in the order results came in: ``[budget, loss]`` pairs."""

    total_budget: float
    evaluations: list[list[float | None]] = field(default_factory=list)
    spent: float = 0.0

    @property
    def exhausted(self) -> bool:
        return self.spent >= self.total_budget

    def add(self, budget: float, loss: float | None) -> None:
        self.spent += float(budget)
        ok = loss is not None and math.isfinite(loss)
        self.evaluations.append([float(budget), float(loss) if ok else None])

    def evaluate(self, problem: Problem, config: dict, budget: float) -> float:
        """Evaluate ``config`` at ``budget`` and record it; the loss."""
        loss = problem.evaluate(config, budget)
        self.add(budget, loss)
        return loss


def emit_run(method: str, problem: str, seed: int, trace: Trace, **extra: Any) -> None:
    """The line every runner prints per run (JSON)."""
    print(json.dumps({"bench": "quality_run", "method": method, "problem": problem,
                      "seed": seed, "spent": trace.spent, "trace": trace.evaluations, **extra}),
          flush=True)


def best_at(evaluations: Sequence[Sequence[float | None]], checkpoints: Sequence[float]
            ) -> list[float]:
    """Best loss at the top budget among the evaluations done within each cumulative budget
    (``inf`` before the first one)."""
    best, used, out = math.inf, 0.0, []
    pending = sorted(checkpoints)
    for budget, loss in evaluations:
        while pending and used + budget > pending[0] + 1e-9:
            out.append(best)
            pending.pop(0)
        used += budget
        if loss is not None and budget >= MAX_BUDGET - 1e-9 and loss < best:
            best = loss
    out.extend(best for _ in pending)
    return out


def parse_seeds(text: str) -> list[int]:
    """``"0-9"`` or ``"0,3,5"`` -> seeds."""
    seeds: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        seeds.extend(range(int(low), int(high or low) + 1))
    return seeds


def runner_arguments(description: str) -> Any:
    """The command line every peer runner takes."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=list(PROBLEMS))
    parser.add_argument("--seeds", type=parse_seeds, default=parse_seeds("0-9"))
    parser.add_argument("--total-budget", type=float, default=hyperband_total_budget())
    return parser.parse_args()


__all__ = ["Param", "Problem", "PROBLEMS", "Trace", "best_at", "emit_run", "hyperband_total_budget",
           "is_active", "parse_seeds", "runner_arguments", "MIN_BUDGET", "MAX_BUDGET", "ETA"]
