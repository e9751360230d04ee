"""The file formats, one writer each: JSON lines (the master's journal, the result logs) and CSV
(``Result.to_csv``, the evaluators' files). See docs/results.md and docs/failures.md.
"""
from __future__ import annotations

import contextlib
import csv
import errno
import json
import logging
import math
import os
import re
import secrets
import threading
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator, Mapping, Sequence

from .errors import ResultError, UnsafeFileError
from .job import to_plain

logger = logging.getLogger(__name__)

# Files in a shared directory are hostile until checked (docs/security.md, "Shared directories"):
# never follow a link planted where our file should be, never write through one.
_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC


def open_nofollow(path: str | os.PathLike[str], flags: int, mode: int = 0o666) -> int:
    """``os.open`` that refuses a symbolic link as the last part of ``path`` with a clear
    ``UnsafeFileError`` (someone may have planted it)."""
    try:
        return os.open(path, flags | _NOFOLLOW, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeFileError(f"{path} is a symbolic link: refusing to follow it (a link "
                                     "in a shared directory can point anywhere); remove it") \
                from None
        raise


def write_atomic(path: str | os.PathLike[str], write: Callable[[BinaryIO], Any],
                 mode: int = 0o666) -> Path:
    """Replace ``path`` with what ``write(file)`` writes, atomically: a reader sees the old file
    or the whole new one. The temporary file beside it has an unpredictable name and is created
    exclusively, never through a link (O_EXCL|O_NOFOLLOW); the rename replaces whatever entry
    ``path`` is (a planted link included) without following it."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = open_nofollow(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return path


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
        fh = self._open(append)
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
            fh = self._fh if self.hold_open else self._open(append=True)
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

    def _open(self, append: bool) -> Any:
        """The file for appending (or truncated), never through a link."""
        flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC)
        return open(open_nofollow(self.path, flags), "a" if append else "w", encoding="utf-8")

    def _repair(self) -> None:
        """Cut a torn last record (the writer died while writing it)."""
        try:
            with open(open_nofollow(self.path, os.O_RDONLY), "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            data = b""
        end = len(data)
        while end:
            start = data.rfind(b"\n", 0, end - 1) + 1
            with contextlib.suppress(ValueError):
                if data.endswith(b"\n", start, end):
                    json.loads(data[start:end])
                    break
            end = start
        if end < len(data):
            with open(open_nofollow(self.path, os.O_WRONLY), "wb") as fh:
                fh.truncate(end)
            logger.warning("%s: removed a torn last record (%d bytes) that a crash left",
                           self.path, len(data) - end)


def read_json_lines(path: str | os.PathLike[str], chunk: int = 1000,
                    follow: bool = True) -> Iterator[tuple[int, Any]]:
    """``(line_number, value)`` for every valid JSON line; a missing file has no lines. Lines are
    parsed ``chunk`` at a time, in one call (a chunk with an unreadable line, one at a time). A
    line that is not JSON (torn by a crash, not UTF-8, too deep, an int past the decimal
    limit) is skipped with a warning. ``follow=False`` refuses a symbolic link (the journal:
    see ``open_nofollow``)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC) if follow else \
            open_nofollow(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    with open(fd, encoding="utf-8", errors="surrogateescape") as fh:
        lines = [(line_no, text) for line_no, text in enumerate(fh, 1) if text.strip()]
    yield from parse_json_lines(lines, path, chunk)


def parse_json_lines(lines: Sequence[tuple[int, str]], path: Any = "<lines>", chunk: int = 1000
                     ) -> Iterator[tuple[int, Any]]:
    """``(line_number, value)`` for every valid one of ``(line_number, text)`` (as
    :func:`read_json_lines`, which reads a whole file; a follower of a growing file gives only
    its new lines); an unreadable line is skipped with a warning that names ``path``."""
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
