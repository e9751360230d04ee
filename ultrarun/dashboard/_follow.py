"""A run's result directory, followed as it grows: the runs in memory, read a few new lines at a
time (docs/dashboard.md). Pure bookkeeping: no threads; :meth:`RunLog.update` is called by
whoever wants the newest state (the server, on a poll).
"""
from __future__ import annotations

import copy
import errno
import logging
import math
import os
import stat
from collections import Counter
from pathlib import Path
from typing import Any

from .._files import parse_json_lines
from ..job import TIMESTAMP_KEYS, ConfigId, Incumbents, JobStatus
from ..results import CONFIGS_FILE, RESULTS_FILE, STATUSES_FILE, Run, infer_status
from ..results._logs import _config_id

logger = logging.getLogger(__name__)

JOURNAL_GLOB = "ultrarun-*.journal.jsonl"
#: At most this many bytes are read from one file per update (a poll stays short; a large log
#: is read over a few polls, the page saying how far it is).
READ_CHUNK = 64 * 1024 * 1024


def _checked_id(raw: Any) -> ConfigId:
    """A config id as the loaders make it (a JSON list becomes a tuple); TypeError if the line
    holds something that cannot be one (a dict, a list of lists)."""
    config_id = _config_id(raw)
    hash(config_id)
    return config_id


class Tail:
    """The complete lines appended to one file since the last :meth:`read`.

    The file is opened without following a symbolic link and must be a regular file (a shared
    directory is hostile until checked); one that shrank or was replaced is read again from the
    start, and :meth:`read` says so.
    """

    def __init__(self, path: Path):
        self.path = path
        self.offset = 0
        self.line_no = 0
        self._identity: tuple[int, int] | None = None

    def read(self) -> tuple[bool, list[tuple[int, Any]]]:
        """``(restarted, [(line_number, value), ...])``: the new complete lines' JSON values."""
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | os.O_NONBLOCK)
        except FileNotFoundError:
            return False, []
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                logger.warning("%s is a symbolic link: not read", self.path)
                return False, []
            raise
        with os.fdopen(fd, "rb") as fh:
            info = os.fstat(fh.fileno())
            if not stat.S_ISREG(info.st_mode):
                logger.warning("%s is not a regular file: not read", self.path)
                return False, []
            identity = (info.st_dev, info.st_ino)
            restarted = self._identity is not None and (identity != self._identity
                                                        or info.st_size < self.offset)
            if restarted:
                logger.info("%s was replaced or truncated: reading it again", self.path)
                self.offset = self.line_no = 0
            self._identity = identity
            if info.st_size <= self.offset:
                return restarted, []
            fh.seek(self.offset)
            data = fh.read(min(info.st_size - self.offset, READ_CHUNK))
        end = data.rfind(b"\n") + 1  # a line still being written waits for its newline
        if not end:
            return restarted, []
        self.offset += end
        lines = []
        for text in data[:end].decode("utf-8", errors="replace").split("\n")[:-1]:
            self.line_no += 1
            if text.strip():
                lines.append((self.line_no, text))
        return restarted, list(parse_json_lines(lines, self.path))


