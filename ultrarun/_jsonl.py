"""JSON lines: the one writer and reader behind the master's journal and the result logs.

A record is one line, written with one call and flushed at once; ``fsync_every`` says how many
records may pass between fsyncs. A reader skips a line that is not valid JSON (a crash cut it,
or it is being written) with a warning; a writer that appends first cuts such a torn last line,
so its first record starts on a line of its own. See docs/results.md and docs/failures.md.
"""
from __future__ import annotations

import json
import logging
import math
import os
import threading
from pathlib import Path
from typing import Any, Iterator, Mapping

from .errors import ResultError
from .job import to_plain

logger = logging.getLogger(__name__)


class JsonLines:
    """An append-only file of JSON lines; thread-safe.

    :meth:`open` truncates the file or, with ``append``, cuts a torn last line; then every
    :meth:`write` adds a record, until :meth:`close` (which fsyncs; later writes are dropped).
    :func:`read_json_lines` reads it back.
    ``hold_open=False`` reopens the file for every record, as HpBandSter's logger does, so
    there is nothing to close.
    """

    def __init__(self, path: str | os.PathLike[str], fsync_every: int = 1,
                 hold_open: bool = True) -> None:
        self.path = Path(path)
        self.fsync_every = max(1, int(fsync_every))
        self.hold_open = hold_open
        self._fh: Any = None  # the open file while hold_open
        self._writing = False
        self._since_sync = 0
        self._lock = threading.Lock()

    def open(self, append: bool = False) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if append:
            self._repair()
        fh = open(self.path, "a" if append else "w", encoding="utf-8")
        if not self.hold_open:
            fh.close()
        with self._lock:
            self._fh, self._writing = (fh if self.hold_open else None), True

    def write(self, record: Any, sync: bool = False) -> None:
        """Append ``record`` and flush; fsync too if ``sync`` and ``fsync_every`` records have
        been written since the last fsync. Strict JSON where possible, else ``to_plain``'s data
        (which names a field that cannot be written)."""
        try:
            line = json.dumps(record, allow_nan=False) + "\n"
        except (TypeError, ValueError):
            line = json.dumps(to_plain(record, f"{self.path.name} record")) + "\n"
        with self._lock:
            if not self._writing:
                return
            fh = self._fh or open(self.path, "a", encoding="utf-8")
            try:
                fh.write(line)
                fh.flush()
                self._since_sync += 1
                if sync and self._since_sync >= self.fsync_every:
                    os.fsync(fh.fileno())
                    self._since_sync = 0
            finally:
                if fh is not self._fh:
                    fh.close()

    def close(self) -> None:
        with self._lock:
            fh, self._fh, self._writing = self._fh, None, False
            if fh is not None:
                fh.flush()
                os.fsync(fh.fileno())
                fh.close()

    def _repair(self) -> None:
        """Cut a torn last record (the writer died while writing it)."""
        try:
            with open(self.path, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            return
        end = len(data)
        while end:
            start = data.rfind(b"\n", 0, end - 1) + 1
            line = data[start:end]
            try:
                if line.endswith(b"\n"):
                    json.loads(line)
                    break
            except ValueError:
                pass
            end = start
        if end < len(data):
            with open(self.path, "r+b") as fh:
                fh.truncate(end)
            logger.warning("%s: removed a torn last record (%d bytes) that a crash left",
                           self.path, len(data) - end)


def read_json_lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, Any]]:
    """``(line_number, value)`` for every valid JSON line; a missing file has no lines."""
    path = Path(path)
    if not path.exists():
        return
    with path.open(encoding="utf-8") as fh:
        for line_no, text in enumerate(fh, 1):
            if not text.strip():
                continue
            try:
                yield line_no, json.loads(text)
            except json.JSONDecodeError as exc:
                logger.warning("%s:%d: skipping unreadable line (%s); a crash or a line being "
                               "written leaves one", path, line_no, exc)


def jsonable(obj: Any) -> Any:
    """Plain, strict-JSON data: via ``to_plain``, non-finite floats to None, unknowns to repr."""
    if isinstance(obj, Mapping):
        return {_json_key(k): jsonable(v) for k, v in obj.items()}
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


def _json_key(key: Any) -> str | int | float | bool | None:
    plain = jsonable(key)
    return plain if plain is None or isinstance(plain, (str, int, float, bool)) else str(plain)


def dumps(value: Any) -> str:
    """``value`` as strict JSON text (see :func:`jsonable`)."""
    return json.dumps(jsonable(value), allow_nan=False)
