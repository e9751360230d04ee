"""ultraopt's API on ultrarun: ``fmin``, ``FMinResult``, the optimizers, the multi-fidelity
iteration generators and ``async_comm`` (``NameServer``, ``Worker``, ``Dispatcher``,
``Master``). Change ``ultraopt`` to ``ultrarun.compat.ultraopt`` in a script's imports. What
differs on purpose is in docs/migrating.md.
"""
from __future__ import annotations

from ..configspace import accept_legacy_spaces
from ._fmin import FMinResult, fmin
from .optimizer import BaseOptimizer, ETPEOptimizer, RandomOptimizer

accept_legacy_spaces()  # ultraopt's era wrote ConfigSpace 0.4's arguments

__all__ = ["fmin", "FMinResult", "BaseOptimizer", "ETPEOptimizer", "RandomOptimizer"]
