"""A multivariate Tree-structured Parzen Estimator, after Optuna's ``TPESampler``.

Optuna's defaults and components (Watanabe 2023): the best ``gamma(n) = min(ceil(0.1 n), 25)``
results are "good", older results weigh less once there are more than 25, a prior kernel of
weight ``prior_weight``, ``n_ei_candidates`` candidates drawn from the good density and the one
with the largest ``l(x) / g(x)`` returned. ``multivariate`` models the dimensions jointly;
``group`` fits one joint model per group of hyperparameters that are active together, so
conditional spaces are modelled exactly; ``constant_liar`` counts configurations in flight as the
worst results. Two departures, both measured on the quality benchmark: multivariate bandwidths
follow the spread of the points (``bandwidth="adaptive"``), and for multi-fidelity runs every
configuration is ranked by the fraction of the results at the largest budget it reached that beat
it (``fidelity="percentile"``: each budget's losses normalised to ranks, so a configuration that
beats nearly everything at a low budget is good before it is promoted), or by the largest budget
it reached, then its loss there (``fidelity="rank"``, as Optuna ranks trials its Hyperband pruner
stopped), or, like BOHB, only the largest budget with ``n_startup_trials`` results is used
(``fidelity="largest"``). See ``docs/optimizers.md``.

At scale (a thousand workers, 10,000 results) a pick stays cheap: the densities are refitted
once the results grew by :data:`REFIT_FRACTION` (after every result up to 400 configurations),
and the bad density keeps at most :data:`BAD_KERNELS` kernels, resampled by weight.
"""
from __future__ import annotations

import collections
import functools
import logging
import math
from numbers import Integral
from typing import Any

import numpy as np
from ConfigSpace import ConfigurationSpace

from ._base import BaseOptimizer
from ._bohb import _real, _require
from ._parzen import Parzen, default_weights
from ._space import ORDINAL

logger = logging.getLogger(__name__)

#: how results at several budgets become one model (see :class:`TPE`)
FIDELITY_MODES = ("percentile", "rank", "largest")
#: how multivariate kernels get their bandwidths (see :class:`~._parzen.Parzen`)
BANDWIDTH_RULES = ("adaptive", "optuna")
#: the densities are refitted once this fraction of the results they know is new (at least one
#: result): after every result below 400 configurations, after every 50 at 10,000
REFIT_FRACTION = 1 / 200
#: kernels of the bad density a candidate is scored against; beyond this many bad results a
#: weighted resample stands for them (the good density has at most 25)
BAD_KERNELS = 512


class _Model:
    """The good and bad densities of each group of columns, and what they were fitted on."""

    def __init__(self, budget: float, changes: int, pending: int, size: int,
                 parts: list[tuple[np.ndarray, Parzen, Parzen]] | None) -> None:
        self.budget, self.changes, self.pending, self.size = budget, changes, pending, size
        self.parts = parts  # None: every result failed, nothing to learn from yet


class _Results:
    """Vectors, each with a budget and a loss, kept as arrays so a model reads them in one slice
    (no list to convert per refit). A row is keyed by the configuration's vector; ``put``
    appends or replaces in place."""

    def __init__(self, width: int) -> None:
        self.matrix = np.empty((64, width))
        self.numbers = np.empty((64, 2))  # each row's budget and loss
        self.index: dict[bytes, int] = {}
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def put(self, vector: np.ndarray, budget: float, loss: float) -> None:
        row = self.index.setdefault(vector.tobytes(), self.size)
        if row == self.size:
            if row == len(self.matrix):
                self.matrix = np.vstack([self.matrix, np.empty_like(self.matrix)])
                self.numbers = np.vstack([self.numbers, np.empty_like(self.numbers)])
            self.size += 1
        self.numbers[row] = budget, loss
        self.matrix[row] = vector

    @property
    def vectors(self) -> np.ndarray:
        return self.matrix[:self.size]

    @property
    def budgets(self) -> np.ndarray:
        return self.numbers[:self.size, 0]

    @property
    def losses(self) -> np.ndarray:
        return self.numbers[:self.size, 1]


