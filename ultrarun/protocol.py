"""The messages between the dispatcher and its workers, each a small typed record with
``to_wire()`` (plain data, what travels) and ``from_wire(raw)`` (checks what arrived; raises
:class:`~ultrarun.errors.JobError` or ``ValueError`` naming the bad field). The rules behind
them are in docs/architecture.md ("The pool model and the worker's word").

The calls, and what each carries (every value plain data; marshal between parties with the
run's secret, see :mod:`ultrarun.transport`):

Worker -> dispatcher
    ``sync(name, uri, report, results) -> SyncAnswer``
        ``name`` and ``uri`` the worker's, ``report`` a :class:`Report` of what it holds from
        this dispatcher, ``results`` a list of :class:`ResultMessage`. A hello is a sync
        without results, a heartbeat an empty one.

Dispatcher -> worker
    ``start_computation(job)`` (oneway)
        one :class:`JobMessage`; the same job may arrive again (until the worker's report
        acknowledges its ``seq``), and a copy is ignored.
    ``cancel(dispatcher, keys)`` (oneway)
        ``[token, attempt]`` pairs of jobs held that are not the worker's here any more.
    ``ping(dispatcher) -> {..., "report": Report}``
        the worker's status (``ultrarun status``) and its :class:`Report`.
    ``shutdown()`` (oneway)

A job is known on both sides by ``(token, attempt)`` (and on the worker by its dispatcher's
URI too); a result names the job it answers, so a stale answer is never taken for another's.
Whatever a failed run says besides its message travels as data (``ResultMessage.info``), never
inside the exception's text.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .errors import JobError, ResultError
from .job import JobStatus, _short, validate_result

#: a job on the wire: ``(token, attempt)``
Key = tuple[int, int]


def key(pair: Any, what: str = "job key") -> Key:
    """A job's ``(token, attempt)`` from plain data; ``ValueError`` if it is not one."""
    if (not isinstance(pair, (list, tuple)) or len(pair) != 2
            or not all(type(v) is int for v in pair)):
        raise ValueError(f"{what} must be a pair of ints (token, attempt), got {pair!r}")
    return pair[0], pair[1]


_JOB_FIELDS = (("token", int), ("attempt", int), ("seq", int), ("kwargs", dict),
               ("dispatcher", str))


@dataclass(frozen=True, eq=False)
class JobMessage:
    """A job handed to a worker: ``seq`` grows by one per job for that worker; ``dispatcher``
    is where it reports to."""

    token: int
    attempt: int
    id: Any
    kwargs: dict
    dispatcher: str
    seq: int

    @property
    def key(self) -> tuple[str, int, int]:
        """How the worker knows it: ``(dispatcher, token, attempt)``."""
        return self.dispatcher, self.token, self.attempt

    def to_wire(self) -> dict:
        return {"token": self.token, "attempt": self.attempt, "id": self.id,
                "kwargs": self.kwargs, "dispatcher": self.dispatcher, "seq": self.seq}

    @classmethod
    def from_wire(cls, raw: Any) -> "JobMessage":
        """Check a job as a worker receives it; :class:`JobError` names the bad field."""
        if not isinstance(raw, dict):
            raise JobError(f"a job must be a dict, got {type(raw).__name__}")
        for name, kind in _JOB_FIELDS:
            value = raw.get(name)
            if type(value) is not kind:
                raise JobError(f"job field {name!r} must be {kind.__name__}, got {_short(value)}")
        if raw["attempt"] < 1 or raw["seq"] < 1 or not raw["dispatcher"]:
            raise JobError(f"job fields out of range: attempt {raw['attempt']}, seq "
                           f"{raw['seq']}, dispatcher {_short(raw['dispatcher'])}")
        if "id" not in raw:
            raise JobError("job has no 'id'")
        if not all(type(k) is str for k in raw["kwargs"]):
            raise JobError("job kwargs must have str keys")
        return cls(raw["token"], raw["attempt"], raw["id"], raw["kwargs"], raw["dispatcher"],
                   raw["seq"])


