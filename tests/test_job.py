"""What may travel, and what a compute may return."""
from __future__ import annotations

import math

import numpy as np
import pytest

from ultrarun.errors import ResultError
from ultrarun.job import Job, JobStatus, to_plain, validate_result


def test_numpy_values_become_exact_python_types():
    plain = to_plain({"f": np.float64(1.5), "i": np.int64(3), "s": np.str_("rbf"),
                      "b": np.bool_(True), "a": np.arange(3), "m": np.ones((2, 2), np.float32),
                      "t": (np.int8(1), "x"), "nested": [{"v": np.float16(0.5)}]})
    assert plain == {"f": 1.5, "i": 3, "s": "rbf", "b": True, "a": [0, 1, 2],
                     "m": [[1.0, 1.0], [1.0, 1.0]], "t": (1, "x"), "nested": [{"v": 0.5}]}
    assert type(plain["f"]) is float and type(plain["i"]) is int and type(plain["s"]) is str
    assert type(plain["b"]) is bool and type(plain["a"][0]) is int


def test_nan_becomes_none_because_json_cannot_carry_it():
    assert to_plain({"acc": math.nan, "inf": math.inf}) == {"acc": None, "inf": math.inf}


@pytest.mark.parametrize("value, where", [
    ({"model": object()}, "x['model']"),
    ({"raw": b"bytes"}, "x['raw']"),
    ({"deep": [1, {"f": lambda: 1}]}, "x['deep'][1]['f']"),
])
def test_values_that_cannot_travel_are_named(value, where):
    with pytest.raises(ResultError) as info:
        to_plain(value, "x")
    assert where in str(info.value)


def test_validate_result_accepts_dicts_and_bare_numbers():
    assert validate_result({"loss": np.float32(0.25), "info": {"n": np.int64(2)}}) == \
        {"loss": 0.25, "info": {"n": 2}}
    assert validate_result(3) == {"loss": 3.0, "info": {}}
    assert validate_result({"loss": 1}) == {"loss": 1.0, "info": {}}


@pytest.mark.parametrize("raw, words", [
    (None, "expected a dict"),
    ("0.5", "expected a dict"),
    ({"info": {}}, "without 'loss'"),
    ({"loss": math.nan}, "finite number"),
    ({"loss": math.inf}, "finite number"),
    ({"loss": "low"}, "must be a number"),
    ({"loss": True}, "must be a number"),
    ({"loss": 1.0, "info": {"f": open}}, "result['info']['f']"),
])
def test_junk_results_are_refused_with_the_reason(raw, words):
    with pytest.raises(ResultError) as info:
        validate_result(raw)
    assert words in str(info.value)


def test_job_status_and_repr():
    job = Job(id=(0, 0, 1), kwargs={"budget": 1.0})
    assert job.status is JobStatus.QUEUED and not job.status.is_final
    assert JobStatus.CRASHED.failed and not JobStatus.SUCCESS.failed
    other = Job(id=(0, 0, 1), kwargs={})
    assert job.token != other.token
    assert "QUEUED" in repr(job)


# ----------------------------------------------------------------- anything a party may send
import marshal  # noqa: E402

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from ultrarun.errors import JobError  # noqa: E402
from ultrarun.protocol import JobMessage, ResultMessage  # noqa: E402

_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(),
                     st.text(max_size=8), st.binary(max_size=8),
                     st.builds(np.float32, st.floats(width=32)), st.builds(np.int64,
                                                                          st.integers(-9, 9)),
                     st.just(object()), st.just(np.arange(3)), st.just(float("nan")))
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.tuples(inner, inner),
    st.dictionaries(st.one_of(st.text(max_size=4), st.integers()), inner, max_size=3)),
    max_leaves=12)


@settings(max_examples=300, deadline=None)
@given(raw=st.one_of(_VALUES, st.fixed_dictionaries({"loss": _SCALARS}, optional={
    "info": _VALUES, "extra": _VALUES})))
def test_any_compute_return_value_is_a_result_or_a_clear_error(raw):
    """What compute returns is either a result that travels unchanged, or a ResultError: no
    other exception, whatever the value."""
    try:
        result = validate_result(raw)
    except ResultError as exc:
        assert str(exc)
        return
    assert type(result["loss"]) is float and math.isfinite(result["loss"])
    assert marshal.loads(marshal.dumps(result)) == result


_JOB = {"token": 1, "attempt": 1, "id": "x", "kwargs": {"budget": 1.0},
        "dispatcher": "PYRO:d@h:1", "seq": 1}


@settings(max_examples=300, deadline=None)
@given(changes=st.dictionaries(st.sampled_from(sorted(_JOB) + ["other"]), _VALUES, max_size=4),
       drop=st.sets(st.sampled_from(sorted(_JOB)), max_size=2))
def test_any_job_message_is_taken_or_refused_with_its_field_named(changes, drop):
    message = {k: v for k, v in {**_JOB, **changes}.items() if k not in drop}
    try:
        job = JobMessage.from_wire(message)
    except JobError as exc:
        assert any(name in str(exc) for name in [*_JOB, "a job", "dict"]), str(exc)
        return
    assert type(job.token) is int and job.seq >= 1 and job.dispatcher
    assert JobMessage.from_wire(job.to_wire()).to_wire() == job.to_wire()


@settings(max_examples=300, deadline=None)
@given(message=st.one_of(_VALUES, st.fixed_dictionaries(
    {"token": st.integers(), "attempt": st.integers()},
    optional={"status": st.one_of(st.sampled_from([s.value for s in JobStatus]), _SCALARS),
              "result": _VALUES, "exception": _VALUES, "duration": _SCALARS})))
def test_any_result_message_is_a_final_status_or_refused(message):
    try:
        parsed = ResultMessage.from_wire(message)
    except JobError:
        return
    assert parsed.status.is_final
    assert parsed.status is not JobStatus.SUCCESS or validate_result(parsed.result)
    assert parsed.duration is None or parsed.duration >= 0
    assert ResultMessage.from_wire(parsed.to_wire()) == parsed
