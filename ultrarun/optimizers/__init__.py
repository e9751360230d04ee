"""Optimizers that suggest configurations: ask/tell over a ConfigSpace ``ConfigurationSpace``.

They know nothing about workers or budgets schedules; see ``docs/optimizers.md``.
"""
from __future__ import annotations

from ._base import BaseOptimizer, Suggestion
from ._bohb import BOHB
from ._dehb import DEHB
from ._random import RandomSearch
from ._tpe import TPE

__all__ = ["BaseOptimizer", "RandomSearch", "BOHB", "TPE", "DEHB", "Suggestion"]
