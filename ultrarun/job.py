"""Jobs, their lifecycle states, and the rules for what may travel between processes.

A job is one evaluation of a configuration at a budget. The dispatcher, the runners and the
master all speak in these objects, so one status enum serves every backend.
"""
from __future__ import annotations

import enum
import itertools
import json
import math
import numbers
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from .settings import settings
from .errors import JobError, ResultError


class JobStatus(enum.Enum):
    """Lifecycle of a job: QUEUED -> RUNNING -> one of the final states."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCESS = "SUCCESS"
    CRASHED = "CRASHED"  # compute raised, or returned junk (the user's failure: not retried)
    TIMEOUT = "TIMEOUT"  # hard time limit hit
    MEMOUT = "MEMOUT"  # hard memory limit hit
    LOST = "LOST"  # the worker vanished more than max_retries times (infrastructure failure)
    CANCELLED = "CANCELLED"  # never ran to the end because the run was stopped

    def __init__(self, value: str) -> None:
        #: not QUEUED or RUNNING; failed: final and not SUCCESS (attributes: read per result)
        self.is_final: bool = value not in ("QUEUED", "RUNNING")
        self.failed: bool = self.is_final and value != "SUCCESS"


#: SMAC3 calls the same enum StatusType.
StatusType = JobStatus

#: A configuration's id, ``(iteration, budget_index, running_index)`` as HpBandSter numbers them
#: (the masters' ids); a ``Job``, a ``Run`` or a ``Result`` takes any hashable id as well.
ConfigId = tuple[int, int, int]
#: A job's timestamps (``time.time()``), in order; an evaluator adds ``"gathered"``.
TIMESTAMP_KEYS = ("submitted", "started", "finished")

_tokens = itertools.count(1)


@dataclass(eq=False)
class Job:
    """One evaluation, as the dispatcher hands it to the ``new_result_callback``.

    Args:
        id (Any): The caller's identifier (a config id for the master).
        kwargs (dict[str, Any]): The compute's arguments (``config``, ``budget``, ...).
        token (int): Unique per dispatcher; with ``attempt`` it tells a current result from a
            stale one.
        attempt (int): 1, then 2, ... each time the job runs again (its worker was lost).
        status (JobStatus): Where the job is in its lifecycle.
        result (dict[str, Any] | None): ``{"loss": ..., "info": ...}`` of a successful job.
        exception (str | None): Why a failed job failed (the traceback of a crash).
        worker_name (str | None): The worker that ran it.
        timestamps (dict[str, float]): ``submitted``, ``started`` (handed to a worker, by the
            dispatcher's clock) and ``finished``.
        duration (float | None): Seconds the compute took, timed by the worker itself (None: it
            did not report it).
        info (dict | None): What the run said besides its loss, as data: a successful one's
            ``result['info']``, a failed one's ``error``, ``traceback``, ``attempts``, ...
    """

    id: Any
    kwargs: dict[str, Any]
    token: int = field(default_factory=lambda: next(_tokens))
    attempt: int = 1
    status: JobStatus = JobStatus.QUEUED
    result: dict[str, Any] | None = None
    exception: str | None = None
    worker_name: str | None = None
    #: ``TIMESTAMP_KEYS``: 'started' is when the job was handed to a worker (the dispatcher's clock)
    timestamps: dict[str, float] = field(default_factory=dict)
    #: seconds the compute took, timed by the worker itself (None: it did not report it)
    duration: float | None = None
    #: the run's data besides its loss (a failed run's too: its result is None)
    info: dict[str, Any] | None = None

    def time_it(self, which: str) -> None:
        """Record the time now.

        Args:
            which (str): One of ``TIMESTAMP_KEYS`` (``submitted``, ``started``, ``finished``), or an
                evaluator's ``gathered``.
        """
        self.timestamps[which] = time.time()

    @property
    def loss(self) -> float | None:
        return None if self.result is None else self.result.get("loss")

    def __repr__(self) -> str:
        return (f"Job(id={self.id!r}, status={self.status.name}, attempt={self.attempt}, "
                f"worker={self.worker_name!r}, loss={self.loss!r})")


def last_line(text: str | None) -> str:
    """The last non-empty line of a failure's text (a traceback's is the exception)."""
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "(no message)"


def failure_kind(status: JobStatus, text: str | None) -> str:
    """A failure's kind, for reporting the first of each: its status and, for a crash, the
    exception's type (``CRASHED ValueError``)."""
    name = last_line(text).split(":", 1)[0]
    return f"CRASHED {name}" if status is JobStatus.CRASHED and name.isidentifier() else status.name


