"""The one writer of each file format (ultrarun/_files.py): JSON lines and CSV."""
from __future__ import annotations

import csv
import json
import logging
import math
import os

import numpy as np
import pytest

from ultrarun import _files
from ultrarun._files import JsonLines, jsonable, read_json_lines, write_csv
from ultrarun.errors import ResultError


def test_records_are_flushed_at_once_and_fsynced_every_n(tmp_path, monkeypatch):
    synced, fsync = [], os.fsync
    monkeypatch.setattr(_files.os, "fsync", lambda fd: synced.append(fd) or fsync(fd))
    log = JsonLines(tmp_path / "sub" / "log.jsonl", fsync_every=3)
    log.open()
    for i in range(7):
        log.write({"i": i, "t": (1, 2)}, sync=True)
        assert [v for _, v in read_json_lines(log.path)][-1] == {"i": i, "t": [1, 2]}
    assert len(synced) == 2, "fsync after the 3rd and the 6th record"
    log.write({"i": 7})  # sync=False: flushed, not fsynced
    log.close()
    assert len(synced) == 3, "close fsyncs"
    log.write({"i": 8})  # after close: dropped
    assert [v["i"] for _, v in read_json_lines(log.path)] == list(range(8))


@pytest.mark.parametrize("bad", [b"1, 2", b'{"i": ', b"[1", b"2]"])
def test_lines_read_in_chunks_are_the_lines_read_one_by_one(tmp_path, caplog, bad):
    """Chunks of lines are parsed in one call each; a chunk with an unreadable line (even one
    that would parse joined to its neighbours) is read a line at a time: the same values and
    line numbers, and a warning for that line only."""
    path = tmp_path / "log.jsonl"
    lines = [json.dumps({"i": i}).encode() for i in range(10)]
    path.write_bytes(b"\n".join(lines[:4] + [bad, b""] + lines[4:]) + b"\n")
    with caplog.at_level(logging.WARNING):
        read = list(read_json_lines(path, chunk=3))
    assert read == [(n, {"i": i}) for n, i in zip([1, 2, 3, 4, *range(7, 13)], range(10))]
    assert caplog.text.count("skipping unreadable line") == 1 and f"{path}:5:" in caplog.text


@pytest.mark.parametrize("tail", [b'{"i": 2, "to', b'{"i": 2}\n\x00\x00\x00\n', b"garbage\n"])
def test_appending_cuts_a_torn_tail_and_reading_skips_unreadable_lines(tmp_path, caplog, tail):
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"i": 0}\n{"i": 1}\n' + tail)
    with caplog.at_level(logging.WARNING):
        assert [v["i"] for _, v in read_json_lines(path)][:2] == [0, 1]
        assert "skipping unreadable line" in caplog.text
        caplog.clear()
        log = JsonLines(path)
        log.open(append=True)
        log.write({"i": 3})
        log.close()
    assert "removed a torn last record" in caplog.text
    kept = [2] if tail.startswith(b'{"i": 2}\n') else []
    assert [v["i"] for _, v in read_json_lines(path)] == [0, 1, *kept, 3]


def test_a_file_not_held_open_is_reopened_per_record(tmp_path):
    log = JsonLines(tmp_path / "log.jsonl", hold_open=False)
    log.open()
    log.write([1, "a"])
    log.write([2, "b"])
    assert log._fh is None, "nothing to close"
    assert (tmp_path / "log.jsonl").read_text() == '[1, "a"]\n[2, "b"]\n'


def test_records_that_are_not_strict_json_become_plain_data_or_name_the_field(tmp_path):
    log = JsonLines(tmp_path / "log.jsonl")
    log.open()
    log.write({"loss": float("nan"), "x": np.float64(0.5), "n": np.arange(2)})
    with pytest.raises(ResultError, match=r"log.jsonl record\['info'\]"):
        log.write({"info": object()})
    log.close()
    assert [v for _, v in read_json_lines(log.path)] == [{"loss": None, "x": 0.5, "n": [0, 1]}]


def test_jsonable_makes_any_value_strict_json(caplog):
    value = {"inf": math.inf, (1, 2): "tuple key", 3: np.int64(4), "odd": object}
    with caplog.at_level(logging.WARNING):
        out = json.loads(json.dumps(jsonable(value), allow_nan=False))
    assert out == {"inf": None, "[1, 2]": "tuple key", "3": 4, "odd": repr(object)}
    assert "repr" in caplog.text


def test_csv_header_once_columns_fixed_missing_and_none_empty(tmp_path):
    path = tmp_path / "rows.csv"
    columns = write_csv(path, [{"a": 1, "b": None}, {"a": 2, "c": "x"}])
    assert columns == ["a", "b", "c"]
    write_csv(path, [{"a": 3, "d": "left out"}], columns=columns, append=True)
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows == [{"a": "1", "b": "", "c": ""}, {"a": "2", "b": "", "c": "x"},
                    {"a": "3", "b": "", "c": ""}]
