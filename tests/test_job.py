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