def default_gamma(n: int) -> int:
    """Optuna's number of good results among ``n``."""
    return min(math.ceil(0.1 * n), 25)


class TPE(BaseOptimizer):
    """Samples where ``l(x) / g(x)`` is high; ``l`` and ``g`` are Parzen estimators of the good
    and the other results (see the module docstring for how budgets are combined).

    Until ``n_startup_trials`` configurations have results, picks are uniformly random. A
    configuration in flight is never handed out again while it is.
    """

    def __init__(self, configspace: ConfigurationSpace, seed: int | None = None,
                 n_startup_trials: int = 10, n_ei_candidates: int = 24,
                 prior_weight: float = 1.0, consider_endpoints: bool = False,
                 multivariate: bool = True, group: bool = True,
                 constant_liar: bool = False, fidelity: str = "percentile",
                 bandwidth: str = "adaptive") -> None:
        super().__init__(configspace, seed)
        _require(isinstance(n_startup_trials, Integral) and not isinstance(n_startup_trials, bool)
                 and n_startup_trials >= 2, "n_startup_trials", n_startup_trials,
                 "an integer >= 2")
        _require(isinstance(n_ei_candidates, Integral) and not isinstance(n_ei_candidates, bool)
                 and n_ei_candidates >= 1, "n_ei_candidates", n_ei_candidates,
                 "a positive integer")
        _require(_real(prior_weight) and prior_weight > 0, "prior_weight", prior_weight,
                 "a positive number")
        for name, value in (("consider_endpoints", consider_endpoints),
                            ("multivariate", multivariate), ("group", group),
                            ("constant_liar", constant_liar)):
            _require(isinstance(value, bool), name, value, "True or False")
        _require(fidelity in FIDELITY_MODES, "fidelity", fidelity,
                 f"one of {', '.join(map(repr, FIDELITY_MODES))}")
        self.fidelity = fidelity
        self.n_startup_trials = int(n_startup_trials)
        self.n_ei_candidates = int(n_ei_candidates)
        self.prior_weight = float(prior_weight)
        self.consider_endpoints = consider_endpoints
        self.multivariate = multivariate
        self.group = group
        self.constant_liar = constant_liar
        _require(bandwidth in BANDWIDTH_RULES, "bandwidth", bandwidth,
                 f"one of {', '.join(map(repr, BANDWIDTH_RULES))}")
        self.bandwidth = bandwidth
        width = len(self.vectors.names)
        #: the results at each budget
        self._results: dict[float, _Results] = collections.defaultdict(  # picklable: no lambda
            functools.partial(_Results, width))
        #: each configuration with the largest budget it has a result at, and its loss there
        self._latest = _Results(width)
        dims = self.vectors.model_dims
        self._ordinals = [int(i) for i in dims if self.vectors.kinds[i] == ORDINAL]
        self._changes = 0  # results observed
        self._model: _Model | None = None

    # -- learning ---------------------------------------------------------------------------
    def _observe(self, vector: np.ndarray, loss: float, budget: float) -> None:
        self._changes += 1
        self._results[budget].put(vector, budget, loss)
        row = self._latest.index.get(vector.tobytes())
        if row is None or budget >= self._latest.budgets[row]:
            self._latest.put(vector, budget, loss)

    def current_model_budget(self) -> float | None:
        """The budget whose results the model uses: the largest with ``n_startup_trials`` results
        (``fidelity="largest"``); with ``"percentile"`` and ``"rank"`` (which use every budget)
        the largest budget any result has, once ``n_startup_trials`` configurations have one."""
        if self.fidelity != "largest":
            if len(self._latest) < self.n_startup_trials:
                return None
            return max(self._results)
        usable = [b for b, results in self._results.items()
                  if len(results) >= self.n_startup_trials]
        return max(usable) if usable else None

    # -- suggesting -------------------------------------------------------------------------
    def _suggest(self, budget: float) -> tuple[dict[str, Any], dict[str, Any], np.ndarray]:
        model_budget = self.current_model_budget()
        if model_budget is None:
            return self._random_suggestion()
        picked = self._model_pick(model_budget)
        if picked is None:
            logger.debug("TPE: no valid candidate from the model; sampling at random")
            return self._random_suggestion()
        config, vector = picked
        return config, {"model_based_pick": True, "model_budget": model_budget}, vector

    def _data(self, model_budget: float) -> tuple[np.ndarray, np.ndarray]:
        """Vectors (model dimensions, NaN where inactive), oldest first, in-flight configurations
        without a result last (constant liar: they are bad), and the rows of the good ones: the
        best :func:`default_gamma` of the results that did not fail. ``fidelity="largest"``
        ranks the results at the model budget by loss; ``"rank"`` ranks every configuration by
        the largest budget it reached, then by its loss there (as Optuna's TPE ranks trials a
        Hyperband pruner stopped); ``"percentile"`` by the fraction of the results at the
        largest budget it reached that beat it, then as ``"rank"``; ties by age.

        Only the few that can be among the best are ranked (:meth:`_contenders`), so a refit
        at 30,000 results costs a few milliseconds, not the sort of all of them; the good set
        is the one the full ranking gives."""
        results = self._results[model_budget] if self.fidelity == "largest" else self._latest
        losses, budgets = results.losses, results.budgets
        if self.fidelity == "largest":
            # a loss of -inf sorts first and takes a place of the good set, but is no good one
            ok = np.isfinite(losses)
            gamma = default_gamma(int(ok.sum()) or len(losses)) - int(np.isneginf(losses).sum())
        else:
            ok = np.isfinite(losses)
            gamma = default_gamma(int(ok.sum()))
        rows = self._contenders(losses, budgets, ok, max(gamma, 0))
        keys = [losses[rows]]
        if self.fidelity != "largest":
            keys.append(-budgets[rows])
            if self.fidelity == "percentile":
                keys.append(self._beaten_by(losses[rows], budgets[rows]))
        good = rows[np.lexsort(keys)[:max(gamma, 0)]]  # the last key sorts first; stable
        vectors = results.vectors
        if self.constant_liar:
            lies = [v for v in self._pending.values() if v.tobytes() not in results.index]
            if lies:
                vectors = np.vstack([vectors, *lies])
        return vectors[:, self.vectors.model_dims], good

    @staticmethod
    def _contenders(losses: np.ndarray, budgets: np.ndarray, ok: np.ndarray,
                    gamma: int) -> np.ndarray:
        """The rows (ascending) that may be among the best ``gamma``: at each budget, those
        whose loss is within the ``gamma`` best there. Any other is beaten at its own budget by
        ``gamma`` with a smaller loss, which rank before it in every mode."""
        picked = []
        for budget in np.unique(budgets[ok]):
            rows = np.flatnonzero(ok & (budgets == budget))
            if len(rows) > gamma > 0:
                at = losses[rows]
                rows = rows[at <= np.partition(at, gamma - 1)[gamma - 1]]
            picked.append(rows if gamma > 0 else rows[:0])
        return np.sort(np.concatenate(picked)) if picked else np.empty(0, dtype=int)

    def _beaten_by(self, losses: np.ndarray, budgets: np.ndarray) -> np.ndarray:
        """For each configuration, the fraction of all results at its largest budget (those of
        the configurations that went further included) that are better than its loss there."""
        beaten = np.empty(len(losses))
        for budget in np.unique(budgets):
            at = budgets == budget
            everyone, mine = self._results[float(budget)].losses, losses[at]
            if len(mine) * len(everyone) <= 1 << 20:  # a few contenders: count, no sort
                below = (everyone[None, :] < mine[:, None]).sum(axis=1)
            else:
                below = np.searchsorted(np.sort(everyone), mine)
            beaten[at] = below / len(everyone)
        return beaten

    def _groups(self, data: np.ndarray) -> list[np.ndarray]:
        """Column groups modelled jointly: with ``group``, the columns active in exactly the same
        results; else all columns active in every result (the rest are sampled at random)."""
        active = ~np.isnan(data)
        if not self.group:
            always = np.flatnonzero(active.all(axis=0))
            rest = [np.array([c]) for c in np.flatnonzero(~active.all(axis=0))]
            return ([always] if always.size else []) + rest
        groups: dict[bytes, list[int]] = {}
        for column in range(data.shape[1]):
            groups.setdefault(active[:, column].tobytes(), []).append(column)
        return [np.array(columns) for columns in groups.values()]

    def _current_model(self, model_budget: float) -> _Model:
        """The densities, refitted when :data:`REFIT_FRACTION` of what they know is new (with
        ``constant_liar``, configurations that took off or landed count as new too)."""
        model = self._model
        pending = len(self._pending) if self.constant_liar else 0
        if (model is None or model.budget != model_budget
                or (self._changes - model.changes) + abs(pending - model.pending)
                >= max(1, int(model.size * REFIT_FRACTION))):
            model = self._model = self._fit(model_budget, pending)
        return model

    def _fit(self, model_budget: float, pending: int) -> _Model:
        data, best = self._data(model_budget)
        n = len(data)
        good = np.zeros(n, dtype=bool)
        good[best] = True  # configurations in flight go to the bad set only
        if not good.any():  # every result failed: nothing to learn from yet
            return _Model(model_budget, self._changes, pending, n, None)
        dims = self.vectors.model_dims
        kinds = [self.vectors.kinds[i] for i in dims]
        sizes = [self.vectors.sizes[i] for i in dims]
        parts = []
        for columns in self._groups(data):
            rows = ~np.isnan(data[:, columns]).any(axis=1)
            models = []
            for part, limit in ((good & rows, None), (~good & rows, BAD_KERNELS)):
                points = data[part][:, columns]
                models.append(Parzen(points, default_weights(len(points)),
                                     [kinds[c] for c in columns], [sizes[c] for c in columns],
                                     self.prior_weight, self.multivariate,
                                     self.consider_endpoints, self.bandwidth,
                                     max_kernels=limit, rng=self.rng))
            parts.append((columns, models[0], models[1]))
        return _Model(model_budget, self._changes, pending, n, parts)

    def _model_pick(self, model_budget: float) -> tuple[dict[str, Any], np.ndarray] | None:
        model = self._current_model(model_budget)
        if model.parts is None:
            return None
        dims = self.vectors.model_dims
        num = self.n_ei_candidates
        candidates = np.full((num, len(self.vectors.names)), np.nan)
        total = np.zeros(num)
        best = np.empty(len(self.vectors.names))
        for columns, good, bad in model.parts:
            block = good.sample(num, self.rng)
            full = np.zeros((num, len(self.vectors.names)))
            full[:, dims[columns]] = block
            full = self._snap(full)
            block = full[:, dims[columns]]
            score = good.log_pdf(block) - bad.log_pdf(block)
            candidates[:, dims[columns]] = block
            total += score
            best[dims[columns]] = block[int(np.argmax(score))]
        # the best candidate of each group together first, then whole candidates by score
        rows = np.vstack([best[None], candidates[np.argsort(-total, kind="stable")]])
        rows = self.vectors.deactivate(self.vectors.complete(rows))
        rows = rows[~self.vectors.forbidden(rows)]
        for row in rows:
            if self._is_flying(row):  # never the same configuration twice at once
                continue
            try:
                config = self.vectors.to_config(row)
            except ValueError:  # ConfigSpace rejected it: try the next
                continue
            self._remember(config, row.copy())
            return config, row
        return None

    def _snap(self, full: np.ndarray) -> np.ndarray:
        """Integers onto their grid (``complete``), ordinals onto their indices."""
        full = self.vectors.complete(full)
        for index in self._ordinals:
            full[:, index] = np.clip(np.rint(full[:, index]), 0, self.vectors.sizes[index] - 1)
        return full

    def __repr__(self) -> str:
        return (f"TPE(hyperparameters={len(self._space)}, seed={self.seed}, "
                f"multivariate={self.multivariate}, group={self.group})")


__all__ = ["TPE", "default_gamma"]
