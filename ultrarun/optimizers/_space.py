"""The numeric view of a ConfigurationSpace that model-based optimizers work in.

ConfigSpace 1.x encodes a configuration as a float vector: floats and integers scaled to [0, 1]
(log-scaled where ``log=True``), categorical and ordinal values as their index, inactive
hyperparameters as NaN. This module adds what a KDE needs on top: which dimensions are
continuous or discrete, snapping integers to their grid, and vectorised activity and forbidden
checks so hundreds of candidates are screened at once.
"""
from __future__ import annotations

import copy
import math
from typing import Any, Mapping, Sequence

import numpy as np
from ConfigSpace import Configuration, ConfigurationSpace
from ConfigSpace.configuration import ROUND_PLACES
from ConfigSpace.hyperparameters import (CategoricalHyperparameter, FloatHyperparameter,
                                         IntegerHyperparameter, OrdinalHyperparameter)

from ..errors import ConfigurationError
from ..job import to_plain

CONTINUOUS, INTEGER, CATEGORICAL, ORDINAL = "continuous", "integer", "categorical", "ordinal"


class VectorSpace:
    """Kinds and sizes of the dimensions of ``space``, and conversions to and from configs."""

    def __init__(self, space: ConfigurationSpace) -> None:
        self.space = space
        self.names: list[str] = list(space.keys())
        self.kinds: list[str] = []
        self.sizes: list[int] = []
        fixed = []
        for index, hp in enumerate(space.values()):
            size = hp.size
            if isinstance(hp, CategoricalHyperparameter):
                kind = CATEGORICAL
            elif isinstance(hp, OrdinalHyperparameter):
                kind = ORDINAL
            elif isinstance(hp, IntegerHyperparameter):
                kind = INTEGER
            else:
                kind = CONTINUOUS
            if size == 1:  # constants and single-value choices carry no information
                fixed.append((index, float(hp.to_vector(hp.default_value))))
            self.kinds.append(kind)
            self.sizes.append(int(size) if math.isfinite(size) else 0)
        self.fixed = fixed
        fixed_idx = {i for i, _ in fixed}
        #: indices of the dimensions a model describes
        self.model_dims = np.array([i for i in range(len(self.names)) if i not in fixed_idx],
                                   dtype=int)
        self._integers = [i for i, kind in enumerate(self.kinds)
                          if kind == INTEGER and i not in fixed_idx]

    @property
    def dim(self) -> int:
        """Number of hyperparameters a model has to learn."""
        return len(self.model_dims)

    def is_discrete(self, index: int) -> bool:
        return self.kinds[index] in (CATEGORICAL, ORDINAL)

    def to_vector(self, config: Mapping[str, Any]) -> np.ndarray:
        """The vector of a plain config dict; raises ConfigurationError if it is not valid."""
        try:
            return Configuration(self.space, values=dict(config)).get_array().copy()
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigurationError(f"configuration {dict(config)!r} is not valid in the "
                                     f"configuration space: {exc}") from exc

    def to_config(self, vector: np.ndarray) -> dict[str, Any]:
        """A validated, plain-Python config dict from a vector with NaN for inactive values."""
        vector = np.asarray(vector, dtype=float)
        Configuration(self.space, vector=vector).check_valid_configuration()
        return self.to_configs(vector[None, :])[0]

    def to_configs(self, matrix: np.ndarray) -> list[dict[str, Any]]:
        """Plain config dicts of rows known to be valid (sampled by ConfigSpace), converted a
        column at a time: ConfigSpace's per-value conversion costs more than the sampling.
        Values are what ``Configuration(space, vector=row)`` would give, except that a choice
        is the object the space lists (ConfigSpace gives ``[1, 2.5]``'s ``1`` as ``1.0``)."""
        matrix = np.asarray(matrix, dtype=float)
        configs: list[dict[str, Any]] = [{} for _ in range(len(matrix))]
        for index, (name, hp) in enumerate(zip(self.names, self.space.values())):
            column = matrix[:, index]
            rows = np.flatnonzero(~np.isnan(column))
            if isinstance(hp, (CategoricalHyperparameter, OrdinalHyperparameter)):
                listed = hp.choices if isinstance(hp, CategoricalHyperparameter) else hp.sequence
                values = [listed[int(index)] for index in column[rows]]
                for row, value in zip(rows.tolist(), values):
                    configs[row][name] = _plain(value, name)
                continue
            values = hp.to_value(column[rows])
            if isinstance(hp, FloatHyperparameter):
                values = np.round(values, ROUND_PLACES)
            for row, value in zip(rows.tolist(), values.tolist()):
                configs[row][name] = _plain(value, name)
        return configs

    def to_vectors(self, configs: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """The vectors of configs known to be valid, converted a column at a time (NaN where
        inactive): what ``to_vector`` gives each, without its validation."""
        matrix = np.full((len(configs), len(self.names)), np.nan)
        for index, (name, hp) in enumerate(zip(self.names, self.space.values())):
            rows = [row for row, config in enumerate(configs) if name in config]
            if rows:
                values = np.array([configs[row][name] for row in rows],
                                  dtype=object if self.is_discrete(index) else float)
                matrix[rows, index] = hp.to_vector(values)
        return matrix

    def complete(self, matrix: np.ndarray) -> np.ndarray:
        """Fill the fixed dimensions and snap integers to their grid (rows are candidates)."""
        matrix = np.array(matrix, dtype=float)
        for index, value in self.fixed:
            matrix[:, index] = value
        for index in self._integers:
            hp = self.space[self.names[index]]
            matrix[:, index] = hp.to_vector(hp.to_value(np.clip(matrix[:, index], 0.0, 1.0)))
        return matrix

    def deactivate(self, matrix: np.ndarray) -> np.ndarray:
        """Set inactive hyperparameters to NaN, parents before children."""
        columns = np.array(matrix, dtype=float).T.copy()  # ConfigSpace works hyperparameter-major
        for name in self.space.at:  # topological order in ConfigSpace 1.x
            conditions = self.space.parent_conditions_of[name]
            if conditions:
                active = np.logical_and.reduce(
                    [c.satisfied_by_vector_array(columns) for c in conditions])
                columns[self.space.index_of[name], ~active] = np.nan
        return columns.T

    def forbidden(self, matrix: np.ndarray) -> np.ndarray:
        """Boolean mask of the rows (with inactive values as NaN) that a forbidden clause rejects."""
        columns = np.asarray(matrix, dtype=float).T
        mask = np.zeros(columns.shape[1], dtype=bool)
        for clause in self.space.forbidden_clauses:
            mask |= clause.is_forbidden_vector_array(columns)
        return mask

    def impute(self, matrix: np.ndarray, rng: np.random.Generator,
               reference: np.ndarray | None = None) -> np.ndarray:
        """Replace NaN (inactive) entries, as HpBandSter's BOHB does, so every row is a point.

        Each NaN takes the value of a random row of ``reference`` (default: ``matrix``) where that
        hyperparameter is active, or a uniformly random value if it is active nowhere.
        """
        matrix = np.array(matrix, dtype=float)
        reference = matrix if reference is None else reference
        for j in range(matrix.shape[1]):
            missing = np.isnan(matrix[:, j])
            if not missing.any():
                continue
            pool = reference[:, j][~np.isnan(reference[:, j])]
            if pool.size:
                matrix[missing, j] = rng.choice(pool, size=int(missing.sum()))
            elif self.is_discrete(j):
                matrix[missing, j] = rng.integers(self.sizes[j], size=int(missing.sum()))
            else:
                matrix[missing, j] = rng.random(int(missing.sum()))
        return matrix


def _plain(value: Any, name: str) -> Any:
    """A hyperparameter value as exactly ``str``, ``int``, ``float`` or ``bool``.

    ``to_plain`` keeps ``np.str_`` and ``np.float64`` as they are (they subclass ``str`` and
    ``float``), but users compare ``type(value)``, and serializers may not know them.
    """
    if isinstance(value, np.generic):
        value = value.item()
    return to_plain(value, f"configuration[{name!r}]")


def copy_space(space: ConfigurationSpace, seed: int) -> ConfigurationSpace:
    """A private, seeded copy, so sampling neither reseeds nor advances the user's space."""
    if not isinstance(space, ConfigurationSpace):
        raise ConfigurationError(f"configspace is {type(space).__name__}; it must be a "
                                 "ConfigSpace.ConfigurationSpace")
    if len(space) == 0:
        raise ConfigurationError("configspace has no hyperparameters; add at least one")
    private = copy.deepcopy(space)
    # reseed through the class: hpbandster-sklearn sets ``cs.seed = 3``, hiding the method
    ConfigurationSpace.seed(private, seed)
    return private


__all__ = ["VectorSpace", "copy_space", "CONTINUOUS", "INTEGER", "CATEGORICAL", "ORDINAL"]
