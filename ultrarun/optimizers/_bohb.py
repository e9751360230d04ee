"""BOHB's model-based sampler: a TPE over good and bad configurations per budget (Falkner, Klein
and Hutter, ICML 2018, Algorithm 2). Its defaults, and why ``min_bandwidth`` is not the paper's:
docs/optimizers.md.
"""
from __future__ import annotations

import logging
import math
from numbers import Integral, Real
from typing import Any

import numpy as np
from ConfigSpace import ConfigurationSpace

from ..errors import ConfigurationError
from ._base import BaseOptimizer
from ._kde import KDE

logger = logging.getLogger(__name__)
#: in-flight configurations that count as bad in a pick (the constant liar); with more in flight,
#: a random subsample of this many stands for all of them, weighted (scale: 1,000 workers)
_LIARS = 128

#: the bandwidth floor of the paper and HpBandSter: good points that bunch up within ~0.01 leave
#: the search stuck there (``min_bandwidth=PAPER_MIN_BANDWIDTH`` restores it)
PAPER_MIN_BANDWIDTH = 1e-3
#: the default floor, the best of 1e-3 .. 0.3 on the quality benchmark's four problems
DEFAULT_MIN_BANDWIDTH = 0.03


class _Model:
    """The good and bad densities of one budget, fitted on ``num_observations`` results."""

    def __init__(self, good: KDE, bad: KDE, budget: float, num_observations: int) -> None:
        self.good, self.bad = good, bad
        self.budget, self.num_observations = budget, num_observations


