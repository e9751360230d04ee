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

from hypothesis import given, settings as examples  # noqa: E402
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


@examples(max_examples=300, deadline=None)
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


@examples(max_examples=300, deadline=None)
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


@examples(max_examples=300, deadline=None)
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


# ------------------------------------------- a result is checked where it is made (issue 21, 2)
import json  # noqa: E402
import shutil  # noqa: E402
import threading  # noqa: E402
from pathlib import Path  # noqa: E402

from ConfigSpace import Categorical, ConfigurationSpace, Float  # noqa: E402

from ultrarun.errors import RecordingError, UltrarunError  # noqa: E402
from ultrarun.executor import Durations, Executor, RetryPolicy  # noqa: E402
from ultrarun.iterations import HyperBandIterGenerator  # noqa: E402
from ultrarun.job import MAX_DEPTH, check_writable, finite_cost, parse_result  # noqa: E402
from ultrarun.dispatcher import dispatcher_for  # noqa: E402
from ultrarun.master import Master  # noqa: E402
from ultrarun.optimizers import RandomSearch as RandomSampler  # noqa: E402
from ultrarun.results import json_result_logger  # noqa: E402


def _nested(depth):
    value = 0
    for _ in range(depth):
        value = [value]
    return value


def _holds_itself():
    info = {}
    info["self"] = info
    return info


@pytest.mark.parametrize("info, words", [
    ({"big": 10 ** 5000}, "result['info']['big'] is an int of 16610 bits"),
    ({(1, 2): "pair"}, "result['info'] has the key (1, 2) (tuple)"),
    ({"per_class": {0: 0.9}}, "result['info']['per_class'] has the key 0 (int)"),
    ({"curve": [1.0, math.inf]}, "result['info']['curve'][1] is inf"),
    ({"deep": _nested(MAX_DEPTH + 5)}, f"nested more than {MAX_DEPTH} levels"),
    ({"deep": _nested(5000)}, "nested too deeply"),
    (_holds_itself(), "holds itself"),
])
def test_a_result_the_journal_cannot_write_is_refused_naming_the_field(info, words):
    """What the journal and the logs (JSON) cannot write back as it is never leaves the worker:
    the message names the field."""
    with pytest.raises(ResultError) as caught:
        validate_result({"loss": 1.0, "info": info})
    assert words in str(caught.value)


def test_a_result_over_the_size_limit_is_refused(monkeypatch):
    from ultrarun.settings import settings
    monkeypatch.setattr(settings, "MAX_MESSAGE_SIZE", 1000)
    with pytest.raises(ResultError, match="bytes as JSON, more than the MAX_MESSAGE_SIZE"):
        validate_result({"loss": 1.0, "info": {"blob": "x" * 2000}})


def test_a_written_result_reads_back_as_it_was():
    """Tuples are the one thing JSON changes that a result may hold (they come back as lists);
    everything else is what the journal replays."""
    result = validate_result({"loss": 1, "info": {"t": (1, 2), "n": None, "s": "é\ud800",
                                                  "big": 10 ** 300, "f": -0.0}})
    assert json.loads(json.dumps(result)) == {**result, "info": {**result["info"], "t": [1, 2]}}


def test_a_cost_past_the_float_range_is_a_clear_error():
    with pytest.raises(ResultError, match="it must be a finite float"):
        finite_cost(10 ** 400)


class _Unwritable(Executor):
    """An executor that checks nothing (an old worker, a custom backend): its one result has a
    tuple key, which the journal cannot write. Synchronous, no threads."""

    def __init__(self):
        self.retry, self.durations, self.submitted = RetryPolicy(), Durations(), 0

    def start(self):
        return self

    def number_of_workers(self):
        return 1

    def submit_job(self, id, **kwargs):
        from ultrarun.job import Job
        self.submitted += 1
        job = Job(id=id, kwargs=kwargs, status=JobStatus.SUCCESS,
                  result={"loss": 1.0, "info": {(1, 2): "pair"}})
        self.new_result_callback(job)
        return job

    def cancel_queued_jobs(self, ids=None):
        return 0

    def shutdown(self, shutdown_workers=False):
        pass


