"""The dispatcher's picture of its workers and jobs, as one pure model: no threads, no I/O.

Every event (a job submitted, a worker's call, a ping's answer, a missed ping) is one method
call; what must be sent in consequence comes back as return values, and time comes from an
injected clock. Jobs move through the one lifecycle (:mod:`ultrarun.lifecycle`). The rules (delivery by
sequence number, the worker's word wins, retries, durations) are stated once in
docs/architecture.md, "The pool model and the worker's word".
"""
from __future__ import annotations

import collections
import heapq
import itertools
import math
import time
from dataclasses import dataclass, field
from typing import Any, Iterable

from .errors import ConfigurationError, JobError
from .job import Job, JobStatus
from .lifecycle import Durations, Lifecycle, RetryPolicy
from .protocol import JobMessage, Report, ResultMessage

_MISSED_PINGS = 2  # pings a silent worker may miss in a row before it is lost
_MAX_RESENDS = 5  # a worker that answers pings but never acknowledges a job is broken

@dataclass(eq=False)
class _Delivery:
    """A job handed to a worker, and what is known of its delivery."""

    job: Job
    seq: int
    sent: int  # the pool's mark when it was last sent
    acked: bool = False
    resends: int = 0


@dataclass(eq=False)
class WorkerState:
    """One worker, as the pool sees it."""

    name: str
    uri: str
    jobs: dict[int, _Delivery] = field(default_factory=dict)  # by token, in the order given
    blocked: bool = False  # computing something that is not its job here
    since: float = 0.0  # when the job it runs started (about; monotonic)
    last_seen: float = 0.0  # wall clock
    heard: float = 0.0  # when it last spoke: a call or a ping's answer (monotonic)
    pinged: float = -math.inf  # when it was last due a ping (monotonic)
    missed: int = 0
    jobs_done: int = 0
    leaving: bool = False  # said it leaves: no new job
    peer: Any = None  # the address its last call came from (its connection to us)

    @property
    def load(self) -> int:
        return len(self.jobs) + self.blocked


_NUMBERS = (int, float)


def _budget(job: Job) -> float:
    """A job's numeric budget, the measure of how long it holds a worker (0 if it has none).
    Exact types: kwargs are plain data (``to_plain``), and a bool is not a budget."""
    budget = job.kwargs.get("budget")
    return float(budget) if type(budget) in _NUMBERS and budget > 0 else 0.0


class _Recent:
    """The last ``size`` items appended, with fast membership."""

    def __init__(self, size: int):
        self._order: collections.deque = collections.deque(maxlen=size)
        self._set: set = set()

    def append(self, item: Any) -> None:
        if len(self._order) == self._order.maxlen:
            self._set.discard(self._order[0])
        self._order.append(item)
        self._set.add(item)

    def __contains__(self, item: Any) -> bool:
        return item in self._set


