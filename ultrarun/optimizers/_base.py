"""The ask/tell interface every optimizer offers the master."""
from __future__ import annotations

import abc
import collections
import logging
import math
from numbers import Integral, Real
from typing import Any, Mapping, Sequence

import numpy as np
from ConfigSpace import ConfigurationSpace

from ..errors import ConfigurationError
from ._space import VectorSpace, copy_space

logger = logging.getLogger(__name__)

#: what ``ask`` returns for each configuration
Suggestion = tuple[dict[str, Any], dict[str, Any]]

#: random configurations drawn per call to ConfigSpace, whose per-call overhead dominates
RANDOM_BATCH = 32
#: vectors of the configurations suggested lately, so results need not re-validate them
KNOWN_VECTORS = 4096


def _items(config: Mapping[str, Any]) -> tuple:
    return tuple(sorted(config.items(), key=lambda item: item[0]))


def _config_key(config: Mapping[str, Any], budget: float) -> tuple:
    return _items(config), float(budget)


class BaseOptimizer(abc.ABC):
    """Suggests configurations of a ConfigSpace ``ConfigurationSpace`` and learns from losses.

    ``ask(budget, n_points)`` returns plain-Python config dicts with a ``config_info`` dict;
    ``tell(config, loss, budget)`` reports a loss (None when the run failed). A configuration
    returned by ``ask`` counts as *in flight* until it is told or :meth:`cancel`\\ ed, so
    optimizers that model results can keep parallel picks apart. The same ``seed`` and the same
    sequence of calls give the same configurations. Optimizers sample from a private, seeded copy
    of the space, so the user's ``configspace`` object is not touched.
    """

    def __init__(self, configspace: ConfigurationSpace, seed: int | None = None) -> None:
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, Integral)
                                 or seed < 0):
            raise ConfigurationError(f"seed is {seed!r}; it must be a non-negative integer or None")
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self.configspace = configspace
        self._space = copy_space(configspace, int(self.rng.integers(2 ** 31 - 1)))
        self.vectors = VectorSpace(self._space)
        #: configs in flight: (config key, budget) -> vector
        self._pending: dict[tuple, np.ndarray] = {}
        #: how many of them have each vector (its bytes): a pick is checked in O(1)
        self._flying: collections.Counter[bytes] = collections.Counter()
        self._random_batch: list[Any] = []  # sampled ahead, handed out last first
        self._known: collections.OrderedDict[tuple, np.ndarray] = collections.OrderedDict()

    # -- public API -------------------------------------------------------------------------
    def ask(self, budget: float, n_points: int = 1) -> list[Suggestion]:
        """``n_points`` new configurations to evaluate at ``budget``, marked as in flight."""
        budget = _check_budget(budget)
        if isinstance(n_points, bool) or not isinstance(n_points, Integral) or n_points < 1:
            raise ConfigurationError(f"n_points is {n_points!r}; it must be a positive integer")
        suggestions = []
        for _ in range(int(n_points)):
            config, info, vector = self._suggest(budget)
            self._fly(_config_key(config, budget), vector)
            suggestions.append((config, info))
        return suggestions

    def _vector(self, config: Mapping[str, Any]) -> np.ndarray:
        """The vector of ``config`` (NaN where inactive); ConfigurationError if it is not valid.

        Configurations this optimizer suggested lately are valid already: their vectors are
        remembered, so telling their results (the master does it for every job) is cheap.
        """
        known = self._known.get(_items(config))
        return known if known is not None else self.vectors.to_vector(config)

    def tell(self, config: Mapping[str, Any], loss: float | None, budget: float) -> None:
        """Report the ``loss`` (lower is better; None or NaN when the run failed) at ``budget``."""
        budget = _check_budget(budget)
        self._land(_config_key(config, budget))
        self._observe(self._vector(config), _loss_value(loss), budget)

    def replay(self, results: Sequence[tuple[Mapping[str, Any], float | None, float]],
               random_picks: int = 0) -> None:
        """Learn what a resumed run's journal holds, in one call: ``random_picks`` configurations
        drawn at random (skipped: the next random pick is the one the earlier run drew next) and
        ``results``, ``(config, loss, budget)`` told in order. Their configurations are this
        space's (the journal's header says so): converted together, not validated one by one."""
        while random_picks > 0:  # drawn in ask's batches; a batch skipped whole is not converted
            if not self._random_batch and random_picks >= RANDOM_BATCH:
                self._space.sample_configuration(RANDOM_BATCH)
                random_picks -= RANDOM_BATCH
            else:
                self._random_suggestion()
                random_picks -= 1
        vectors = self.vectors.to_vectors([config for config, _, _ in results])
        for (_, loss, budget), vector in zip(results, vectors):
            self._observe(vector, _loss_value(loss), _check_budget(budget))

    def mark_running(self, config: Mapping[str, Any], budget: float) -> None:
        """Count a configuration the optimizer did not ``ask`` for (a promotion) as in flight."""
        budget = _check_budget(budget)
        key = _config_key(config, budget)
        if key not in self._pending:
            self._fly(key, self._pending_vector(self._vector(config)))

    def cancel(self, config: Mapping[str, Any], budget: float) -> None:
        """Forget an in-flight configuration that will never report (a cancelled job)."""
        self._land(_config_key(config, _check_budget(budget)))

    @property
    def num_pending(self) -> int:
        """Configurations in flight (asked or marked running, not yet told)."""
        return len(self._pending)

    def _fly(self, key: tuple, vector: np.ndarray) -> None:
        self._land(key)
        self._pending[key] = vector
        self._flying[vector.tobytes()] += 1

    def _land(self, key: tuple) -> None:
        vector = self._pending.pop(key, None)
        if vector is not None:
            raw = vector.tobytes()
            self._flying[raw] -= 1
            if self._flying[raw] <= 0:
                del self._flying[raw]

    def _is_flying(self, vector: np.ndarray) -> bool:
        """Whether a configuration with this vector (as stored in flight) is in flight."""
        return vector.tobytes() in self._flying

    # -- for subclasses ---------------------------------------------------------------------
    @abc.abstractmethod
    def _suggest(self, budget: float) -> tuple[dict[str, Any], dict[str, Any], np.ndarray]:
        """One ``(config, config_info, vector)``; the vector is what counts as in flight."""

    def _observe(self, vector: np.ndarray, loss: float, budget: float) -> None:
        """Learn from a result (loss is +inf for failures); random search ignores it."""

    def _pending_vector(self, vector: np.ndarray) -> np.ndarray:
        """How an in-flight configuration is stored; models override this to impute."""
        return vector

    def _remember(self, config: Mapping[str, Any], vector: np.ndarray) -> None:
        """Record the vector of a valid configuration this optimizer suggests."""
        self._known[_items(config)] = vector
        if len(self._known) > KNOWN_VECTORS:
            self._known.popitem(last=False)

    def _random_suggestion(self) -> tuple[dict[str, Any], dict[str, Any], np.ndarray]:
        if not self._random_batch:  # sampled configurations are valid: no round trip needed
            vectors = np.array([c.get_array() for c in
                                self._space.sample_configuration(RANDOM_BATCH)])
            configs = self.vectors.to_configs(vectors)
            self._random_batch = list(zip(configs, vectors))[::-1]
        config, vector = self._random_batch.pop()
        self._remember(config, vector)
        return config, {"model_based_pick": False}, self._pending_vector(vector)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(hyperparameters={len(self._space)}, seed={self.seed})"


def _loss_value(loss: float | None) -> float:  # type() first: Real's check is slow, per result
    if type(loss) is not float and loss is not None and (isinstance(loss, bool)
                                                         or not isinstance(loss, Real)):
        raise ConfigurationError(f"loss is {loss!r}; it must be a number, or None for a failed run")
    return math.inf if loss is None or math.isnan(loss) else float(loss)


def _check_budget(budget: float) -> float:
    if (type(budget) is not float and (isinstance(budget, bool) or not isinstance(budget, Real))
            or not 0 < budget < math.inf):
        raise ConfigurationError(f"budget is {budget!r}; it must be a finite positive number")
    return float(budget)


__all__ = ["BaseOptimizer", "Suggestion"]