def _space(**extra):
    return ConfigurationSpace(seed=0, space=[Float("x", (0.0, 1.0)), *extra.values()])


def test_a_journal_that_cannot_write_a_result_stops_the_run_naming_the_job(tmp_path):
    """A result an executor did not check reaches the journal, which raises: the run stops
    with a RecordingError naming the job and the cause (it used to be logged, and the run
    waited for the job for ever)."""
    executor = _Unwritable()
    master = Master("rec", RandomSampler(_space(), seed=0), HyperBandIterGenerator(1, 9, 3),
                    executor=executor, working_directory=tmp_path, show_progress=False)
    with master, pytest.raises(RecordingError) as caught:
        master.run(n_iterations=1)
    assert executor.submitted == 1, "nothing was launched after it"
    assert "job (0, 0, 0) at budget 1" in str(caught.value)
    assert "keys must be str" in str(caught.value)
    assert isinstance(caught.value, UltrarunError)


def _run_in_thread(master, timeout=120.0):
    """``master.run`` in a thread, joined with a deadline: a run that hangs fails the test
    instead of holding it (the old code waited for ever)."""
    out: dict = {}

    def run():
        try:
            out["result"] = master.run(n_iterations=1, min_n_workers=1,
                                       min_n_workers_timeout=60)
        except Exception as exc:  # handed to the test
            out["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), f"the run did not end within {timeout} s"
    return out


@pytest.mark.slow
def test_a_compute_returning_what_json_cannot_write_is_crashed_and_the_run_ends(tmp_path):
    """Real worker processes: computes that return a 5000-digit int or a tuple key end
    CRASHED with the field named; the run ends, the others succeed, and the journal holds
    every result."""
    from ultrarun.local import LocalCluster
    from workers_for_tests import TestWorker

    space = _space(junk=Categorical("junk", ["bigint", "tuplekey", "fine"]))
    with LocalCluster(n_workers=2, worker_class=TestWorker, working_directory=tmp_path) as c:
        master = Master(c.run_id, RandomSampler(space, seed=0), HyperBandIterGenerator(1, 9, 3),
                        dispatcher_for(c.run_id, nameserver=c.nameserver.host,
                                       nameserver_port=c.nameserver_port, secret=c.secret,
                                       ping_interval=1),
                        working_directory=tmp_path, show_progress=False)
        try:
            out = _run_in_thread(master)
        finally:
            master.shutdown()
    assert "error" not in out, out
    runs = out["result"].get_all_runs()
    configs = out["result"].get_id2config_mapping()
    junk = {r.config_id: configs[r.config_id]["config"]["junk"] for r in runs}
    assert {"bigint", "tuplekey"} <= set(junk.values())
    for run in runs:
        if junk[run.config_id] == "bigint":
            assert run.status is JobStatus.CRASHED
            assert "result['info']['big'] is an int of 16610 bits" in run.error_logs
        elif junk[run.config_id] == "tuplekey":
            assert run.status is JobStatus.CRASHED
            assert "result['info'] has the key (1, 2)" in run.error_logs
        else:
            assert run.status is JobStatus.SUCCESS
    lines = [json.loads(line) for line in next(tmp_path.glob("*.journal.jsonl")).open()]
    assert sum(line["t"] == "result" for line in lines) == len(runs)


def _unwritable_target(config):
    if config["junk"] == "bigint":
        return {"loss": 1.0, "info": {"big": 10 ** 5000}}
    if config["junk"] == "tuplekey":
        return {"loss": 1.0, "info": {(1, 2): "pair"}}
    return config["x"]


def test_on_a_runner_what_json_cannot_write_is_crashed_and_the_run_ends(tmp_path):
    """The runner executor checks results as the workers do."""
    from ultrarun.runners import TargetFunctionRunner, ThreadRunner

    space = _space(junk=Categorical("junk", ["bigint", "tuplekey", "fine"]))
    runner = ThreadRunner(TargetFunctionRunner(_unwritable_target), n_workers=2)
    master = Master("runner-junk", RandomSampler(space, seed=0), HyperBandIterGenerator(1, 9, 3),
                    executor=runner, working_directory=tmp_path, show_progress=False)
    try:
        out = _run_in_thread(master, timeout=60)
    finally:
        master.shutdown(shutdown_workers=True)
    assert "error" not in out, out
    runs = out["result"].get_all_runs()
    crashed = [r for r in runs if r.status is JobStatus.CRASHED]
    assert crashed and all("ResultError: result['info']" in r.error_logs for r in crashed)
    assert any(r.status is JobStatus.SUCCESS for r in runs)


def _break_the_logs_after_the_first_result(logs: Path):
    """A progress callback that, after the first result, puts a directory where results.json
    was: the result logger can no longer open its file (as with no file descriptor left)."""
    seen = []

    def callback(job, master):
        seen.append(job.id)
        if len(seen) == 1:
            (logs / "results.json").unlink()
            (logs / "results.json").mkdir()
    return callback, seen


def _check_stopped(out, seen):
    error = out.get("error")
    assert isinstance(error, RecordingError), out
    assert "could not record the result of job (0, 0, " in str(error)
    assert "IsADirectoryError" in str(error) and "results.json" in str(error)
    assert str(seen[0]) not in str(error), "the job named is the one that was not recorded"


@pytest.mark.slow
def test_a_result_logger_that_cannot_write_stops_a_pyro_run(tmp_path):
    """The dispatcher path: the result logger fails on the second result; the run stops with
    a RecordingError naming that job (it used to log "callback raised; continuing" and wait
    for ever)."""
    from ultrarun.local import LocalCluster
    from workers_for_tests import TestWorker

    callback, seen = _break_the_logs_after_the_first_result(tmp_path / "logs")
    with LocalCluster(n_workers=1, worker_class=TestWorker, working_directory=tmp_path) as c:
        master = Master(c.run_id, RandomSampler(_space(), seed=0), HyperBandIterGenerator(1, 9, 3),
                        dispatcher_for(c.run_id, nameserver=c.nameserver.host,
                                       nameserver_port=c.nameserver_port, secret=c.secret,
                                       ping_interval=1),
                        working_directory=tmp_path, show_progress=False, result_logger=json_result_logger(tmp_path / "logs"),
                        progress_callback=callback)
        try:
            out = _run_in_thread(master)
        finally:
            master.shutdown()
    _check_stopped(out, seen)


def test_a_result_logger_that_cannot_write_stops_a_runner_run(tmp_path):
    """The runner-executor path, the same failure, the same stop."""
    from ultrarun.runners import TargetFunctionRunner, ThreadRunner

    callback, seen = _break_the_logs_after_the_first_result(tmp_path / "logs")
    runner = ThreadRunner(TargetFunctionRunner(lambda config: config["x"]), n_workers=1)
    master = Master("runner-logs", RandomSampler(_space(), seed=0), HyperBandIterGenerator(1, 9, 3),
                    executor=runner, working_directory=tmp_path, show_progress=False,
                    result_logger=json_result_logger(tmp_path / "logs"),
                    progress_callback=callback)
    try:
        out = _run_in_thread(master, timeout=60)
    finally:
        master.shutdown(shutdown_workers=True)
    _check_stopped(out, seen)
    shutil.rmtree(tmp_path / "logs")


# ---------------------------------------------------- fuzzing the boundaries (issue 21, fuzzing)
def _huge(sign):
    return sign * 10 ** 5000  # no repr: past the decimal limit


_HOSTILE = st.one_of(
    _SCALARS, st.integers(min_value=2 ** 60, max_value=2 ** 70),
    st.builds(_huge, st.sampled_from([1, -1])), st.just(math.inf), st.just(-math.inf), st.floats(),
    st.text(alphabet=st.characters(), max_size=6),  # lone surrogates included
    st.builds(_nested, st.integers(0, 150)), st.builds(_holds_itself),
    st.just(np.longdouble(1.5)), st.just(np.complex64(1j)), st.just(np.array([1j])),
    st.just(np.array([object()])), st.just({1, 2}), st.just(frozenset({"a"})))
_KEYS = st.one_of(st.text(max_size=4), st.integers(), st.booleans(), st.none(), st.floats(),
                  st.tuples(st.integers(0, 2), st.integers(0, 2)), st.builds(_huge, st.just(1)))
_ANY = st.recursive(_HOSTILE, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.tuples(inner, inner),
    st.dictionaries(_KEYS, inner, max_size=3)), max_leaves=10)


