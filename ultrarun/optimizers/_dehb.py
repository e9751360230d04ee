"""Differential evolution as the sampler of successive halving, after DEHB (Awad, Mallik and
Hutter, IJCAI 2021). Its defaults, encoding and population: docs/optimizers.md.
"""
from __future__ import annotations

import logging
from numbers import Integral
from typing import Any

import numpy as np
from ConfigSpace import ConfigurationSpace

from ._base import BaseOptimizer
from ._bohb import _real, _require
from ._space import CATEGORICAL, ORDINAL

logger = logging.getLogger(__name__)


class DEHB(BaseOptimizer):
    """New configurations by ``rand/1/bin`` differential evolution over the best
    ``population_size`` results of the largest budget with that many (random until then); a
    configuration in flight is not handed out again while it is."""

    def __init__(self, configspace: ConfigurationSpace, seed: int | None = None,
                 population_size: int | None = None, mutation_factor: float = 0.5,
                 crossover_prob: float = 0.5) -> None:
        super().__init__(configspace, seed)
        if population_size is None:
            population_size = max(10, 2 * self.vectors.dim)
        _require(isinstance(population_size, Integral) and not isinstance(population_size, bool)
                 and population_size >= 4, "population_size", population_size,
                 "an integer >= 4 (rand/1 needs a target and three others), or None")
        _require(_real(mutation_factor) and 0 < mutation_factor <= 2, "mutation_factor",
                 mutation_factor, "a number in (0, 2]")
        _require(_real(crossover_prob) and 0 <= crossover_prob <= 1, "crossover_prob",
                 crossover_prob, "a number between 0 and 1")
        self.population_size = int(population_size)
        self.mutation_factor = float(mutation_factor)
        self.crossover_prob = float(crossover_prob)
        self._vectors: dict[float, list[np.ndarray]] = {}
        self._losses: dict[float, list[float]] = {}
        self._targets = 0  # the population member the next trial crosses with
        dims = self.vectors.model_dims
        self._discrete = {int(i): self.vectors.sizes[i] for i in dims
                          if self.vectors.kinds[i] in (CATEGORICAL, ORDINAL)}

    def _observe(self, vector: np.ndarray, loss: float, budget: float) -> None:
        self._vectors.setdefault(budget, []).append(vector)
        self._losses.setdefault(budget, []).append(loss)

    def current_model_budget(self) -> float | None:
        """The budget whose results form the population: the largest with enough of them."""
        usable = [b for b, losses in self._losses.items()
                  if sum(np.isfinite(losses)) >= self.population_size]
        return max(usable) if usable else None

    def _suggest(self, budget: float) -> tuple[dict[str, Any], dict[str, Any], np.ndarray]:
        population_budget = self.current_model_budget()
        if population_budget is None:
            return self._random_suggestion()
        losses = np.asarray(self._losses[population_budget])
        best = np.argsort(losses, kind="stable")[:self.population_size]
        population = self._encode(self.vectors.impute(
            np.vstack(self._vectors[population_budget])[best], self.rng))
        for _ in range(10):  # a forbidden trial, or one already in flight, is bred again
            trial = self._breed(population)
            row = self.vectors.deactivate(self.vectors.complete(self._decode(trial)[None]))
            if self.vectors.forbidden(row)[0] or self._is_flying(row[0]):
                continue
            try:
                config = self.vectors.to_config(row[0])
            except ValueError:
                continue
            self._remember(config, row[0].copy())
            return config, {"model_based_pick": True, "model_budget": population_budget}, row[0]
        logger.debug("DEHB: no valid trial vector; sampling at random")
        return self._random_suggestion()

    def _breed(self, population: np.ndarray) -> np.ndarray:
        """``rand/1/bin``: a mutant of three random members crossed with the next target."""
        n, d = population.shape
        target = population[self._targets % n]
        self._targets += 1
        r1, r2, r3 = population[self.rng.choice(n, size=3, replace=False)]
        mutant = r1 + self.mutation_factor * (r2 - r3)
        outside = (mutant < 0) | (mutant > 1)
        mutant[outside] = self.rng.random(int(outside.sum()))
        cross = self.rng.random(d) < self.crossover_prob
        cross[self.rng.integers(d)] = True  # at least one dimension from the mutant
        return np.where(cross, mutant, target)

    def _encode(self, matrix: np.ndarray) -> np.ndarray:
        """Vectors -> [0, 1] everywhere: discrete value ``i`` of ``k`` to the middle of slice i."""
        out = np.array(matrix, dtype=float)
        for j, k in self._discrete.items():
            out[:, j] = (out[:, j] + 0.5) / k
        return out

    def _decode(self, row: np.ndarray) -> np.ndarray:
        out = np.array(row, dtype=float)
        for j, k in self._discrete.items():
            out[j] = min(int(out[j] * k), k - 1)
        return out


__all__ = ["DEHB"]
