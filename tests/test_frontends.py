"""Front ends: which optimizer and schedule each one builds, and what minimize runs by default."""
from __future__ import annotations

import logging

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ultrarun.benchmarks import branin_space
from ultrarun.dispatcher import Dispatcher
from ultrarun.errors import ConfigurationError
from ultrarun.executor import RetryPolicy
from ultrarun.frontends import BOHB, DEHB, DEFAULT_METHOD, METHODS, TPE, HyperBand, RandomSearch
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


# the keywords users pass the front ends, each with a value and where it must arrive
_MINE = logging.getLogger("mine")
KEYWORDS = {
    "nameserver": ("10.1.2.3", lambda m: m.executor.nameserver == "10.1.2.3"),
    "nameserver_port": (4321, lambda m: m.executor.nameserver_port == 4321),
    "host": ("127.0.0.2", lambda m: m.executor.host == "127.0.0.2"),
    "ping_interval": (3.0, lambda m: m.executor.ping_interval == 3.0),
    "timeout": (2.0, lambda m: m.executor.timeout == 2.0),
    "prefetch": (1, lambda m: m.executor.prefetch == 1),
    "secret": ("s" * 32, lambda m: m.executor.secret == "s" * 32),
    "retry": (RetryPolicy(5), lambda m: m.executor.retry == RetryPolicy(5)),
    "checkpoint_freq": (7, lambda m: m.journal.fsync_every == 7),
    "overwrite": (True, lambda m: m.existing == "overwrite"),
    "job_queue_sizes": ((0, 2), lambda m: m.user_job_queue_sizes == (0, 2)),
    "dynamic_queue_size": (False, lambda m: m.dynamic_queue_size is False),
    "shutdown_workers": (False, lambda m: m.shutdown_workers is False),
    "incumbents": ({1.0: {"x1": 0.5}}, lambda m: m.incumbents == {1.0: {"x1": 0.5}}),
    "incumbent_performances": ({1.0: 0.25}, lambda m: m.incumbent_performances == {1.0: 0.25}),
    "logger": (_MINE, lambda m: m.logger is _MINE),
    "deterministic": (True, lambda m: m.deterministic),
    "time_left_for_this_task": (60.0, lambda m: m.time_left_for_this_task == 60.0),
}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(chosen=st.sets(st.sampled_from(sorted(KEYWORDS))),
       front=st.sampled_from([TPE, BOHB, DEHB, HyperBand, RandomSearch]))
def test_every_keyword_a_front_end_took_reaches_its_place(tmp_path, chosen, front):
    """The master knows no Pyro; the front ends still take HpBandSter's keywords, in any
    combination, and hand each to the dispatcher they make (dispatcher_for) or to the master."""
    given_ = {name: KEYWORDS[name][0] for name in chosen}
    master = build(front, run_id="kw", working_directory=tmp_path,
                   checkpoint_file=tmp_path / "j.jsonl", **given_)
    assert isinstance(master.executor, Dispatcher) and master.executor.run_id == "kw"
    assert master.journal.path == tmp_path / "j.jsonl"
    assert [name for name in chosen if not KEYWORDS[name][1](master)] == []
    if "nameserver" not in chosen:
        assert master.executor.nameserver == "127.0.0.1"


def test_a_front_end_on_another_executor_and_hpbandsters_run_dict(tmp_path):
    """With executor=..., a Pyro keyword would do nothing: it is refused, naming it;
    HpBandSter's master.config holds the master's time_ref."""
    from test_master_unit import Clock, SimulatedExecutor
    from ultrarun.compat.hpbandster.optimizers import BOHB as HpBandSterBOHB

    executor = SimulatedExecutor(Clock())
    with pytest.raises(ConfigurationError, match="nameserver, prefetch configure the Pyro"):
        build(HyperBand, executor=executor, nameserver="10.1.2.3", prefetch=1,
              working_directory=tmp_path)
    master = build(HyperBand, executor=executor, working_directory=tmp_path)
    assert master.executor is executor and executor.prefetch == 0
    compat = HpBandSterBOHB(branin_space(), eta=3, min_budget=1, max_budget=9, run_id="hb",
                            executor=SimulatedExecutor(Clock()), working_directory=tmp_path)
    compat.time_ref = 5.0
    assert compat.config["time_ref"] == 5.0 and compat.config["eta"] == 3
    compat.shutdown()
