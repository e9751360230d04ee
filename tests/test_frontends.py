"""Front ends: which optimizer and schedule each one builds, and what minimize runs by default."""
from __future__ import annotations

import pytest

from ultrarun.benchmarks import branin_space
from ultrarun.errors import ConfigurationError
from ultrarun.frontends import BOHB, DEHB, DEFAULT_METHOD, METHODS, TPE, HyperBand
from ultrarun.iterations import (AdaptiveIterGenerator, ASHAIterGenerator, HyperBandIterGenerator,
                                 SuccessiveHalvingIterGenerator)
from ultrarun import optimizers


def build(front, **kwargs):
    master = front(branin_space(), min_budget=1, max_budget=27, **kwargs)
    master.shutdown()
    return master


def test_minimize_defaults_to_tpe_on_adaptive_successive_halving():
    master = build(METHODS[DEFAULT_METHOD])
    assert isinstance(master.optimizer, optimizers.TPE)
    assert isinstance(master.iter_generator, AdaptiveIterGenerator)
    assert master.iter_generator.bracket(0) == SuccessiveHalvingIterGenerator(1, 27).bracket(0)


@pytest.mark.parametrize("front, optimizer, default", [
    (TPE, optimizers.TPE, AdaptiveIterGenerator),
    (BOHB, optimizers.BOHB, HyperBandIterGenerator),
    (DEHB, optimizers.DEHB, HyperBandIterGenerator),
    (HyperBand, optimizers.RandomSearch, HyperBandIterGenerator),
])
def test_every_front_end_runs_every_schedule(front, optimizer, default):
    assert isinstance(build(front).iter_generator, default)
    assert isinstance(build(front).optimizer, optimizer)
    for iterations, generator in (("hyperband", HyperBandIterGenerator),
                                  ("successive_halving", SuccessiveHalvingIterGenerator),
                                  ("adaptive", AdaptiveIterGenerator),
                                  ("asha", ASHAIterGenerator)):
        assert isinstance(build(front, iterations=iterations).iter_generator, generator)
    assert isinstance(build(front, asha=True).iter_generator, ASHAIterGenerator)


def test_optimizer_arguments_reach_the_optimizer():
    master = build(TPE, prior_weight=2.5, fidelity="largest", seed=3)
    assert (master.optimizer.prior_weight, master.optimizer.fidelity) == (2.5, "largest")
    assert master.optimizer.seed == 3
    assert build(DEHB, population_size=12).optimizer.population_size == 12
    assert build(BOHB).optimizer.min_bandwidth == 0.03


def test_tpe_ranks_each_budget_on_brackets_and_by_budget_reached_on_asha():
    """fidelity="percentile" (TPE's default) on brackets, "rank" on ASHA, where it measured
    better; an explicit fidelity wins (docs/optimizers.md)."""
    assert build(TPE).optimizer.fidelity == "percentile"
    assert build(TPE, iterations="hyperband").optimizer.fidelity == "percentile"
    assert build(TPE, asha=True).optimizer.fidelity == "rank"
    assert build(TPE, iterations="asha").optimizer.fidelity == "rank"
    assert build(TPE, asha=True, fidelity="percentile").optimizer.fidelity == "percentile"


def test_schedules_are_checked():
    with pytest.raises(ConfigurationError, match="iterations is 'bracket'; it must be one of "
                                                 "'hyperband', 'successive_halving', "
                                                 "'adaptive', 'asha'"):
        build(TPE, iterations="bracket")
    with pytest.raises(ConfigurationError, match="asha=True and iterations='hyperband' disagree"):
        build(BOHB, asha=True, iterations="hyperband")