class Incumbents:
    """The best successful result per budget: its loss, id and configuration. The one tracker
    the master (``incumbents``, ``incumbent_performances``), the dispatcher's status and
    :class:`~ultrarun.results.Result` read."""

    def __init__(self, losses: dict | None = None, configs: dict | None = None):
        self.losses: dict[Any, float] = dict(losses or {})  #: budget -> best loss
        self.configs: dict[Any, Any] = dict(configs or {})  #: budget -> its configuration
        self.ids: dict[Any, Any] = {}  #: budget -> its id

    def offer(self, budget: Any, loss: float | None, id: Any = None, config: Any = None) -> bool:
        """Take the result if it beats the budget's best (a tie keeps the first); True if so."""
        if loss is None or not loss < self.losses.get(budget, math.inf):
            return False
        self.losses[budget], self.ids[budget], self.configs[budget] = loss, id, config
        return True

    def offer_job(self, job: "Job") -> bool:
        if job.status is not JobStatus.SUCCESS or not job.result:
            return False
        budget = job.kwargs.get("budget")
        return self.offer(budget, job.result["loss"], job.id, job.kwargs.get("config"))

    def best(self) -> tuple[Any, float, Any] | None:
        """``(budget, loss, id)`` at the largest budget with a result (HpBandSter's incumbent
        rule), or None."""
        budgets = [b for b in self.losses if type(b) in (int, float)]
        if not budgets:
            return None
        budget = max(budgets)
        return budget, self.losses[budget], self.ids.get(budget)


_SCALARS = frozenset((str, bool, int, type(None)))

#: Where a value sits, for error messages only: a name, or (container's place, key). Built as a
#: tuple on the way down and formatted only when something cannot travel: a worker converts
#: every result between two jobs, and string formatting there is idle worker time.
_Where = Any


def _name(where: _Where) -> str:
    if isinstance(where, tuple):
        parent, key = where
        return f"{_name(parent)}[{_short(key, 200)}]"
    return where


def to_plain(obj: Any, where: str = "value") -> Any:
    """Return ``obj`` as plain Python data, which travels between processes unchanged.

    numpy scalars and arrays become Python numbers and lists, numpy strings become ``str``,
    mappings become dicts and NaN becomes None (the journal and results files are JSON, which
    has no NaN). Anything else raises :class:`ResultError` naming the offending field, so the
    message says what to fix (a value nested past the interpreter's recursion limit, or one
    that holds itself, included).
    """
    try:
        return _plain(obj, where)
    except RecursionError:
        raise ResultError(f"{where} is nested too deeply (or holds itself) to travel") from None


def _plain(obj: Any, where: _Where) -> Any:
    kind = type(obj)
    if kind in _SCALARS:  # exact types: numpy's str_ and float64 subclass str and float
        return obj
    if kind is float:
        return None if math.isnan(obj) else obj
    if kind is dict:  # the usual containers first: no isinstance on an abstract class
        return _plain_mapping(obj, where)
    if kind is list:
        return [_item(v, where, i) for i, v in enumerate(obj)]
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "biufUSO":
            raise ResultError(f"{_name(where)} is a numpy array of dtype {obj.dtype}, which "
                              "cannot travel")
        return _plain(obj.tolist(), where)
    if isinstance(obj, np.generic):
        return _plain(obj.item(), where)
    if isinstance(obj, Mapping):
        return _plain_mapping(obj, where)
    if isinstance(obj, (list, tuple)):
        items = [_item(v, where, i) for i, v in enumerate(obj)]
        return items if isinstance(obj, list) else tuple(items)
    if isinstance(obj, (set, frozenset)):
        return [_plain(v, f"{_name(where)} item") for v in obj]
    if isinstance(obj, str):
        return str(obj)
    if isinstance(obj, numbers.Integral):
        return int(obj)
    if isinstance(obj, numbers.Real):
        return _plain(float(obj), where)
    raise ResultError(f"{_name(where)} is of type {type(obj).__module__}."
                      f"{type(obj).__qualname__}, which cannot travel; use plain Python values "
                      "(numbers, str, lists, dicts)")


def _plain_mapping(obj: Mapping, where: _Where) -> dict:
    out = {}
    for key, value in obj.items():
        plain_key = (key if type(key) in _SCALARS else
                     _plain(key, f"{_name(where)} key {_short(key)}"))
        if isinstance(plain_key, (list, dict)):
            raise ResultError(f"{_name(where)} has an unhashable key {_short(key)}")
        out[plain_key] = _item(value, where, key)
    return out


def _item(value: Any, where: _Where, key: Any) -> Any:
    """``_plain`` of a container's item; plain items skip even the tuple naming their place."""
    kind = type(value)
    if kind in _SCALARS or (kind is float and value == value):
        return value
    return _plain(value, (where, key))