class RunLog:
    """The runs of one result directory: HpBandSter-format logs (``configs.json``,
    ``results.json`` and ultrarun's ``statuses.json``) or, where there are none, the master's
    journal. Read with the loaders' rules (docs/results.md): a line that is not a record is
    skipped with a warning; a run's status is its logged one, else inferred from its loss.

    ``runs`` holds every logged run in the order logged (a repeated run of a configuration on a
    budget is shown as logged, not replaced); ``version`` grows with every change.
    """

    def __init__(self, directory: str | os.PathLike[str], run_id: str | None = None):
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise FileNotFoundError(f"{self.directory} is not a directory: give the run's result "
                                    "directory (the one holding configs.json and results.json)")
        self.run_id = run_id
        self.source: str | None = None  # "logs" or the journal's file name, once there is one
        self.header: dict[str, Any] = {}  # the journal's header, where there is one
        self._tails: dict[str, Tail] = {}
        self._journal: Path | None = None
        self.version = 0
        self._reset()

    def _reset(self) -> None:
        self.configs: dict[ConfigId, tuple[dict, Any]] = {}
        self.runs: list[Run] = []
        self._by_key: dict[tuple[Any, float], int] = {}
        self._statuses: dict[tuple[Any, float], JobStatus] = {}
        self.incumbents = Incumbents()
        self.counts: Counter[JobStatus] = Counter()  # runs by status (a poll reads it)
        self.last_finished: float | None = None
        self.budgets_seen: set[float] = set()
        self.t0: float | None = None  # the first submission: time 0 of the run
        self.worker: list[str | None] = []  # the worker of each run, where the log says
        self.hover: dict[int, str] = {}  # id(run) -> its hover text (the views' cache)
        self.version += 1

    # ----------------------------------------------------------------------------- reading
    def update(self) -> bool:
        """Read what was appended since the last call; True if anything changed."""
        before = self.version
        if self.source is None:
            self._find_source()
        if self.source == "logs":
            self._read_logs()
        elif self.source is not None:
            self._read_journal()
        return self.version != before

    def _find_source(self) -> None:
        if (self.directory / CONFIGS_FILE).exists() or (self.directory / RESULTS_FILE).exists():
            self.source = "logs"
            self._tails = {name: Tail(self.directory / name)
                           for name in (CONFIGS_FILE, RESULTS_FILE, STATUSES_FILE)}
        journal = self._find_journal()
        if journal is not None:
            self._journal = journal
            self._read_header(journal)
            if self.source is None:
                self.source = journal.name
                self._tails = {journal.name: Tail(journal)}

    def _find_journal(self) -> Path | None:
        if self.run_id is not None:
            candidates = [self.directory / f"ultrarun-{self.run_id}.journal.jsonl"]
            candidates = [p for p in candidates if p.exists()]
        else:
            candidates = sorted(self.directory.glob(JOURNAL_GLOB))
        if len(candidates) > 1:
            logger.warning("%s holds the journals of %d runs (%s): give --run-id to pick one",
                           self.directory, len(candidates), ", ".join(p.name for p in candidates))
            return None
        return candidates[0] if candidates else None

    def _read_header(self, journal: Path) -> None:
        try:  # the header is the first line: read only that
            fd = os.open(journal, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | os.O_NONBLOCK)
            with os.fdopen(fd, "rb") as fh:
                first = fh.readline(1 << 20) if stat.S_ISREG(os.fstat(fd).st_mode) else b""
        except OSError:
            return
        for _, record in parse_json_lines([(1, first.decode("utf-8", "replace"))], journal):
            if isinstance(record, dict) and record.get("t") == "header":
                self.header = record
                self.version += 1

    def _read_logs(self) -> None:
        restarted = [self._tails[name].read() for name in (CONFIGS_FILE, RESULTS_FILE, STATUSES_FILE)]
        if any(again for again, _ in restarted):  # the run started over: so does the picture
            self._reset()
            for tail in self._tails.values():
                tail.offset = tail.line_no = 0
            restarted = [self._tails[name].read() for name in (CONFIGS_FILE, RESULTS_FILE, STATUSES_FILE)]
        (_, configs), (_, results), (_, statuses) = restarted
        for line_no, line in configs:
            try:
                if not isinstance(line, list) or len(line) not in (2, 3) or not isinstance(line[1], dict):
                    raise TypeError
                self.configs[_checked_id(line[0])] = (line[1], line[2] if len(line) == 3 else {})
            except TypeError:
                self._skip(CONFIGS_FILE, line_no, "expected [config_id, config, config_info]")
                continue
            self.version += 1
        for line_no, line in results:
            if not isinstance(line, list) or len(line) < 5:
                self._skip(RESULTS_FILE, line_no, "expected 5 elements")
                continue
            config_id, budget, stamps, result, exception = line[:5]
            loss = result.get("loss") if isinstance(result, dict) else None
            try:
                config_id = _checked_id(config_id)
            except TypeError:
                self._skip(RESULTS_FILE, line_no, "not a config id")
                continue
            self._add(config_id, budget, stamps, loss, exception, None, None)
        for line_no, line in statuses:
            try:
                key = (_checked_id(line[0]), float(line[1]))
                extra = line[2]
                self._set_status(key, JobStatus(extra["status"]), extra.get("worker"))
            except (IndexError, KeyError, TypeError, ValueError):
                self._skip(STATUSES_FILE, line_no, "not a status line")

    def _read_journal(self) -> None:
        tail = next(iter(self._tails.values()))
        restarted, records = tail.read()
        if restarted:
            self._reset()
        for line_no, record in records:
            if not isinstance(record, dict):
                continue
            kind = record.get("t")
            try:
                if kind == "config":
                    self.configs[_checked_id(record["id"])] = (dict(record["config"]), record.get("info", {}))
                    self.version += 1
                elif kind == "result":
                    result = record.get("result")
                    loss = result.get("loss") if isinstance(result, dict) else None
                    status = record.get("status")
                    self._add(_checked_id(record["id"]), record["budget"], record.get("timestamps"),
                              loss, record.get("exception"),
                              JobStatus(status) if status else None, record.get("worker"))
                elif kind == "header":
                    self.header = record
            except (KeyError, TypeError, ValueError):
                self._skip(tail.path.name, line_no, "not a journal record")

    def _skip(self, name: str, line_no: int, why: str) -> None:
        logger.warning("%s:%d: %s, skipped", self.directory / name, line_no, why)

    def _add(self, config_id: Any, budget: Any, stamps: Any, loss: Any, exception: Any,
             status: JobStatus | None, worker: Any) -> None:
        try:
            budget = float(budget)
            stamps = {k: float(stamps[k]) for k in TIMESTAMP_KEYS
                      if isinstance(stamps, dict) and stamps.get(k) is not None}
            loss = None if loss is None else float(loss)
        except (TypeError, ValueError):
            logger.warning("%s: a result of %r with a non-number budget, loss or time stamp, "
                           "skipped", self.directory, config_id)
            return
        if loss is not None and math.isnan(loss):
            loss = None
        if "finished" not in stamps:
            logger.warning("%s: a result of %r without a finish time, skipped", self.directory,
                           config_id)
            return
        key = (config_id, budget)
        if status is None:
            status = self._statuses.get(key) or infer_status({"loss": loss})
        if status is JobStatus.SUCCESS and loss is None:
            status = JobStatus.CRASHED
        run = Run(config_id, budget, loss, None, stamps,
                  None if exception is None else str(exception), status)
        self._by_key[key] = len(self.runs)
        self.runs.append(run)
        self.worker.append(None if worker is None else str(worker))
        first = stamps.get("submitted", stamps.get("started", stamps["finished"]))
        self.t0 = first if self.t0 is None else min(self.t0, first)
        self.counts[status] += 1
        self.budgets_seen.add(budget)
        if self.last_finished is None or stamps["finished"] > self.last_finished:
            self.last_finished = stamps["finished"]
        if status is JobStatus.SUCCESS:
            self.incumbents.offer(budget, loss, config_id)
        self.version += 1

    def _set_status(self, key: tuple[Any, float], status: JobStatus, worker: Any) -> None:
        self._statuses[key] = status
        index = self._by_key.get(key)
        if index is None:
            return  # its results line comes in a later read
        run = self.runs[index]
        self.hover.pop(id(run), None)
        if worker is not None:
            self.worker[index] = str(worker)
        if run.status is not status and not (status is JobStatus.SUCCESS and run.loss is None):
            self.counts[run.status] -= 1
            self.counts[status] += 1
            run.status = status
        self.version += 1

    # ----------------------------------------------------------------------------- reading off
    def snapshot(self) -> "RunLog":
        """A view of the runs so far that later updates leave alone (the runs themselves are
        shared), for making figures outside the caller's lock."""
        view = copy.copy(self)
        view.runs, view.worker = list(self.runs), list(self.worker)
        view.header, view.budgets_seen = dict(self.header), set(self.budgets_seen)
        return view

    @property
    def budgets(self) -> list[float]:
        """The run's budgets: the journal's schedule where known, plus every budget logged."""
        planned = [float(b) for b in self.header.get("budgets") or []]
        return sorted(set(planned) | self.budgets_seen)

    @property
    def max_budget(self) -> float | None:
        budgets = self.budgets
        return budgets[-1] if budgets else None

    def config(self, config_id: Any) -> dict:
        return self.configs.get(config_id, ({}, {}))[0]
