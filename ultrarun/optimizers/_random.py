"""Random search: the baseline every model-based optimizer must beat."""
from __future__ import annotations

from typing import Any

import numpy as np

from ._base import BaseOptimizer


class RandomSearch(BaseOptimizer):
    """Samples configurations uniformly (respecting conditions and forbidden clauses)."""

    def _suggest(self, budget: float) -> tuple[dict[str, Any], dict[str, Any], np.ndarray]:
        return self._random_suggestion()


__all__ = ["RandomSearch"]