def validate_result(raw: Any) -> dict[str, Any]:
    """Check a compute's return value and return it as plain data: ``{'loss': float, 'info': ...}``
    (other keys of a returned dict are kept). Anything :func:`parse_result` takes with one cost
    is accepted, if the journal and the result logs can write it and read it back as it is
    (:func:`check_writable`). Raises :class:`ResultError` naming what is wrong. A dict with a
    float loss takes the shortest path: this runs between two jobs."""
    try:
        if type(raw) is dict and type(raw.get("loss")) is float and math.isfinite(raw["loss"]):
            plain = _plain_mapping(raw, "result")
            plain.setdefault("info", {})
            return check_writable(plain, "result")
        cost, info = parse_result(raw)
        if isinstance(cost, list):
            raise ResultError(f"compute returned {len(cost)} costs {_short(cost)}; a master "
                              "minimises one: return {'loss': ..., 'info': ...}")
        extra = _plain_mapping(raw, "result") if isinstance(raw, Mapping) else {}
    except RecursionError:
        raise ResultError("the result is nested too deeply (or holds itself) to travel") from None
    extra.pop("cost", None), extra.pop("objective", None)
    return check_writable({**extra, "loss": cost, "info": info}, "result")


#: How deep a result may nest: the journal and the result logs write it as one JSON line,
#: which a resumed master must read back well within the interpreter's recursion limit.
MAX_DEPTH = 100
_BIG_INT_BITS = 10_000  # smaller ints always have a decimal text; bigger ones are tried


def check_writable(plain: Any, where: str = "value") -> Any:
    """``plain`` (plain data, as :func:`to_plain` makes it) if JSON writes it and reads it back
    as it is, in at most ``MAX_DEPTH`` levels and the MAX_MESSAGE_SIZE setting's bytes: the
    journal and the result logs can then record it and a resumed master replays it unchanged.
    Tuples are accepted (JSON writes them as lists). Otherwise :class:`ResultError` names the
    first field that cannot be written: a non-string key, an infinite float, an int too large
    for a decimal text, nesting too deep.

    The JSON encoder (C) checks the leaves and a walk over the containers only (their keys and
    depth, a type set per container) the rest; only a value that fails is walked item by item,
    for the message. This runs between two jobs."""
    try:
        text = _STRICT.encode(plain)
        fine = _containers_fine(plain, 0)
    except (TypeError, ValueError, RecursionError):  # inf, a huge int, a tuple key, a cycle
        text, fine = "", False
    if not fine:
        _check_json(plain, where, 0)
        raise ResultError(f"{where} cannot be written as JSON")  # not reached: named above
    if len(text) > settings.MAX_MESSAGE_SIZE:
        raise ResultError(f"{where} takes {len(text)} bytes as JSON, more than the "
                          f"MAX_MESSAGE_SIZE setting ({settings.MAX_MESSAGE_SIZE}); return less "
                          "in 'info' (a path to a file, say)")
    return plain


_STRICT = json.JSONEncoder(allow_nan=False)
_LEAVES = frozenset((str, int, float, bool, type(None)))
_STR = frozenset((str,))


def _containers_fine(value: Any, depth: int) -> bool:
    """Whether every dict below ``value`` has str keys and nothing nests past ``MAX_DEPTH``."""
    kind = type(value)
    if kind is dict:
        if depth >= MAX_DEPTH or not set(map(type, value)) <= _STR:
            return False
        items: Any = value.values()
    elif kind is list or kind is tuple:
        if depth >= MAX_DEPTH:
            return False
        items = value
    else:
        return True
    if set(map(type, items)) <= _LEAVES:
        return True
    for item in items:
        if type(item) not in _LEAVES and not _containers_fine(item, depth + 1):
            return False
    return True


def _check_json(value: Any, where: _Where, depth: int) -> None:
    """Raise :class:`ResultError` at the first part of ``value`` JSON cannot write back as it is."""
    kind = type(value)
    if kind is dict or kind is list or kind is tuple:
        if depth >= MAX_DEPTH:
            raise ResultError(f"{_name(where)} is nested more than {MAX_DEPTH} levels deep; the "
                              "journal and the result logs take no deeper values")
        if kind is dict:
            for key, item in value.items():
                if type(key) is not str:
                    raise ResultError(
                        f"{_name(where)} has the key {_short(key)} ({type(key).__name__}); the "
                        "journal and the result logs are JSON, whose keys are strings: use "
                        "str keys")
                _check_json(item, (where, key), depth + 1)
        else:
            for i, item in enumerate(value):
                _check_json(item, (where, i), depth + 1)
    elif kind is float:
        if not math.isfinite(value):
            raise ResultError(f"{_name(where)} is {value}; JSON has no inf or nan: return a "
                              "finite number or None")
    elif kind is int:
        if value.bit_length() > _BIG_INT_BITS:
            try:
                str(value)
            except ValueError:
                raise ResultError(f"{_name(where)} is an int of {value.bit_length()} bits, too "
                                  "large for JSON's decimal text: return it as a str or a "
                                  "float") from None
    elif kind is not str and kind is not bool and value is not None:
        raise ResultError(f"{_name(where)} is of type {kind.__name__}, which JSON cannot write; "
                          "convert it with to_plain first")


