"""The journal on its own (ultrarun/journal.py): the refuse/resume/overwrite rule and the
replay, on files only (no master, no threads)."""
from __future__ import annotations

import json

import pytest
from ConfigSpace import ConfigurationSpace, Float
from hypothesis import HealthCheck, given, settings, strategies as st

from ultrarun._files import parse_json_lines, read_json_lines
from ultrarun.errors import ConfigurationError
from ultrarun.iterations import HyperBandIterGenerator
from ultrarun.job import JobStatus
from ultrarun.journal import EXISTING, Journal, header
from ultrarun.optimizers import RandomSearch

SPACE = ConfigurationSpace(seed=0, space=[Float("x", (0.0, 1.0))])
HEADER = header("exp", RandomSearch(SPACE, seed=0), HyperBandIterGenerator(1, 9, 3))


def _earlier_run(path):
    """A journal of one configuration with a finished and a cancelled job."""
    journal = Journal(path)
    journal.start(HEADER, "overwrite")
    journal.write({"t": "config", "id": [0, 0, 0], "config": {"x": 0.5}, "info": {}})
    journal.write({"t": "result", "id": [0, 0, 0], "budget": 1.0, "status": "SUCCESS",
                   "result": {"loss": 1.0}})
    journal.write({"t": "result", "id": [0, 0, 0], "budget": 3.0, "status": "CANCELLED"})
    journal.close()
    return path.read_bytes()


def test_an_earlier_journal_is_refused_resumed_or_overwritten(tmp_path):
    path = tmp_path / "j.jsonl"
    before = _earlier_run(path)
    with pytest.raises(ConfigurationError, match="resume=True, start over with overwrite=True"):
        Journal(path).start(HEADER, "refuse")
    assert path.read_bytes() == before, "nothing touched"

    resumed = Journal(path)
    replay = resumed.start(HEADER, "resume")
    resumed.close()
    assert replay.configs == {(0, 0, 0): ({"x": 0.5}, {})}
    assert list(replay.results) == [((0, 0, 0), 1.0)], "the cancelled job runs again"
    assert replay.again == 1 and path.read_bytes() == before, "appended to, nothing written yet"

    other = dict(HEADER, run_id="another")
    with pytest.raises(ConfigurationError, match="written by a different run.*run_id"):
        Journal(path).start(other, "resume")
    assert path.read_bytes() == before

    fresh = Journal(path)
    assert fresh.start(HEADER, "overwrite").results == {}
    fresh.close()
    assert [json.loads(line)["t"] for line in path.read_text().splitlines()] == ["header"]


def test_resuming_where_there_is_no_journal_starts_one(tmp_path):
    journal = Journal(tmp_path / "new" / "j.jsonl")
    assert not journal.is_open
    replay = journal.start(HEADER, "resume")
    assert journal.is_open and replay.results == {} and replay.again == 0
    journal.close()
    assert json.loads(journal.path.read_text()) == HEADER


def read_json_lines_of(data: bytes):
    return parse_json_lines(list(enumerate(data.decode("utf-8", "surrogateescape")
                                           .splitlines(keepends=True), 1)))


_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                       lambda inner: st.lists(inner, max_size=3)
                       | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=6)
_RECORDS = st.one_of(
    _VALUES, st.just(HEADER),
    st.fixed_dictionaries({"t": st.sampled_from(["result", "config", "header", "other"])},
                          optional={"id": _VALUES | st.lists(st.integers(), max_size=3),
                                    "budget": _VALUES | st.floats(),
                                    "status": _VALUES | st.sampled_from([s.value for s in JobStatus]),
                                    "config": _VALUES, "info": _VALUES,
                                    "run_id": st.just("exp") | _VALUES}),
    st.builds(lambda i, b, s: {"t": "result", "id": i, "budget": b, "status": s},
              st.lists(st.integers(0, 2), min_size=3, max_size=3), st.sampled_from([1, 3.0]),
              st.sampled_from([s.value for s in JobStatus])))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(records=st.lists(_RECORDS, max_size=8), junk=st.lists(st.binary(max_size=12), max_size=2),
       existing=st.sampled_from(EXISTING), tmp_path_factory=st.just(None))
def test_whatever_a_journal_holds_resuming_replays_it_or_refuses_it_clearly(
        tmp_path, records, junk, existing, tmp_path_factory):
    """Any file where the journal goes: a clear ConfigurationError that leaves the file as it
    was, or a replay of valid results only; never another exception."""
    path = tmp_path / "j.jsonl"
    lines = [json.dumps(r).encode() for r in records] + junk
    path.write_bytes(b"\n".join(lines) + b"\n")
    before = path.read_bytes()
    journal = Journal(path)
    try:
        replay = journal.start(HEADER, existing)
    except ConfigurationError:
        assert path.read_bytes() == before
        return
    finally:
        journal.close()
    assert existing != "refuse"
    for (config_id, budget), record in replay.results.items():
        assert isinstance(config_id, tuple) and isinstance(budget, float)
        assert JobStatus(record["status"]) is not JobStatus.CANCELLED
    now = [record for _, record in read_json_lines(path)]
    earlier = [r for _, r in read_json_lines_of(before)]
    if existing == "resume" and HEADER in earlier:
        assert now == earlier, "appended to, nothing lost"
    else:  # a journal without a header (a crash came first) gets one
        assert now == [HEADER]
