"""``hpbandster.optimizers.config_generators.bohb``: BOHB's sampler as a config generator."""
from __future__ import annotations

from typing import Any

from ultrarun import optimizers as _optimizers
from . import OptimizerGenerator


class BOHB(OptimizerGenerator):
    """BOHB's KDE sampler behind HpBandSter's ``get_config`` / ``new_result``."""

    def __init__(self, configspace: Any, min_points_in_model: int | None = None,
                 top_n_percent: float = 15, num_samples: int = 64, random_fraction: float = 1 / 3,
                 bandwidth_factor: float = 3, min_bandwidth: float = 1e-3,
                 seed: int | None = None, **kwargs: Any):
        super().__init__(_optimizers.BOHB(configspace, seed=seed,
                                          min_points_in_model=min_points_in_model,
                                          top_n_percent=top_n_percent, num_samples=num_samples,
                                          random_fraction=random_fraction,
                                          bandwidth_factor=bandwidth_factor,
                                          min_bandwidth=min_bandwidth), **kwargs)

    def largest_budget_with_model(self) -> float:
        budget = self.optimizer.current_model_budget()
        return -float("inf") if budget is None else budget


__all__ = ["BOHB"]
