"""``hpbandster.optimizers.iterations``: ``SuccessiveHalving`` with HpBandSter's arguments."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ultrarun.iterations._base import top_k
from ...core.base_iteration import BaseIteration


class SuccessiveHalving(BaseIteration):
    """``SuccessiveHalving(HPB_iter, num_configs, budgets, config_sampler, ...)``: the best
    ``num_configs[stage]`` successful configurations go on."""

    def _advance_to_next_stage(self, config_ids: list, losses: np.ndarray) -> Sequence[bool]:
        keep = np.zeros(len(losses), dtype=bool)
        keep[np.argsort(losses, kind="stable")[:self.num_configs[self.stage]]] = True
        return keep

    def _promote(self, reviewed: list[tuple[Any, float]], k: int) -> list[Any]:
        if type(self)._advance_to_next_stage is SuccessiveHalving._advance_to_next_stage:
            return top_k(reviewed, k)  # the same rule; ties broken by config id
        return super()._promote(reviewed, k)


__all__ = ["SuccessiveHalving"]
