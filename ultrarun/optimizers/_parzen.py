"""Parzen estimators over mixed vectors, the way Optuna's TPE builds them, in numpy.

Bergstra, Bardenet, Bengio and Kegl, "Algorithms for Hyper-Parameter Optimization", NeurIPS 2011;
Watanabe, "Tree-Structured Parzen Estimator: Understanding Its Algorithm Components and Their
Roles for Better Empirical Performance", 2023 (the components Optuna's ``TPESampler`` uses).

One kernel per observation plus a *prior* kernel: truncated Gaussians in [0, 1] for numerical
dimensions (floats and integers in ConfigSpace's scaling, ordinals by their index), and for
categorical ones a distribution that puts weight 1 on the observed value plus
``prior_weight / k`` on each of the ``k`` values. Multivariate: a kernel is one point in all
dimensions, with bandwidths from the normal-reference rule on the spread of the points
(``1.06 std n^(-1/(d+4))`` per dimension, as BOHB's KDE: ``bandwidth="adaptive"``) or Optuna's
``0.2 n^(-1/(d+4))`` whatever the spread (``bandwidth="optuna"``); univariate: each
dimension is its own mixture and the bandwidth of a kernel is the distance to its farther
neighbour (with the ends of the range as neighbours when ``consider_endpoints``). Either way
bandwidths are clipped to ``[1 / min(100, 1 + n), 1]`` (Optuna's "magic clip").

With ``max_kernels``, more observations are first resampled to that many, drawn in proportion
to their weights (systematic resampling: each kept observation carries an equal share of their
total weight, so the prior keeps its share), and the estimator is the one of that sample,
bandwidths included: its evaluation costs ``max_kernels``, not ``n``, per point (a thousand
workers' models at 10,000 results, docs/optimizers.md). Keeping the bandwidths of all ``n``
would be unbiased but noisy (a few hundred narrow kernels: +-30% per point in three
dimensions); the sample's wider ones are smooth.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr, ndtri

from ._space import CATEGORICAL, ORDINAL

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def logsumexp(values: np.ndarray, axis: int) -> np.ndarray:
    """``log(sum(exp(values)))`` along ``axis``, stable (scipy's costs more in its wrappers)."""
    top = values.max(axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    return np.log(np.exp(values - top).sum(axis=axis)) + np.squeeze(top, axis=axis)


def default_weights(n: int) -> np.ndarray:
    """Optuna's observation weights, oldest first: flat up to 25, then older ones ramp down."""
    if n < 25:
        return np.ones(n)
    return np.concatenate([np.linspace(1.0 / n, 1.0, num=n - 25), np.ones(25)])


class Parzen:
    """Mixture density over rows of ``data`` (no NaN) with per-row ``weights``.

    ``kinds`` and ``sizes`` describe the columns (see :class:`~._space.VectorSpace`).
    """

    def __init__(self, data: np.ndarray, weights: np.ndarray, kinds: list[str],
                 sizes: list[int], prior_weight: float = 1.0, multivariate: bool = True,
                 consider_endpoints: bool = False, bandwidth: str = "adaptive",
                 max_kernels: int | None = None, rng: np.random.Generator | None = None
                 ) -> None:
        data = np.asarray(data, dtype=float).reshape(-1, len(kinds))
        weights = np.asarray(weights, dtype=float)
        if max_kernels is not None and len(data) > max_kernels:
            rows = _systematic(weights, max_kernels, rng or np.random.default_rng())
            data, weights = data[rows], np.full(max_kernels, weights.sum() / max_kernels)
        n, d = data.shape
        self.kinds, self.sizes, self.multivariate = kinds, sizes, multivariate
        self.categorical = [j for j, k in enumerate(kinds) if k == CATEGORICAL]
        self.numerical = np.array([j for j, k in enumerate(kinds) if k != CATEGORICAL], dtype=int)
        #: ordinal indices are scaled to [0, 1] like the other numerical dimensions
        self._scale = np.array([max(sizes[j] - 1, 1) if kinds[j] == ORDINAL else 1.0
                                for j in self.numerical])
        self.weights = np.append(np.asarray(weights, dtype=float), prior_weight)
        self.weights = self.weights / self.weights.sum()
        self.log_weights = np.log(np.maximum(self.weights, 1e-300))
        mus = np.vstack([data[:, self.numerical] / self._scale,
                         np.full((1, len(self.numerical)), 0.5)])  # the prior kernel last
        self.mus = mus
        self.adaptive = bandwidth == "adaptive"
        self.sigmas = self._bandwidths(mus, n, consider_endpoints)
        low, high = ndtr(-mus / self.sigmas), ndtr((1 - mus) / self.sigmas)
        self._log_mass = np.log(np.maximum(high - low, 1e-300))
        self.tables = {}
        for j in self.categorical:
            k = sizes[j]
            table = np.full((n + 1, k), prior_weight / k)
            table[np.arange(n), data[:, j].astype(int)] += 1.0
            table[n] = 1.0 / k  # the prior kernel: uniform
            self.tables[j] = table / table.sum(axis=1, keepdims=True)
        # what log_pdf reuses for every point: each kernel's normalising terms, log tables
        self._inv_sigmas = 1.0 / self.sigmas
        self._log_norms = -np.log(self.sigmas) - _LOG_SQRT_2PI - self._log_mass  # (kernels, c)
        self._log_tables = {j: np.log(table) for j, table in self.tables.items()}
        # multivariate: sum_c -(x_c - mu_c)^2 / (2 s_c^2) as two matrix products, no 3-d array
        precision = self._inv_sigmas ** 2
        self._quadratic = -0.5 * precision.T  # (c, kernels), times x^2
        self._linear = (self.mus * precision).T  # (c, kernels), times x
        self._constant = (self._log_norms - 0.5 * self.mus ** 2 * precision).sum(axis=1)

    def _bandwidths(self, mus: np.ndarray, n: int, consider_endpoints: bool) -> np.ndarray:
        d = max(len(self.numerical), 1)
        clip_low = 1.0 / min(100.0, 1.0 + n + 1)  # kernels counted with the prior
        if self.multivariate and self.adaptive and n >= 2:
            spread = mus[:-1].std(axis=0)
            sigmas = np.broadcast_to(1.06 * spread * n ** (-1.0 / (d + 4)), mus.shape).copy()
        elif self.multivariate:
            sigma = 0.2 * max(n + 1, 1) ** (-1.0 / (d + 4))
            sigmas = np.full(mus.shape, sigma)
        else:
            sigmas = np.empty(mus.shape)
            for c in range(mus.shape[1]):
                order = np.argsort(mus[:, c], kind="stable")
                points = mus[order, c]
                if consider_endpoints:
                    padded = np.concatenate([[0.0], points, [1.0]])
                    gaps = np.maximum(padded[1:-1] - padded[:-2], padded[2:] - padded[1:-1])
                else:
                    left = np.diff(points, prepend=points[0])
                    right = np.diff(points, append=points[-1])
                    gaps = np.maximum(left, right)
                sigmas[order, c] = gaps
        sigmas[-1] = 1.0  # the prior is wide
        return np.clip(sigmas, clip_low, 1.0)

    def sample(self, num: int, rng: np.random.Generator) -> np.ndarray:
        """``num`` points drawn from the mixture (integers and ordinals not yet snapped)."""
        d = len(self.kinds)
        out = np.zeros((num, d))
        k = len(self.weights)
        if self.multivariate:
            comp = rng.choice(k, size=num, p=self.weights)
            components = {j: comp for j in range(d)}
        else:
            components = {j: rng.choice(k, size=num, p=self.weights) for j in range(d)}
        if self.numerical.size:
            idx = np.stack([components[j] for j in self.numerical], axis=1)  # (num, c)
            cols = np.arange(self.numerical.size)
            mu, sigma = self.mus[idx, cols], self.sigmas[idx, cols]
            low, high = ndtr(-mu / sigma), ndtr((1 - mu) / sigma)
            u = low + rng.random(mu.shape) * (high - low)
            x = np.clip(mu + sigma * ndtri(np.clip(u, 1e-300, 1 - 1e-16)), 0.0, 1.0)
            out[:, self.numerical] = x * self._scale
        for j, table in self.tables.items():
            probs = table[components[j]]
            cumulative = np.cumsum(probs, axis=1)
            draws = rng.random((num, 1)) * cumulative[:, -1:]
            out[:, j] = np.minimum((cumulative < draws).sum(axis=1), self.sizes[j] - 1)
        return out

    def log_pdf(self, points: np.ndarray) -> np.ndarray:
        """Log density at each row of ``points`` (same columns as the data)."""
        points = np.asarray(points, dtype=float)
        per_dim: list[np.ndarray] = []  # each (num, kernels)
        if self.numerical.size:
            x = points[:, self.numerical] / self._scale  # (num, c)
            if self.multivariate:
                per_dim.append((x * x) @ self._quadratic + x @ self._linear + self._constant)
            else:
                z = (x[:, None, :] - self.mus[None]) * self._inv_sigmas[None]
                log_k = -0.5 * z * z + self._log_norms[None]
                per_dim.extend(log_k[:, :, c] for c in range(log_k.shape[2]))
        for j, table in self._log_tables.items():
            per_dim.append(table[:, points[:, j].astype(int)].T)
        if not per_dim:
            return np.zeros(len(points))
        if self.multivariate:
            return logsumexp(sum(per_dim) + self.log_weights[None], axis=1)
        return sum(logsumexp(p + self.log_weights[None], axis=1) for p in per_dim)


def _systematic(weights: np.ndarray, num: int, rng: np.random.Generator) -> np.ndarray:
    """``num`` indices drawn in proportion to ``weights`` with one uniform draw: each index
    appears ``floor`` or ``ceil`` of its expected count, so the sample spreads as the weights do."""
    cumulative = np.cumsum(weights)
    positions = (rng.random() + np.arange(num)) * (cumulative[-1] / num)
    return np.minimum(np.searchsorted(cumulative, positions, side="right"), len(weights) - 1)


__all__ = ["Parzen", "default_weights"]