@dataclass(frozen=True)
class ResultMessage:
    """A run's end, as the worker reports it: its ``status`` (final), the ``result`` of a
    success (``{'loss': ..., 'info': ...}``), the ``exception`` text and ``info`` (plain data)
    of a failure, and the seconds the compute took (``duration``, timed by the worker)."""

    token: int
    attempt: int
    status: JobStatus
    result: dict | None = None
    exception: str | None = None
    duration: float | None = None
    info: dict | None = None

    def to_wire(self) -> dict:
        return {"token": self.token, "attempt": self.attempt, "status": self.status.value,
                "result": self.result, "exception": self.exception,
                "duration": self.duration, "info": self.info}

    @classmethod
    def from_wire(cls, raw: Any) -> "ResultMessage":
        """Check a result as the dispatcher receives it. An unknown or non-final status, or a
        SUCCESS whose result does not pass :func:`~ultrarun.job.validate_result`, becomes
        CRASHED; :class:`JobError` if it cannot even be attributed to a job."""
        if not isinstance(raw, dict):
            raise JobError(f"a result must be a dict, got {type(raw).__name__}")
        token, attempt = raw.get("token"), raw.get("attempt")
        if type(token) is not int or type(attempt) is not int:
            raise JobError(f"a result needs int token and attempt, got {_short(token)}, "
                           f"{_short(attempt)}")
        exception = raw.get("exception")
        if exception is not None and type(exception) is not str:
            exception = _short(exception, 10_000)
        try:
            status = JobStatus(raw.get("status"))
        except ValueError:
            status = JobStatus.CRASHED
            exception = f"the worker sent an unknown status {_short(raw.get('status'))}"
        if not status.is_final:
            status, exception = JobStatus.CRASHED, f"the worker sent the status {status.name}"
        result = None
        if status is JobStatus.SUCCESS:
            try:
                result = validate_result(raw.get("result"))
            except ResultError as exc:
                status, exception = JobStatus.CRASHED, f"ResultError: {exc}"
        duration = raw.get("duration")
        if type(duration) not in (int, float) or not 0 <= duration < math.inf:
            duration = None
        info = raw.get("info")
        info = info if type(info) is dict and status is not JobStatus.SUCCESS else None
        return cls(token, attempt, status, result, exception, duration, info)


@dataclass(frozen=True)
class Report:
    """A worker's word about the jobs it has from one dispatcher (a ping's answer, and sent
    with each of its calls): ``acked`` (every ``seq`` up to it arrived), ``held`` (jobs
    received and not delivered), ``busy`` (computing anything at all) and ``running`` (the job
    of this dispatcher it computes, if any) and ``leaving`` (draining: it takes no new job)."""

    acked: int = 0
    held: frozenset = frozenset()  # of Key
    busy: bool = False
    running: Key | None = None
    leaving: bool = False  # it takes no new job; it leaves once it runs nothing of ours

    def to_wire(self) -> dict:
        return {"acked": self.acked, "held": [list(k) for k in self.held], "busy": self.busy,
                "running": None if self.running is None else list(self.running),
                "leaving": self.leaving}

    @classmethod
    def from_wire(cls, raw: Any) -> "Report":
        """From plain data; raises ``ValueError`` naming what is malformed."""
        if not isinstance(raw, dict):
            raise ValueError(f"a report must be a dict, got {type(raw).__name__}")
        acked, held, running = raw.get("acked", 0), raw.get("held", ()), raw.get("running")
        if type(acked) is not int or acked < 0:
            raise ValueError(f"report['acked'] must be an int >= 0, got {acked!r}")
        if not isinstance(held, (list, tuple)):
            raise ValueError(f"report['held'] must be a list, got {type(held).__name__}")
        return cls(acked, frozenset(key(pair, "report['held'] item") for pair in held),
                   bool(raw.get("busy")),
                   None if running is None else key(running, "report['running']"),
                   bool(raw.get("leaving")))


@dataclass(frozen=True)
class SyncAnswer:
    """The dispatcher's answer to a worker's ``sync``: the jobs it carries (every job of the
    worker not acknowledged yet, as wire data: each is checked on its own when it arrives) and
    the keys of jobs to drop there."""

    jobs: tuple = ()
    cancel: tuple = ()  # of Key

    def to_wire(self) -> dict:
        return {"jobs": list(self.jobs), "cancel": [list(k) for k in self.cancel]}

    @classmethod
    def from_wire(cls, raw: Any) -> "SyncAnswer":
        """Lenient: what is not a list of the right things is taken as nothing (the next
        report repairs whatever a malformed answer lost)."""
        if not isinstance(raw, dict):
            return cls()
        jobs, cancel = raw.get("jobs"), raw.get("cancel")
        return cls(tuple(jobs) if isinstance(jobs, list) else (),
                   tuple(cancel) if isinstance(cancel, list) else ())


__all__ = ["JobMessage", "ResultMessage", "Report", "SyncAnswer", "Key", "key"]