class Pool:
    """The model.

    ``address`` goes into every job message (where the worker reports to); ``clock`` has
    ``monotonic()`` (for durations) and ``time()`` (for the jobs' timestamps): the ``time``
    module, or a fake in tests. ``durations`` learn from every result. What happened that the
    driver should log is in ``events``.
    """

    def __init__(self, retry: RetryPolicy | None = None, prefetch: int = 0, address: str = "",
                 clock: Any = time, durations: Durations | None = None):
        if type(prefetch) is not int or prefetch < 0:
            raise ConfigurationError(f"prefetch must be an int >= 0, got {prefetch!r}")
        self.life = Lifecycle(retry, durations, clock)
        self.prefetch = prefetch
        self.address = address
        self.clock = clock
        self.queue: collections.deque[Job] = collections.deque()
        self.workers: dict[str, WorkerState] = {}
        self.finished: list[Job] = []  # taken by the driver, in order
        self.events: list[tuple] = []  # ("requeued" | "late" | "lost" | "left", ...) to log
        self.counts: collections.Counter = collections.Counter()
        self.closed = False
        self._idle: dict[str, None] = {}  # insertion-ordered sets of worker names
        self._spare: dict[str, None] = {}
        self._running: dict[int, str] = {}  # token -> worker name
        self._seqs: dict[str, int] = {}  # per worker name, never reset
        self._peers: dict[Any, str] = {}  # a connection's address -> the worker calling on it
        self._marks = itertools.count(1)
        self._done = _Recent(4096)  # (worker, token, attempt) of results taken

    @property
    def retry(self) -> RetryPolicy:
        return self.life.retry

    @retry.setter
    def retry(self, policy: RetryPolicy) -> None:
        self.life.retry = policy

    @property
    def durations(self) -> Durations:
        return self.life.durations

    # --------------------------------------------------------------------------------- jobs
    def submit(self, job: Job) -> None:
        if self.closed:
            raise JobError("the dispatcher is shut down")
        self.life.submitted(job)
        self.queue.append(job)

    def cancel_queued(self, ids: Iterable[Any] | None = None) -> int:
        """Finish queued jobs (all, or those whose id is in ``ids``) as CANCELLED."""
        wanted = None if ids is None else set(ids)
        keep: collections.deque[Job] = collections.deque()
        n = 0
        for job in self.queue:
            if wanted is None or job.id in wanted:
                self._finish(job, JobStatus.CANCELLED, None, "cancelled before it started")
                n += 1
            else:
                keep.append(job)
        self.queue = keep
        return n

    def close(self) -> None:
        """Shutting down: every queued and running job is CANCELLED."""
        self.closed = True
        for state in list(self.workers.values()):
            for delivery in list(state.jobs.values()):
                self._take(state, delivery)
                self._finish(delivery.job, JobStatus.CANCELLED, None,
                             "the dispatcher was shut down")
        self.cancel_queued()
        self.workers.clear()
        self._peers.clear()
        self._idle.clear()
        self._spare.clear()

    def take_finished(self) -> list[Job]:
        done, self.finished = self.finished, []
        return done

    def take_events(self) -> list[tuple]:
        events, self.events = self.events, []
        return events

    # ------------------------------------------------------------------------------ workers
    def add(self, name: str, uri: str) -> WorkerState:
        """The worker is in the pool (a no-op if it is, at that address)."""
        state = self.workers.get(name)
        if state is None or state.uri != uri:
            if state is not None:
                self.remove(name, "came back at another address")
            state = self.workers[name] = WorkerState(name, uri, last_seen=self.clock.time(),
                                                     heard=self.clock.monotonic())
            self._file(state)
        return state

    def remove(self, name: str, reason: str, started: bool = True, lost: bool = True) -> None:
        """The worker is gone (``lost``, or asked to leave): its jobs go back to the front of
        the queue, in order. The one it ran costs an attempt if it may have ``started`` (not
        when handing it over failed); a job with no attempt left is LOST."""
        state = self.workers.pop(name, None)
        if state is None:
            return
        self._idle.pop(name, None)
        self._spare.pop(name, None)
        if self._peers.get(state.peer) == name:
            del self._peers[state.peer]
        deliveries = list(state.jobs.values())
        for delivery in deliveries:
            self._take(state, delivery)
        self.events.append(("lost" if lost else "left", name, reason))
        self._requeue(deliveries, name, reason, count_first=started)

    def missed(self, name: str, reason: str) -> bool:
        """A ping got no answer in time; True if the worker is now lost (two in a row)."""
        state = self.workers.get(name)
        if state is None:
            return False
        state.missed += 1
        if state.missed < _MISSED_PINGS:
            return False
        self.remove(name, f"missed {_MISSED_PINGS} pings: {reason}")
        return True

    def due_pings(self, quiet: float) -> list[str]:
        """The workers to ping now: those neither heard from (a call, a ping's answer) nor
        pinged for ``quiet`` seconds, each marked pinged now. A worker that called recently is
        not pinged: its call carried the report a ping's answer would (it is checked the same
        way), so a busy worker whose jobs end within the interval costs no ping at all; a
        silent one, stalled or idle, is pinged as before."""
        now = self.clock.monotonic()
        due = []
        for name, state in self.workers.items():
            if now - max(state.heard, state.pinged) >= quiet:
                state.pinged = now
                due.append(name)
        return due

    def hung_up(self, peer: Any) -> str | None:
        """The connection at address ``peer`` closed from the worker's side: the name of the
        worker that called on it, which the driver probes now (a worker whose process is gone
        refuses the probe and is lost at once; one whose connection merely dropped answers it
        and keeps its jobs). None if no worker of the pool calls on that connection."""
        name = self._peers.pop(peer, None)
        state = self.workers.get(name) if name is not None else None
        if state is None or state.peer != peer:
            return None
        state.peer = None
        self.counts["hung_up"] += 1
        return name

    def mark(self) -> int:
        """A number that orders sends and pings: a ping marked after a job was sent travels
        behind it on the same connection."""
        return next(self._marks)

    # --------------------------------------------------------------------- the worker's word
    def on_report(self, name: str, report: Report, ping_mark: int
                  ) -> tuple[list[dict], list[tuple[int, int]]]:
        """A ping's answer: repair what differs. Returns the jobs to send again (not
        acknowledged though sent before the ping) and the keys of jobs the worker holds that
        are not its own here (to cancel there)."""
        state = self.workers.get(name)
        if state is None:
            return [], []
        self._heard(state)
        stale = self._reconcile(state, report)
        if self._left(state, report):
            return [], stale
        resend = []
        for delivery in state.jobs.values():
            if not delivery.acked and delivery.sent < ping_mark:
                delivery.resends += 1
                if delivery.resends > _MAX_RESENDS:
                    self.remove(name, f"did not take job {delivery.job.id!r} in "
                                      f"{_MAX_RESENDS} sends", started=False)
                    return [], []
                delivery.sent = self.mark()
                resend.append(self._message(delivery))
        return resend, stale

    def on_call(self, name: str, uri: str, report: Report, results: list[ResultMessage],
                peer: Any = None) -> tuple[list[dict], list[tuple[int, int]]]:
        """A worker's call (hello, results or heartbeat), made on the connection at address
        ``peer``: take its results, repair what differs, maybe give it its next job. Returns
        what the answer carries (every job of it not acknowledged yet, a new one included) and
        the keys to cancel there."""
        if self.closed:
            return [], []
        state = self.add(name, uri)
        if peer is not None and state.peer != peer:
            if self._peers.get(state.peer) == name:
                del self._peers[state.peer]
            state.peer = peer
            self._peers[peer] = name
        self._heard(state)
        for result in results:
            self._result(state, result)
        stale = self._reconcile(state, report)
        if self._left(state, report):
            return [], stale
        if self.queue and state.load <= self.prefetch and not state.leaving and (
                not state.jobs or self._free_slot(prefer=name) == name):
            self._deliver(self.queue.popleft(), state)
        mark = self.mark()
        reply = []
        for delivery in state.jobs.values():
            if not delivery.acked:
                delivery.sent = mark
                reply.append(self._message(delivery))
        return reply, stale

    def _heard(self, state: WorkerState) -> None:
        state.missed = 0
        state.last_seen = self.clock.time()
        state.heard = self.clock.monotonic()

    def _left(self, state: WorkerState, report: Report) -> bool:
        """A worker that said it leaves gets no new job, and leaves the pool once it runs
        nothing of ours (the jobs it handed back were re-queued by the reconciliation)."""
        if not report.leaving:
            return False
        state.leaving = True
        self._file(state)
        if state.jobs:
            return False
        self.remove(state.name, "it left (its lifetime ended, or it was told to stop)",
                    started=False, lost=False)
        return True

    def _reconcile(self, state: WorkerState, report: Report) -> list[tuple[int, int]]:
        gone = []
        for delivery in state.jobs.values():
            job = delivery.job
            if (job.token, job.attempt) in report.held:
                delivery.acked = True
            elif delivery.seq <= report.acked:
                gone.append(delivery)  # it arrived, and it is gone without a result
        if gone:
            first = next(iter(state.jobs.values()))
            for delivery in gone:
                self._take(state, delivery)
            self._requeue(gone, state.name, "handed it back: it is leaving" if report.leaving
                          else "no longer holds it and sent no result",
                          count_first=gone[0] is first and not report.leaving)
        mine = {(d.job.token, d.job.attempt) for d in state.jobs.values()}
        state.blocked = report.busy and (report.running is None or report.running not in mine)
        self._file(state)
        return sorted(report.held - mine)

    def _result(self, state: WorkerState, result: ResultMessage) -> None:
        token, attempt = result.token, result.attempt
        delivery = state.jobs.get(token)
        if delivery is None or delivery.job.attempt != attempt:
            if (state.name, token, attempt) in self._done:
                return  # a copy of a result it sent before (its call was answered too late)
            self.counts["late"] += 1
            self.events.append(("late", state.name, token, attempt))
            return
        job = delivery.job
        first = next(iter(state.jobs.values())) is delivery
        self._take(state, delivery)
        self._done.append((state.name, token, attempt))
        self.life.timed(job, result.duration)
        if first:
            state.since = self.clock.monotonic()  # the job it holds next starts now
        state.jobs_done += 1
        status = result.status
        if self.retry.retries(status, job.attempt):
            self._requeue([delivery], state.name, f"it ended {status.name}, which is retried",
                          count_first=True)
        else:
            self._finish(job, status, result.result, result.exception, result.info)
        self._file(state)

    # ---------------------------------------------------------------------------- assigning
    def assign(self) -> list[tuple[str, dict]]:
        """Pair queued jobs with free slots: ``[(worker name, job message), ...]`` to push, in
        order (every idle worker's first job before anyone's held one)."""
        sends = []
        while self.queue and not self.closed:
            name = self._free_slot()
            if name is None:
                break
            delivery = self._deliver(self.queue.popleft(), self.workers[name])
            sends.append((name, self._message(delivery)))
        return sends

    def _deliver(self, job: Job, state: WorkerState) -> _Delivery:
        self.life.start(job, state.name)
        if not state.jobs:
            state.since = self.clock.monotonic()
        seq = self._seqs[state.name] = self._seqs.get(state.name, 0) + 1
        delivery = state.jobs[job.token] = _Delivery(job, seq, self.mark())
        self._running[job.token] = state.name
        self._file(state)
        return delivery

    def _message(self, delivery: _Delivery) -> dict:
        job = delivery.job
        return JobMessage(job.token, job.attempt, job.id, job.kwargs, self.address,
                          delivery.seq).to_wire()

    def _free_slot(self, prefer: str | None = None) -> str | None:
        """The worker the next queued job should go to, or None to hold it for now.

        An idle worker first. Otherwise (prefetch) the job goes where it would start first,
        each worker's jobs timed at the pace seen so far. If that is a worker whose slots are
        full, the job waits for its next result rather than sit behind a long job; ``prefer``
        wins ties. Without a pace yet, any free slot will do.
        """
        if self._idle:
            return next(iter(self._idle))
        if not self._spare:
            return None
        pace = self.durations.pace
        if pace is None:
            return prefer if prefer in self._spare else next(iter(self._spare))
        now = self.clock.monotonic()
        best, best_start = None, math.inf
        for name, state in self.workers.items():
            if state.blocked or state.leaving or not state.jobs:
                continue
            start = self._free_at(state, pace, now)
            if start < best_start or (start == best_start and name == prefer):
                best, best_start = name, start
        return best if best in self._spare else None

    def _file(self, state: WorkerState) -> None:
        """File the worker as idle, as having a free prefetch slot, or as full."""
        name = state.name
        self._idle.pop(name, None)
        self._spare.pop(name, None)
        if self.workers.get(name) is not state or state.leaving:
            return
        if state.load == 0:
            self._idle[name] = None
        elif state.load <= self.prefetch:
            self._spare[name] = None

    def _take(self, state: WorkerState, delivery: _Delivery) -> None:
        """The delivery leaves its worker (finished, re-queued or cancelled)."""
        state.jobs.pop(delivery.job.token, None)
        self._running.pop(delivery.job.token, None)

    def _requeue(self, deliveries: list[_Delivery], worker: str, reason: str,
                 count_first: bool) -> None:
        """Back to the front of the queue, in order; the first costs an attempt if
        ``count_first`` (and is LOST when the policy allows no more)."""
        back = []
        for i, delivery in enumerate(deliveries):
            job = delivery.job
            costs = i == 0 and count_first
            if costs and not self.retry.again(job.attempt):
                self._finish(job, JobStatus.LOST, None, f"the worker running it was lost "
                             f"{job.attempt} times; last: {worker}: {reason}")
                continue
            self.life.requeue(job, costs)
            self.events.append(("requeued", job, worker, reason))
            back.append(job)
        self.queue.extendleft(reversed(back))

    def _finish(self, job: Job, status: JobStatus, result: Any, exception: str | None,
                info: dict | None = None) -> None:
        self.life.finish(job, status, result, exception, info)
        self.counts[status] += 1
        self.finished.append(job)

    # ------------------------------------------------------------------------------ queries
    def expected_start(self) -> float | None:
        """When (``clock.monotonic()``) a job submitted now would start, at the pace of the
        jobs so far: each worker frees up after what it holds, and the queue ahead goes to
        whoever frees up first. None before the first result (no pace yet), or without
        workers."""
        pace = self.durations.pace
        if pace is None:
            return None
        now = self.clock.monotonic()
        if len(self._idle) > len(self.queue):  # a worker is still idle after the queue ahead:
            return now  # the usual answer, without timing every worker (O(1), not O(W))
        free = [self._free_at(s, pace, now) for s in self.workers.values()
                if not s.blocked and not s.leaving]
        if not free:
            return None
        heapq.heapify(free)
        for job in self.queue:
            heapq.heapreplace(free, free[0] + pace * _budget(job))
        return free[0]

    @staticmethod
    def _free_at(state: WorkerState, pace: float, now: float) -> float:
        """When the worker will have finished what it holds."""
        if not state.jobs:
            return now
        budgets = [_budget(d.job) for d in state.jobs.values()]
        return max(now, state.since + pace * budgets[0]) + pace * sum(budgets[1:])

    @property
    def running(self) -> int:
        return len(self._running)

    @property
    def idle(self) -> int:
        return len(self._idle)

    def snapshot(self) -> list[dict]:
        """Each worker as plain data, for ``ultrarun status``."""
        out = []
        for s in self.workers.values():
            first = next(iter(s.jobs.values()), None)
            job = None if first is None else first.job
            out.append({"name": s.name, "uri": s.uri, "busy": s.load > 0, "holding": len(s.jobs),
                        "job": None if job is None else {"id": job.id,
                                                         "budget": job.kwargs.get("budget")},
                        "jobs_done": s.jobs_done, "last_seen": s.last_seen})
        return out


__all__ = ["Pool", "WorkerState"]
