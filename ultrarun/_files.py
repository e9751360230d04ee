"""The file formats, one writer each: JSON lines (the master's journal, the result logs) and CSV
(``Result.to_csv``, the evaluators' files). See docs/results.md and docs/failures.md.
"""
from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import os
import re
import threading
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from .errors import ResultError
from .job import to_plain

logger = logging.getLogger(__name__)


class JsonLines:
    """An append-only file of JSON lines, one record per line; thread-safe.

    :meth:`open` truncates the file or, with ``append``, first cuts a torn last line (a crash
    left it), so the next record starts on a line of its own. Until :meth:`close` (which fsyncs;
    later records are dropped) :meth:`write` appends. ``hold_open=False`` reopens the file for
    every record, as HpBandSter's logger does, so there is nothing to close.
    """

    def __init__(self, path: str | os.PathLike[str], fsync_every: int = 1, hold_open: bool = True):
        self.path = Path(path)
        self.fsync_every = max(1, int(fsync_every))
        self.hold_open = hold_open
        self._fh: Any = None
        self._since_sync = 0
        self._lock = threading.Lock()

    def open(self, append: bool = False) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if append:
            self._repair()
        fh = open(self.path, "a" if append else "w", encoding="utf-8")
        with self._lock:
            self._fh = fh if self.hold_open else fh.close()  # held, or None: reopened per record

    def write(self, record: Any, sync: bool = False) -> None:
        """Append ``record`` (strict JSON if it can be, else ``to_plain``'s) and flush; fsync if
        ``sync`` and ``fsync_every`` records were written since the last fsync."""
        try:
            line = json.dumps(record, allow_nan=False) + "\n"
        except (TypeError, ValueError):
            line = json.dumps(to_plain(record, f"{self.path.name} record")) + "\n"
        with self._lock:
            fh = self._fh if self.hold_open else open(self.path, "a", encoding="utf-8")
            if fh is None:
                return  # closed, or never opened
            try:
                fh.write(line)
                fh.flush()
                self._since_sync += 1
                if sync and self._since_sync >= self.fsync_every:
                    os.fsync(fh.fileno())
                    self._since_sync = 0
            finally:
                if not self.hold_open:
                    fh.close()

    def close(self) -> None:
        with self._lock:
            fh, self._fh = self._fh, None
            if fh is not None:
                fh.flush()
                os.fsync(fh.fileno())
                fh.close()

    def _repair(self) -> None:
        """Cut a torn last record (the writer died while writing it)."""
        data = self.path.read_bytes() if self.path.exists() else b""
        end = len(data)
        while end:
            start = data.rfind(b"\n", 0, end - 1) + 1
            with contextlib.suppress(ValueError):
                if data.endswith(b"\n", start, end):
                    json.loads(data[start:end])
                    break
            end = start
        if end < len(data):
            os.truncate(self.path, end)
            logger.warning("%s: removed a torn last record (%d bytes) that a crash left",
                           self.path, len(data) - end)


def read_json_lines(path: str | os.PathLike[str], chunk: int = 1000) -> Iterator[tuple[int, Any]]:
    """``(line_number, value)`` for every valid JSON line; a missing file has no lines. Lines are
    parsed ``chunk`` at a time, in one call (a chunk with an unreadable line, one at a time). A
    line that is not JSON (torn by a crash, not UTF-8, too deep, an int past the decimal
    limit) is skipped with a warning."""
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8", errors="surrogateescape") as fh:
        lines = [(line_no, text) for line_no, text in enumerate(fh, 1) if text.strip()]
    for start in range(0, len(lines), chunk):
        some = lines[start:start + chunk]
        with contextlib.suppress(ValueError, RecursionError):
            joined = "[" + ",".join(text for _, text in some) + "]"
            values = json.loads(joined) if _utf8(joined) else ()
            if len(values) == len(some):
                yield from zip((line_no for line_no, _ in some), values)
                continue
        for line_no, text in some:
            try:
                if not _utf8(text):
                    raise ValueError("not UTF-8")
                yield line_no, json.loads(text)
            except (ValueError, RecursionError) as exc:  # JSONDecodeError is a ValueError
                logger.warning("%s:%d: skipping unreadable line (%s); a crash or a line being "
                               "written leaves one", path, line_no, exc)


_ESCAPED = re.compile("[\udc80-\udcff]")  # bytes that were not UTF-8 (surrogateescape)


def _utf8(text: str) -> bool:
    """Whether ``text`` (read with surrogateescape) was valid UTF-8; our writers write ASCII."""
    return text.isascii() or _ESCAPED.search(text) is None


def jsonable(obj: Any) -> Any:
    """Plain, strict-JSON data: via ``to_plain``, non-finite floats to None, unknowns to repr."""
    if isinstance(obj, Mapping):
        items = [(jsonable(k), jsonable(v)) for k, v in obj.items()]
        return {k if isinstance(k, (str, int, float, bool, type(None))) else str(k): v for k, v in items}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [jsonable(v) for v in obj]
    try:
        plain = to_plain(obj)
    except ResultError as exc:
        logger.warning("%s; writing its repr instead", exc)
        return repr(obj)
    if isinstance(plain, (list, tuple, dict)):
        return jsonable(plain)
    if isinstance(plain, float) and not math.isfinite(plain):
        return None
    return plain


def dumps(value: Any) -> str:
    """``value`` as strict JSON text (see :func:`jsonable`)."""
    return json.dumps(jsonable(value), allow_nan=False)


def write_csv(path: str | os.PathLike[str], rows: Sequence[Mapping[str, Any]],
              columns: Sequence[str] | None = None, append: bool = False) -> list[str]:
    """Write ``rows`` (dicts; a header first unless appending), close the file and return the
    columns: ``columns``, or every key in order of appearance. Other keys are left out, missing
    ones and None are empty cells."""
    if columns is None:
        columns = list(dict.fromkeys(key for row in rows for key in row))
    with open(path, "a" if append else "w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(columns), extrasaction="ignore")
        if not append:
            writer.writeheader()
        writer.writerows(rows)
    return list(columns)