def _as_json(value):
    """What JSON gives back for a plain value: tuples become lists (the one change allowed)."""
    if isinstance(value, (list, tuple)):
        return [_as_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _as_json(v) for k, v in value.items()}
    return value


def _round_trips(value):
    text = json.dumps(value, allow_nan=False)
    assert json.loads(text) == _as_json(value)


@examples(max_examples=400, deadline=None)
@given(raw=st.one_of(_ANY, st.fixed_dictionaries({"loss": _HOSTILE}, optional={
    "info": _ANY, "cost": _HOSTILE, _KEYS: _ANY})))
def test_validate_result_gives_what_json_writes_back_or_a_result_error(raw):
    """Whatever a compute returns: a result the journal writes and reads back as it is, or a
    ResultError (never another exception, never a hang)."""
    try:
        result = validate_result(raw)
    except ResultError as exc:
        assert str(exc)
        return
    assert type(result["loss"]) is float and math.isfinite(result["loss"])
    _round_trips(result)
    assert marshal.loads(marshal.dumps(result)) == result


@examples(max_examples=300, deadline=None)
@given(raw=st.one_of(_ANY, st.tuples(_ANY, _ANY)),
       objectives=st.one_of(st.none(), st.lists(_KEYS, max_size=3)))
def test_parse_result_gives_costs_and_writable_info_or_a_result_error(raw, objectives):
    try:
        cost, info = parse_result(raw, objectives)
    except ResultError as exc:
        assert str(exc)
        return
    costs = cost if isinstance(cost, list) else [cost]
    assert all(type(c) is float and math.isfinite(c) for c in costs)
    _round_trips({"cost": cost, "info": info})


