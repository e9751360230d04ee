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
