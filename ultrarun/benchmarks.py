"""Multi-fidelity benchmark functions whose budget matters, with their search spaces.

Branin and Hartmann6 with a fidelity ``z = budget / max_budget`` that shifts the function's
coefficients (as in the multi-fidelity versions used by the BOHB and FABOLAS papers): at full
budget they are the classic functions, with known optima, so regret can be computed.
"""
from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
from ConfigSpace import ConfigurationSpace, Float

from .worker import Worker

BRANIN_OPTIMUM = 0.397887
HARTMANN6_OPTIMUM = -3.32237

_H6_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
_H6_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14],
                  [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
_H6_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                         [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])


def _fidelity(budget: float, max_budget: float) -> float:
    return min(max(float(budget) / float(max_budget), 0.0), 1.0)


def branin(config: dict[str, Any], budget: float, max_budget: float = 1.0) -> float:
    """Multi-fidelity Branin on x1 in [-5, 10], x2 in [0, 15]; minimum 0.397887 at full budget.

    Args:
        config (dict[str, Any]): ``{"x1": ..., "x2": ...}``.
        budget (float): The budget; below ``max_budget`` the coefficients move away from the
            true function's (a cheaper, less faithful version).
        max_budget (float): The full budget.

    Returns:
        float: The loss.
    """
    x1, x2 = float(config["x1"]), float(config["x2"])
    z = _fidelity(budget, max_budget)
    b = 5.1 / (4 * math.pi ** 2) - 0.01 * (1 - z)
    c = 5 / math.pi - 0.1 * (1 - z)
    t = 1 / (8 * math.pi) + 0.05 * (1 - z)
    return (x2 - b * x1 ** 2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


def branin_space(seed: int | None = None) -> ConfigurationSpace:
    return ConfigurationSpace(seed=seed, space=[Float("x1", (-5.0, 10.0)),
                                                Float("x2", (0.0, 15.0))])


def hartmann6(config: dict[str, Any], budget: float, max_budget: float = 1.0) -> float:
    """Multi-fidelity Hartmann6 on [0, 1]^6; minimum -3.32237 at full budget.

    Args:
        config (dict[str, Any]): ``{"x0": ..., ..., "x5": ...}``.
        budget (float): The budget; below ``max_budget`` the coefficients move away from the
            true function's (a cheaper, less faithful version).
        max_budget (float): The full budget.

    Returns:
        float: The loss.
    """
    x = np.array([float(config[f"x{i}"]) for i in range(6)])
    z = _fidelity(budget, max_budget)
    alpha = _H6_ALPHA - 0.1 * (1 - z)
    inner = np.sum(_H6_A * (x - _H6_P) ** 2, axis=1)
    return float(-np.sum(alpha * np.exp(-inner)))


def hartmann6_space(seed: int | None = None) -> ConfigurationSpace:
    return ConfigurationSpace(seed=seed, space=[Float(f"x{i}", (0.0, 1.0)) for i in range(6)])


class BraninWorker(Worker):
    """Evaluates multi-fidelity Branin (``branin``); ``info`` has the regret.

    Args:
        *args: The [Worker][ultrarun.worker.Worker]'s arguments (``run_id``, ...).
        max_budget (float): The budget at which the function is the true one.
        sleep_per_budget (float): Seconds of pretend work per unit of budget.
        **kwargs: The [Worker][ultrarun.worker.Worker]'s keyword arguments.
    """

    _problem, _optimum = staticmethod(branin), BRANIN_OPTIMUM

    def __init__(self, *args: Any, max_budget: float = 27.0, sleep_per_budget: float = 0.0,
                 **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.max_budget = max_budget
        self.sleep_per_budget = sleep_per_budget

    def compute(self, config_id, config, budget, working_directory, **kwargs):
        if self.sleep_per_budget:
            time.sleep(self.sleep_per_budget * budget)
        loss = self._problem(config, budget, self.max_budget)
        return {"loss": loss, "info": {"regret": loss - self._optimum, "budget": budget}}


class Hartmann6Worker(BraninWorker):
    """Evaluates multi-fidelity Hartmann6 (``hartmann6``); ``info`` has the regret.

    Args:
        *args: The [Worker][ultrarun.worker.Worker]'s arguments (``run_id``, ...).
        max_budget (float): The budget at which the function is the true one.
        sleep_per_budget (float): Seconds of pretend work per unit of budget.
        **kwargs: The [Worker][ultrarun.worker.Worker]'s keyword arguments.
    """

    _problem, _optimum = staticmethod(hartmann6), HARTMANN6_OPTIMUM


__all__ = ["branin", "branin_space", "hartmann6", "hartmann6_space", "BraninWorker",
           "Hartmann6Worker", "BRANIN_OPTIMUM", "HARTMANN6_OPTIMUM"]
