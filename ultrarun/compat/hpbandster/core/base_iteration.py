"""``hpbandster.core.base_iteration``: ``BaseIteration`` and ``Datum`` with HpBandSter's arguments.

``config_sampler(budget)`` returns ``(config, info)``; subclasses choose who goes on by
overriding ``_advance_to_next_stage(config_ids, losses) -> list of bool`` (as in HpBandSter,
``self.stage`` is then the next stage's index). Failed configurations are never promoted.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Sequence

import numpy as np

from ultrarun.iterations import _successive_halving as _native
from ultrarun.job import to_plain


def sampler_of(config_sampler: Callable[[float], tuple[Any, Any]]) -> Callable[[float, int], list]:
    """HpBandSter's ``config_sampler(budget) -> (config, info)`` as ultrarun's
    ``sampler(budget, n) -> [(config, info), ...]``, with each config (a dict or a ConfigSpace
    Configuration, numpy values or not) as plain Python data."""

    def sample(budget: float, n: int) -> list[tuple[dict, dict]]:
        out = []
        for _ in range(n):
            config, info = config_sampler(budget)
            out.append((to_plain(dict(config), "configuration"), dict(info or {})))
        return out

    return sample


class Datum:
    """HpBandSter's per-configuration record (also what its pickled Results hold)."""

    def __init__(self, config: dict, config_info: Any, results: dict | None = None,
                 time_stamps: dict | None = None, exceptions: dict | None = None,
                 status: str = "QUEUED", budget: float = 0):
        self.config = config
        self.config_info = config_info
        self.results = {} if results is None else results
        self.time_stamps = {} if time_stamps is None else time_stamps
        self.exceptions = {} if exceptions is None else exceptions
        self.status = status
        self.budget = budget


class BaseIteration(_native.SuccessiveHalving):
    """A successive-halving iteration whose promotion rule is ``_advance_to_next_stage``."""

    def __init__(self, HPB_iter: int, num_configs: Sequence[int], budgets: Sequence[float],
                 config_sampler: Callable[[float], tuple[Any, Any]],
                 logger: logging.Logger | None = None, result_logger: Any = None):
        # result_logger is accepted and not needed: the master logs every configuration
        super().__init__(HPB_iter, [int(n) for n in num_configs], [float(b) for b in budgets],
                         sampler_of(config_sampler))
        self.HPB_iter = self.iteration
        self.config_sampler = config_sampler
        self.logger = logger or logging.getLogger("hpbandster")

    def _advance_to_next_stage(self, config_ids: list, losses: np.ndarray) -> Sequence[bool]:
        raise NotImplementedError(f"{type(self).__name__} must implement "
                                  "_advance_to_next_stage(config_ids, losses)")

    def _promote(self, reviewed: list[tuple[Any, float]], k: int) -> list[Any]:
        done = [(cid, loss) for cid, loss in reviewed if np.isfinite(loss)]
        self.stage += 1  # HpBandSter's rule sees the index of the stage it fills
        try:
            advance = self._advance_to_next_stage([cid for cid, _ in done],
                                                  np.array([loss for _, loss in done]))
        finally:
            self.stage -= 1
        return [cid for (cid, _), go in zip(done, advance) if go]


__all__ = ["BaseIteration", "Datum", "sampler_of"]