@examples(max_examples=300, deadline=None)
@given(value=_ANY)
def test_to_plain_gives_plain_data_or_a_result_error(value):
    """to_plain is the wire's converter: plain data that marshal carries unchanged, which
    check_writable then takes or refuses with a ResultError."""
    try:
        plain = to_plain(value)
    except ResultError as exc:
        assert str(exc)
        return
    assert marshal.loads(marshal.dumps(plain)) == plain
    try:
        _round_trips(check_writable(plain))
    except ResultError as exc:
        assert str(exc)


@examples(max_examples=300, deadline=None)
@given(changes=st.dictionaries(st.sampled_from(sorted(_JOB) + ["other"]), _ANY, max_size=4),
       drop=st.sets(st.sampled_from(sorted(_JOB)), max_size=2), whole=st.one_of(st.none(), _ANY))
def test_parse_job_message_takes_or_refuses_anything(changes, drop, whole):
    message = whole if whole is not None else {
        k: v for k, v in {**_JOB, **changes}.items() if k not in drop}
    try:
        job = JobMessage.from_wire(message)
    except JobError as exc:
        assert str(exc)
        return
    assert all(value is message[name] for name, value in job.to_wire().items())
    assert type(job.token) is int and job.seq >= 1


@examples(max_examples=300, deadline=None)
@given(message=st.one_of(_ANY, st.fixed_dictionaries(
    {"token": st.one_of(st.integers(), _HOSTILE), "attempt": st.integers()},
    optional={"status": st.one_of(st.sampled_from([s.value for s in JobStatus]), _HOSTILE),
              "result": st.one_of(_ANY, st.fixed_dictionaries({"loss": _HOSTILE},
                                                              optional={"info": _ANY})),
              "exception": _ANY, "duration": _HOSTILE, "info": _ANY})))
def test_parse_result_message_gives_a_writable_final_result_or_a_job_error(message):
    try:
        parsed = ResultMessage.from_wire(message)
    except JobError as exc:
        assert str(exc)
        return
    assert parsed.status.is_final
    assert parsed.exception is None or type(parsed.exception) is str
    if parsed.status is JobStatus.SUCCESS:
        _round_trips(parsed.result)
    assert parsed.info is None or type(parsed.info) is dict
    assert parsed.duration is None or 0 <= parsed.duration < math.inf