def parse_result(raw: Any, objectives: Any = None) -> tuple[float | list[float], dict]:
    """What a compute or a target function returned, as ``(cost, info)``: the one parser.

    Accepted: a number; a list of numbers (several objectives); a dict with ``'loss'``,
    ``'cost'`` or ``'objective'`` and optionally ``'info'``; a dict of named objectives when
    ``objectives`` (their names) is given; any of those as ``(cost, info)``. The cost must be
    finite and ``info`` plain data that JSON writes back as it is (:func:`check_writable`);
    :class:`ResultError` says what is wrong otherwise.
    """
    info: Any = {}
    if isinstance(raw, tuple) and len(raw) == 2 and isinstance(raw[1], Mapping):
        raw, info = raw
    if isinstance(raw, Mapping):
        key = next((k for k in ("loss", "cost", "objective") if k in raw), None)
        if key is not None:
            extra = raw.get("info", {})
            if not isinstance(extra, Mapping):
                raise ResultError(f"result['info'] is {type(extra).__name__}; it must be a dict")
            cost, info = raw[key], {**extra, **info}
        elif objectives:
            missing = [name for name in objectives if name not in raw]
            if missing:
                raise ResultError(f"the result has no value for the objectives "
                                  f"{_short(missing)} (keys: {_keys(raw)})")
            cost = [raw[name] for name in objectives]
        else:
            raise ResultError(f"compute returned a dict without 'loss' (keys: "
                              f"{_keys(raw)}); expected a dict with 'loss' (a finite "
                              "number, minimised) and 'info' (plain data), or pass objectives="
                              "[...] to read named objectives")
    elif raw is None or isinstance(raw, (str, bytes, Mapping)) or not (
            isinstance(raw, (numbers.Real, np.number, list, tuple, np.ndarray))):
        raise ResultError(f"compute returned {type(raw).__name__} {_short(raw)}; expected a dict "
                          "with 'loss' (a finite number, minimised) and 'info' (plain data)")
    else:
        cost = raw
    cost = finite_cost(cost)
    if objectives is not None and isinstance(cost, list) and len(cost) != len(objectives):
        raise ResultError(f"the target returned {len(cost)} costs for {len(objectives)} "
                          f"objectives {_short(list(objectives))}")
    try:
        return cost, check_writable(_plain_mapping(info, "result['info']"), "result['info']")
    except RecursionError:
        raise ResultError("result['info'] is nested too deeply (or holds itself) to travel") \
            from None


def finite_cost(cost: Any, where: str = "result['loss']") -> float | list[float]:
    """``cost`` as a float or a list of floats; :class:`ResultError` if it is not finite."""
    if isinstance(cost, (list, tuple, np.ndarray)) and len(cost) > 0:
        try:
            items = np.asarray(cost, dtype=object).ravel()
        except (ValueError, RecursionError):  # ragged or deep: not a list of costs
            raise ResultError(f"{where} is {_short(cost)}; it must be a finite number or a "
                              "flat list of them") from None
        return [_finite(item, where) for item in items]
    return _finite(cost, where)


def _finite(cost: Any, where: str) -> float:
    if isinstance(cost, (bool, np.bool_)):
        raise ResultError(f"{where} is bool {cost!r}; it must be a number")
    if isinstance(cost, numbers.Real):  # numpy's floats and ints too; not its complex
        try:
            value = float(cost)
        except (OverflowError, TypeError, ValueError):  # an int past the float range, a complex
            raise ResultError(f"{where} is {_short(cost)}; it must be a finite float") from None
        if not math.isfinite(value):
            raise ResultError(f"{where} is {value}; it must be a finite number")
        return value
    raise ResultError(f"{where} is {type(cost).__name__} {_short(cost)}; it must be a number "
                      "(a finite number, or a non-empty list of them)")


def _keys(mapping: Mapping) -> str:
    return _short(sorted(_short(key, 40) for key in mapping), 200)


def _short(value: Any, limit: int = 80) -> str:
    try:
        text = repr(value)
    except ValueError:  # an int too large for a decimal text
        text = f"<{type(value).__name__} too large to show>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


__all__ = ["Job", "JobStatus", "StatusType", "ConfigId", "TIMESTAMP_KEYS", "Incumbents", "to_plain",
           "validate_result", "check_writable", "parse_result", "finite_cost", "failure_kind",
           "last_line"]
