"""Product-kernel density estimates over mixed continuous / discrete vectors, in numpy, with the
kernels and bandwidth rule of statsmodels' ``KDEMultivariate`` (which HpBandSter's BOHB uses; see
docs/optimizers.md). Discrete kernels are kept as normalised ``k x k`` tables so densities and
samples come from the same numbers.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.special import ndtr, ndtri

from ._space import CATEGORICAL, ORDINAL

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def _discrete_log_table(kind: str, size: int, bandwidth: float) -> np.ndarray:
    """``table[x, v] = log K(x | v)``, normalised over ``x`` for each centre ``v``."""
    values = np.arange(size)
    distance = np.abs(values[:, None] - values[None, :])
    if kind == CATEGORICAL:
        kernel = np.where(distance == 0, 1 - bandwidth, bandwidth / (size - 1))
    else:
        kernel = np.where(distance == 0, 1 - bandwidth, 0.5 * (1 - bandwidth) * bandwidth ** distance)
    kernel = kernel / kernel.sum(axis=0, keepdims=True)
    return np.log(kernel)


def _logsumexp_rows(a: np.ndarray) -> np.ndarray:
    """``log(sum(exp(a), axis=1))`` without overflow; scipy's ``logsumexp`` costs 30x more on
    a 64 x 1,000 array (its array-API layer), and BOHB calls it for every pick."""
    top = a.max(axis=1)
    top[~np.isfinite(top)] = 0.0
    return top + np.log(np.exp(a - top[:, None]).sum(axis=1))


class KDE:
    """Kernel density of ``data`` (rows are points, no NaN) with per-dimension bandwidths.

    ``kinds`` and ``sizes`` describe the columns (see :class:`~._space.VectorSpace`).
    """

    def __init__(self, data: np.ndarray, kinds: list[str], sizes: list[int],
                 min_bandwidth: float) -> None:
        self.data = np.asarray(data, dtype=float)
        n, d = self.data.shape
        self.kinds, self.sizes = kinds, sizes
        self.discrete = np.array([k in (CATEGORICAL, ORDINAL) for k in kinds], dtype=bool)
        # normal reference rule, as statsmodels' bw='normal_reference'
        bandwidth = 1.06 * self.data.std(axis=0) * n ** (-1.0 / (4 + d))
        bandwidth = np.maximum(bandwidth, min_bandwidth)
        self.tables: dict[int, np.ndarray] = {}
        for j in np.flatnonzero(self.discrete):
            size = sizes[j]
            upper = (size - 1) / size if kinds[j] == CATEGORICAL else 0.99
            bandwidth[j] = min(bandwidth[j], upper)
            self.tables[j] = _discrete_log_table(kinds[j], size, bandwidth[j])
        self.bandwidth = bandwidth
        self._continuous = np.flatnonzero(~self.discrete)

    def logpdf(self, points: np.ndarray, extra: np.ndarray | None = None,
               extra_weight: float = 1.0) -> np.ndarray:
        """Log density at each row of ``points``; ``extra`` rows join the data (same bandwidths),
        each counting as ``extra_weight`` points (a subsample standing for more)."""
        data = self.data if extra is None or len(extra) == 0 else np.vstack([self.data, extra])
        points = np.asarray(points, dtype=float)
        log_kernel = np.zeros((points.shape[0], data.shape[0]))
        c = self._continuous
        if c.size:
            bw = self.bandwidth[c]
            # |p - d|^2 from a matrix product: no (points x data x dims) array
            p, d = points[:, c] / bw, data[:, c] / bw
            sq = (p * p).sum(axis=1)[:, None] - 2.0 * (p @ d.T) + (d * d).sum(axis=1)[None, :]
            log_kernel += -0.5 * np.maximum(sq, 0.0) - (np.log(bw) + _LOG_SQRT_2PI).sum()
        for j, table in self.tables.items():
            log_kernel += table[points[:, j].astype(int)[:, None], data[:, j].astype(int)[None, :]]
        n_extra = data.shape[0] - self.data.shape[0]
        if n_extra and extra_weight != 1.0:
            log_kernel[:, self.data.shape[0]:] += math.log(extra_weight)
        return _logsumexp_rows(log_kernel) - math.log(self.data.shape[0] + n_extra * extra_weight)

    def sample(self, num: int, rng: np.random.Generator, bandwidth_factor: float,
               min_bandwidth: float) -> np.ndarray:
        """``num`` points around random data points: truncated normal in [0, 1] for continuous
        dimensions (bandwidth widened by ``bandwidth_factor`` to explore), the kernel table for
        discrete ones."""
        centres = self.data[rng.integers(self.data.shape[0], size=num)]
        out = centres.copy()
        c = self._continuous
        if c.size:
            scale = np.maximum(self.bandwidth[c] * bandwidth_factor, min_bandwidth)
            low, high = ndtr((0.0 - centres[:, c]) / scale), ndtr((1.0 - centres[:, c]) / scale)
            u = low + rng.random(low.shape) * (high - low)
            u = np.clip(u, 1e-300, 1 - 1e-16)
            out[:, c] = np.clip(centres[:, c] + scale * ndtri(u), 0.0, 1.0)
        for j, table in self.tables.items():
            probs = np.exp(table[:, centres[:, j].astype(int)]).T  # (num, size)
            cumulative = np.cumsum(probs, axis=1)
            draws = rng.random((num, 1)) * cumulative[:, -1:]
            out[:, j] = np.minimum((cumulative < draws).sum(axis=1), self.sizes[j] - 1)
        return out


__all__ = ["KDE"]
