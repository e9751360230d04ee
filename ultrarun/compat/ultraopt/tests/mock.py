"""``ultraopt.tests.mock``: ``config_space`` and ``evaluate``, the toy problem of ultraopt's
tutorials: a two-dimensional Rosenbrock function over ``x0, x1`` in [-5, 10] whose valley
moves towards its minimum at (1, 1) as ``budget`` grows to 100 (loss 0 there)."""
from __future__ import annotations

import math
from typing import Any, Mapping

from ConfigSpace import ConfigurationSpace, Float

config_space = ConfigurationSpace()
config_space.add([Float("x0", (-5.0, 10.0)), Float("x1", (-5.0, 10.0))])


def evaluate(config: Mapping[str, Any], budget: float = 100) -> float:
    x0, x1 = float(config["x0"]), float(config["x1"])
    shift = 1.0 + 0.1 * math.log(100.0 / max(float(budget), 1e-9))  # 1 at the full budget
    return 100.0 * (x1 - x0 ** 2) ** 2 + (x0 - shift) ** 2


__all__ = ["config_space", "evaluate"]
