"""The quality benchmark's problems repeat Branin and Hartmann6 (its peers run in venvs that
cannot import ultrarun): the copies must stay the functions ``ultrarun.benchmarks`` ships."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from ultrarun import benchmarks

_SPEC = importlib.util.spec_from_file_location(
    "bench_problems", Path(__file__).resolve().parent.parent / "scripts" / "bench" / "problems.py")
problems = sys.modules["bench_problems"] = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(problems)


@pytest.mark.parametrize("budget", [1.0, 3.0, 9.0, 27.0])
def test_the_benchmark_copies_equal_ultraruns_functions(budget):
    rng = np.random.default_rng(0)
    for _ in range(50):
        b = {"x1": rng.uniform(-5, 10), "x2": rng.uniform(0, 15)}
        h = {f"x{i}": rng.uniform(0, 1) for i in range(6)}
        assert problems.branin(b, budget) == pytest.approx(
            benchmarks.branin(b, budget, problems.MAX_BUDGET), rel=1e-12)
        assert problems.hartmann6(h, budget) == pytest.approx(
            benchmarks.hartmann6(h, budget, problems.MAX_BUDGET), rel=1e-12)


def test_gb_diabetes_small_budgets_mislead():
    """The misleading-budget problem: over random configurations, one boosting iteration ranks
    them almost by learning rate alone and unlike 27 iterations do; a loss is reproducible."""
    from scipy.stats import spearmanr

    rng = np.random.default_rng(0)
    configs = [{"learning_rate": float(10 ** rng.uniform(-2, 0)),
                "max_depth": int(rng.integers(1, 11)),
                "min_samples_leaf": int(rng.integers(1, 51)),
                "subsample": float(rng.uniform(0.3, 1.0)),
                "max_features": float(rng.uniform(0.2, 1.0))} for _ in range(30)]
    first = [problems.gb_diabetes(c, 1.0) for c in configs]
    last = [problems.gb_diabetes(c, 27.0) for c in configs]
    rates = [c["learning_rate"] for c in configs]
    assert spearmanr(rates, first)[0] < -0.8
    assert spearmanr(first, last)[0] < 0.3
    assert problems.gb_diabetes(configs[0], 27.0) == last[0]
    assert {p.name for p in problems.PROBLEMS["gb_diabetes"].params} == {
        "learning_rate", "max_depth", "min_samples_leaf", "subsample", "max_features"}