class BOHB(BaseOptimizer):
    """Samples where ``l(x) / g(x)`` is high: ``l`` is a KDE of the best ``top_n_percent`` results,
    ``g`` of the others, on the largest budget with enough results. What each parameter does,
    and why many workers asking at once get different configurations: docs/optimizers.md.
    """

    def __init__(self, configspace: ConfigurationSpace, seed: int | None = None,
                 min_points_in_model: int | None = None, top_n_percent: float = 15,
                 num_samples: int = 64, random_fraction: float = 1 / 3,
                 bandwidth_factor: float = 3,
                 min_bandwidth: float = DEFAULT_MIN_BANDWIDTH) -> None:
        super().__init__(configspace, seed)
        dim = max(self.vectors.dim, 1)
        if min_points_in_model is None:
            min_points_in_model = dim + 1
        _require(isinstance(min_points_in_model, Integral) and min_points_in_model >= 2,
                 "min_points_in_model", min_points_in_model, "an integer >= 2, or None for the "
                 "number of hyperparameters + 1")
        _require(_real(top_n_percent) and 0 < top_n_percent < 100, "top_n_percent",
                 top_n_percent, "a number strictly between 0 and 100")
        _require(isinstance(num_samples, Integral) and num_samples >= 1, "num_samples",
                 num_samples, "a positive integer")
        _require(_real(random_fraction) and 0 <= random_fraction <= 1, "random_fraction",
                 random_fraction, "a number between 0 and 1")
        _require(_real(bandwidth_factor) and bandwidth_factor > 0, "bandwidth_factor",
                 bandwidth_factor, "a positive number")
        _require(_real(min_bandwidth) and min_bandwidth > 0, "min_bandwidth", min_bandwidth,
                 "a positive number")
        self.min_points_in_model = int(min_points_in_model)
        self.top_n_percent = float(top_n_percent)
        self.num_samples = int(num_samples)
        self.random_fraction = float(random_fraction)
        self.bandwidth_factor = float(bandwidth_factor)
        self.min_bandwidth = float(min_bandwidth)
        self._vectors: dict[float, list[np.ndarray]] = {}
        self._losses: dict[float, list[float]] = {}
        self._model: _Model | None = None
        dims = self.vectors.model_dims
        self._kinds = [self.vectors.kinds[i] for i in dims]
        self._sizes = [self.vectors.sizes[i] for i in dims]

    # -- learning ---------------------------------------------------------------------------
    def _observe(self, vector: np.ndarray, loss: float, budget: float) -> None:
        self._vectors.setdefault(budget, []).append(vector)
        self._losses.setdefault(budget, []).append(loss)

    def _split(self, n: int) -> tuple[int, int]:
        """Sizes of the good and bad sets for ``n`` results (HpBandSter's rule)."""
        n_good = max(self.min_points_in_model, int(self.top_n_percent * n) // 100)
        n_bad = max(self.min_points_in_model, int((100 - self.top_n_percent) * n) // 100)
        return n_good, n_bad

    def _has_enough(self, budget: float) -> bool:
        n = len(self._losses[budget])
        return n - self._split(n)[0] >= self.min_points_in_model

    def current_model_budget(self) -> float | None:
        """The budget whose results the model uses: the largest with enough of them."""
        usable = [b for b in self._losses if self._has_enough(b)]
        return max(usable) if usable else None

    def _current_model(self) -> _Model | None:
        """The model of the largest budget with enough results, refitted when it has new ones."""
        budget = self.current_model_budget()
        if budget is None:
            return None
        n = len(self._losses[budget])
        if self._model is None or self._model.budget != budget or self._model.num_observations != n:
            self._model = self._fit(budget)
        return self._model

    def _fit(self, budget: float) -> _Model:
        losses = np.asarray(self._losses[budget])
        vectors = np.vstack(self._vectors[budget])
        n_good, n_bad = self._split(len(losses))
        order = np.argsort(losses, kind="stable")
        dims = self.vectors.model_dims
        good = self.vectors.impute(vectors[order[:n_good]], self.rng)[:, dims]
        bad = self.vectors.impute(vectors[order[n_good:n_good + n_bad]], self.rng)[:, dims]
        logger.debug("BOHB: fitted on %d results at budget %s (%d good, %d bad)", len(losses),
                     budget, len(good), len(bad))
        return _Model(KDE(good, self._kinds, self._sizes, self.min_bandwidth),
                      KDE(bad, self._kinds, self._sizes, self.min_bandwidth),
                      budget, len(losses))

    def _pending_vector(self, vector: np.ndarray) -> np.ndarray:
        return self.vectors.impute(vector[None, :], self.rng)[0]

    # -- suggesting -------------------------------------------------------------------------
    def _suggest(self, budget: float) -> tuple[dict[str, Any], dict[str, Any], np.ndarray]:
        model = self._current_model()
        if model is None or self.rng.random() < self.random_fraction:
            return self._random_suggestion()
        picked = self._model_pick(model)
        if picked is None:
            logger.debug("BOHB: no valid candidate from the model; sampling at random")
            return self._random_suggestion()
        config, vector = picked
        return config, {"model_based_pick": True, "model_budget": model.budget}, vector

    def _model_pick(self, model: _Model) -> tuple[dict[str, Any], np.ndarray] | None:
        """The valid candidate with the best ``l(x) / g(x)``, or None if all were invalid."""
        dims = self.vectors.model_dims
        full = np.zeros((self.num_samples, len(self.vectors.names)))
        full[:, dims] = model.good.sample(self.num_samples, self.rng, self.bandwidth_factor,
                                          self.min_bandwidth)
        full = self.vectors.complete(full)  # snap integers to their grid before scoring
        pending, weight = list(self._pending.values()), 1.0
        if len(pending) > _LIARS:  # a random subsample stands for all: the cost stays bounded
            weight = len(pending) / _LIARS
            pending = [pending[i] for i in self.rng.choice(len(pending), _LIARS, replace=False)]
        pending = np.array(pending)[:, dims] if pending else None
        score = (model.good.logpdf(full[:, dims])
                 - model.bad.logpdf(full[:, dims], extra=pending, extra_weight=weight))
        candidates = self.vectors.deactivate(full)
        score[self.vectors.forbidden(candidates)] = -np.inf
        for index in np.argsort(-score, kind="stable"):
            if not np.isfinite(score[index]):
                break
            try:
                config = self.vectors.to_config(candidates[index])
            except ValueError:  # ConfigSpace rejected it: try the next best
                continue
            self._remember(config, candidates[index].copy())
            return config, full[index]
        return None


def _real(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value)


def _require(ok: bool, name: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigurationError(f"{name} is {value!r}; it must be {allowed}")


__all__ = ["BOHB", "DEFAULT_MIN_BANDWIDTH", "PAPER_MIN_BANDWIDTH"]
