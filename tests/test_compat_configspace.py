"""ConfigSpace 0.4's arguments under ConfigSpace 1.x (``ultrarun.compat.configspace``) and the
values a configuration hands to ``compute``: fuzzed over many spaces."""
from __future__ import annotations

import warnings

import ConfigSpace as CS
import ConfigSpace.hyperparameters as CSH
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ultrarun.compat.configspace import LegacySpaceWarning, accept_legacy_spaces
from ultrarun.optimizers import BOHB, RandomSearch

accept_legacy_spaces()
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def float_ranges(draw):
    lower = draw(st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False))
    width = draw(st.floats(1e-3, 1e6, allow_nan=False, allow_infinity=False))
    default = draw(st.floats(0, 1)) * width + lower
    return lower, lower + width, min(default, lower + width)


@FUZZ
@given(float_ranges())
def test_what_configspace_1_accepts_passes_unchanged_and_silently(bounds):
    lower, upper, default = bounds
    original = CSH.UniformFloatHyperparameter.__init__.__wrapped__
    expected = object.__new__(CSH.UniformFloatHyperparameter)
    original(expected, "a", lower, upper, default_value=default)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning fails
        made = CSH.UniformFloatHyperparameter("a", lower, upper, default_value=default)
    assert made == expected


@FUZZ
@given(float_ranges())
def test_numbers_written_as_strings_read_as_the_numbers(bounds):
    lower, upper, default = bounds
    numeric = CSH.UniformFloatHyperparameter("a", lower, upper, default_value=default)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        text = CSH.UniformFloatHyperparameter("a", repr(lower), repr(upper),
                                              default_value=repr(default))
    assert text == numeric
    assert [w.category for w in caught] == [LegacySpaceWarning]
    assert "(a string) read as" in str(caught[0].message)


choice_values = st.one_of(st.integers(-1000, 1000),
                          st.floats(-1e3, 1e3, allow_nan=False).filter(lambda f: f != int(f)),
                          st.text("abcxyz", min_size=1, max_size=4))


@FUZZ
@given(st.lists(choice_values, min_size=2, max_size=6, unique_by=lambda v: (type(v), v))
       .filter(lambda vs: len({v for v in vs}) == len(vs)), st.integers(0, 2 ** 16))
def test_a_choice_reaches_compute_as_the_object_the_space_lists(choices, seed):
    space = CS.ConfigurationSpace()
    space.add([CSH.CategoricalHyperparameter("c", choices),
               CSH.OrdinalHyperparameter("o", choices)])
    for optimizer in (RandomSearch(space, seed=seed), BOHB(space, seed=seed,
                                                           min_points_in_model=3)):
        for _ in range(8):
            ((config, _),) = optimizer.ask(1.0)
            for name in ("c", "o"):
                listed = [v for v in choices if v == config[name]]
                assert listed and type(config[name]) is type(listed[0]), (config, choices)
            optimizer.tell(config, float(seed % 7), 1.0)


def test_a_space_whose_seed_attribute_was_replaced_is_still_searched():
    space = CS.ConfigurationSpace()
    space.add(CSH.UniformFloatHyperparameter("x", 0, 1))
    space.seed = 3  # hpbandster-sklearn
    for optimizer in (RandomSearch(space, seed=1), BOHB(space, seed=1)):
        ((config, _),) = optimizer.ask(1.0)
        assert 0 <= config["x"] <= 1
    assert space.seed == 3
