"""The dispatcher: owns the worker pool and the job queue, and reports every job exactly once.

Workers are found two ways: they say hello when they start (so they get work at once), and the
dispatcher lists the name server when it starts and at every ping interval (so workers that were
there first are found too). A free worker gets one job at a time; in steady state the answer to a
worker's ``register_result`` already carries its next job, so a job costs one round trip.

Threads and the rules they keep (DESIGN.md, invariants 1-4):
- the Pyro daemon thread serves hello/register_result: bookkeeping under the lock, no remote call;
- the runner thread hands queued jobs to idle workers; its remote calls are made outside the lock,
  and a call that may block (first contact with a worker) goes through a small thread pool;
- the monitor thread pings workers and re-lists the name server; a worker whose process is gone
  (connection refused) or that misses two pings in a row (no answer within ``timeout``) is lost
  and its job re-queued (up to ``max_retries``, then LOST);
- the callback thread calls ``new_result_callback`` and ``queue_callback``, so user code never
  runs in the daemon's thread or under the lock.
"""
from __future__ import annotations

import collections
import concurrent.futures
import heapq
import logging
import math
import queue
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from . import transport
from .config import config
from .errors import (AuthenticationError, CommunicationError, CommunicationTimeout,
                     ConfigurationError, UltrarunError)
from .job import Job, JobStatus, to_plain
from .security import resolve_secret

log = logging.getLogger(__name__)

_MISSED_PINGS = 2  # pings a silent worker may miss in a row before its job is re-queued


@dataclass
class _WorkerRecord:
    name: str
    uri: str
    jobs: list[Job] = field(default_factory=list)  # running first, then prefetched ones
    foreign_busy: bool = False  # busy with a job of an earlier dispatcher
    jobs_done: int = 0
    last_seen: float = field(default_factory=time.time)
    proxy: Any = None  # used by the runner thread (and its pool) only
    outbox: collections.deque = field(default_factory=collections.deque)  # jobs to send, in order
    sending: bool = False  # a thread is draining the outbox
    since: float = 0.0  # time.monotonic() when its running job started (about)

    @property
    def job(self) -> Job | None:
        """The job the worker is running (the first it holds)."""
        return self.jobs[0] if self.jobs else None


@dataclass(frozen=True)
class _Verify:
    """An outbox entry: ask the worker which of ``tokens`` it holds. It travels on the
    connection the jobs went by, after them, so the answer counts every job sent before."""
    tokens: frozenset[int]


def _free_at(record: _WorkerRecord, pace: float, now: float) -> float:
    """When the worker will have finished what it holds, at ``pace`` seconds per budget unit."""
    if not record.jobs:
        return now
    free = max(now, record.since + pace * _budget(record.jobs[0]))
    return free + pace * sum(_budget(job) for job in record.jobs[1:])


_NUMBERS = (int, float)


def _budget(job: Job) -> float:
    """A job's numeric budget, the measure of how long it holds a worker (0 if it has none).
    Called for every held job whenever a start is estimated, hence exact types: kwargs are
    plain data (``to_plain``), and a bool is not a budget."""
    budget = job.kwargs.get("budget")
    return float(budget) if type(budget) in _NUMBERS and budget > 0 else 0.0


class Dispatcher:
    """Hands jobs to the run's workers and calls ``new_result_callback(job)`` once per job.

    Args:
        new_result_callback: called with each finished :class:`~ultrarun.job.Job`.
        run_id: the run whose workers to use.
        ping_interval: seconds between pings of the workers and re-listings of the name server
            (default: the PING_INTERVAL setting, 10).
        nameserver, nameserver_port: the run's name server.
        host: address the dispatcher listens on (default: the one facing the name server).
        queue_callback: called with the number of workers whenever the pool changes.
        max_retries: how often a job whose worker vanished is re-run before it is LOST.
        prefetch: jobs a busy worker may hold besides the one it runs (default 0: one job at a
            time). With short jobs, 1 hides the result's round trip: the worker starts its next
            job while its last result travels. All of a lost worker's jobs are re-queued.
        timeout: seconds a remote call may take; a worker that misses two pings in a row (or
            whose process is gone) is lost, so a stopped worker loses its job after at most
            2 x (ping_interval + timeout).
    """

    def __init__(self, new_result_callback: Callable[[Job], Any], run_id: Any = "0",
                 ping_interval: float | None = None, nameserver: str = "localhost",
                 nameserver_port: int | None = None, host: str | None = None,
                 queue_callback: Callable[[int], Any] | None = None, *, secret: str | None = None,
                 max_retries: int = 3, timeout: float | None = None, prefetch: int = 0,
                 logger: logging.Logger | None = None):
        if ping_interval is None:
            ping_interval = config.PING_INTERVAL
        if not ping_interval > 0:
            raise ConfigurationError(f"ping_interval must be > 0, got {ping_interval!r}")
        if int(max_retries) < 0:
            raise ConfigurationError(f"max_retries must be >= 0, got {max_retries!r}")
        if int(prefetch) < 0:
            raise ConfigurationError(f"prefetch must be >= 0, got {prefetch!r}")
        self.prefetch = int(prefetch)
        self.new_result_callback = new_result_callback
        self.queue_callback = queue_callback
        self.run_id = transport.check_run_id(run_id)
        self.ping_interval = float(ping_interval)
        self.nameserver = nameserver
        self.nameserver_port = nameserver_port
        self.host = host
        self.secret = secret
        self.max_retries = int(max_retries)
        self.timeout = float(timeout) if timeout else config.COMMTIMEOUT
        self.logger = logger or log

        self._cond = threading.Condition()
        self._queue: collections.deque[Job] = collections.deque()
        self._workers: dict[str, _WorkerRecord] = {}
        self._idle: dict[str, None] = {}  # insertion-ordered set: workers holding no job
        self._spare: dict[str, None] = {}  # workers with a free prefetch slot
        self._pace: collections.deque = collections.deque(maxlen=64)  # seconds per budget unit
        self._pace_median: float | None = None  # of _pace, kept current as results arrive
        self._running: dict[int, Job] = {}
        self._counts: collections.Counter = collections.Counter()
        self._best: dict[Any, tuple[float, Any]] = {}  # budget -> (best loss, job id)
        self._callbacks: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        self._discover_now = threading.Event()
        self._started = False
        self._closed = False
        self._threads: list[threading.Thread] = []
        self._server: transport.Server | None = None
        self._ns: transport.NameServerClient | None = None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._monitor_proxies: dict[str, Any] = {}
        self._suspects: dict[str, float] = {}  # name -> next time to probe again
        self._missed: dict[str, int] = {}  # name -> pings missed in a row (monitor thread)
        self.uri: str | None = None

    # ------------------------------------------------------------------------ lifecycle
    def start(self) -> "Dispatcher":
        """Listen, register with the name server and start the threads; returns at once."""
        with self._cond:
            if self._started:
                return self
            self._started = True
        secret = resolve_secret(self.secret, self.nameserver_port)
        self._ns = transport.NameServerClient(self.nameserver, self.nameserver_port, secret,
                                              self.timeout)
        try:
            self._ns.wait(timeout=config.NAMESERVER_WAIT)
            bind = self.host or transport.local_address_towards(self._ns.host)
            self._secret = secret
            self._server = transport.Server(DispatcherService(self), secret, host=bind)
            self.uri = self._server.start()
            self._ns.register(transport.dispatcher_name(self.run_id), self.uri)
        except BaseException:
            self.shutdown()
            raise
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=8,
                                                           thread_name_prefix="dispatch-send")
        for target, name in ((self._callback_loop, "dispatcher-callbacks"),
                             (self.job_runner, "dispatcher-runner"),
                             (self._monitor_loop, "dispatcher-monitor")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        self.logger.info("dispatcher of run %s at %s", self.run_id, self.uri)
        return self

    def run(self) -> None:
        """Start (if needed) and block until :meth:`shutdown` (HpBandSter runs this in a thread)."""
        self.start()
        self._stop.wait()

    def shutdown(self, shutdown_workers: bool = False) -> None:
        """Stop dispatching; queued and running jobs are reported as CANCELLED. Idempotent."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._stop.set()
            self._cond.notify_all()
        self._discover_now.set()
        if shutdown_workers:
            self.shutdown_all_workers()
        if self._ns is not None and self.uri is not None:
            try:
                name = transport.dispatcher_name(self.run_id)
                if self._ns.lookup(name) == self.uri:
                    self._ns.remove(name)
            except CommunicationError as exc:
                self.logger.debug("could not unregister the dispatcher: %s", exc)
        if self._server is not None:
            self._server.shutdown()
        for thread in self._threads:
            if thread.name != "dispatcher-callbacks" and thread is not threading.current_thread():
                thread.join(timeout=10)
        with self._cond:
            leftovers = list(self._queue) + list(self._running.values())
            self._queue.clear()
            self._running.clear()
            for job in leftovers:
                self._finish(job, JobStatus.CANCELLED, None, "the dispatcher was shut down")
            records = list(self._workers.values())
            self._workers.clear()
            self._idle.clear()
            self._spare.clear()
        self._callbacks.put(None)
        for thread in self._threads:
            if thread.name == "dispatcher-callbacks" and thread is not threading.current_thread():
                thread.join(timeout=10)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
        for proxy in [r.proxy for r in records if r.proxy] + list(self._monitor_proxies.values()):
            transport.close_proxy(proxy)
        if self._ns is not None:
            self._ns.close()
        self.logger.info("dispatcher of run %s shut down", self.run_id)

    def __enter__(self) -> "Dispatcher":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()

    # ----------------------------------------------------------------------------- jobs
    def submit_job(self, id: Any, **kwargs: Any) -> Job:
        """Queue a job (``config``, ``budget``, ``working_directory``, ...); an idle worker gets
        it at once. kwargs are converted to plain data here: numpy values never travel."""
        job = Job(id=to_plain(id, "job id"), kwargs=to_plain(kwargs, "job kwargs"))
        job.time_it("submitted")
        with self._cond:
            if self._closed:
                raise UltrarunError("the dispatcher is shut down")
            self._queue.append(job)
            self._cond.notify_all()
        return job

    def cancel_queued_jobs(self, ids: Any = None) -> int:
        """Report jobs that have not started yet as CANCELLED (all of them, or those whose id is
        in ``ids``); returns how many. A running job cannot be recalled: it finishes."""
        wanted = None if ids is None else set(ids)
        with self._cond:
            jobs = [j for j in self._queue if wanted is None or j.id in wanted]
            self._queue = collections.deque(j for j in self._queue if j not in jobs)
            for job in jobs:
                self._finish(job, JobStatus.CANCELLED, None, "cancelled before it started")
        return len(jobs)

    def number_of_workers(self) -> int:
        with self._cond:
            return len(self._workers)

    def number_of_idle_workers(self) -> int:
        with self._cond:
            return len(self._idle)

    def queue_length(self) -> int:
        with self._cond:
            return len(self._queue)

    def number_of_running_jobs(self) -> int:
        with self._cond:
            return len(self._running)

    def job_runner(self) -> None:
        """The dispatch loop: pair queued jobs with idle workers until shutdown."""
        while True:
            with self._cond:
                while not self._stop.is_set() and not (self._queue and self._free_slot()):
                    self._cond.wait()
                if self._stop.is_set():
                    return
                to_drain = []
                while self._queue and (name := self._free_slot()) is not None:
                    record = self._workers[name]
                    # Into the outbox in the same critical section: a _Verify queued by hello()
                    # must come after every job the worker was assigned before it.
                    if self._enqueue(record, self._assign(self._queue.popleft(), record)):
                        to_drain.append(record)
            connected = []
            for record in to_drain:
                if record.proxy is not None and record.proxy._pyroConnection is not None:
                    connected.append(record)
                else:  # first contact may block until the timeout: not in this thread
                    self._drain_in_pool(record)
            self._drain(*connected)

    def _enqueue(self, record: _WorkerRecord, message: Any) -> bool:
        """Caller holds the lock: queue ``message`` for the worker behind what it has been
        assigned. True if no thread is draining its outbox: the caller must start one."""
        record.outbox.append(message)
        if record.sending:
            return False  # the thread draining it sends this one too, in order
        record.sending = True
        return True

    def _drain_in_pool(self, record: _WorkerRecord) -> None:
        try:
            self._pool.submit(self._drain, record)
        except RuntimeError:  # shutting down
            with self._cond:
                record.sending = False

    def _drain(self, *records: _WorkerRecord) -> None:
        """Send each worker's assigned jobs one after the other, so it gets them in order; with
        several workers, one message to each in turn: after a burst of submissions every worker
        gets its first job before any gets the one it holds next."""
        while records:
            busy = []
            for record in records:
                with self._cond:
                    if not record.outbox or self._workers.get(record.name) is not record:
                        record.outbox.clear()  # a lost worker's jobs were re-queued
                        record.sending = False
                        continue
                    message = record.outbox.popleft()
                if isinstance(message, _Verify):
                    self._verify(record, message.tokens)
                else:
                    self._send(record, message)
                busy.append(record)
            records = tuple(busy)

    def _verify(self, record: _WorkerRecord, tokens: frozenset[int]) -> None:
        """Re-queue those of ``tokens`` the worker says it does not hold (see ``hello``)."""
        try:
            if record.proxy is None:
                record.proxy = transport.make_proxy(record.uri, self._secret, self.timeout)
            with transport.remote_call(f"status of {record.name}"):
                state = record.proxy.status()
        except CommunicationError as exc:
            self._lost(record.name, f"did not answer after its hello: {exc}")
            return
        held = {tuple(pair) for pair in state.get("held", ())}
        with self._cond:
            if self._workers.get(record.name) is not record:
                return
            gone = [job for job in record.jobs
                    if job.token in tokens and (job.token, job.attempt) not in held]
            if gone:
                self._requeue(record, "it said hello without them", count=True, jobs=gone)
            record.foreign_busy = False
            self._update_slots(record)

    def _send(self, record: _WorkerRecord, message: dict) -> None:
        try:
            if record.proxy is None:
                record.proxy = transport.make_proxy(record.uri, self._secret, self.timeout)
            with transport.remote_call(f"start_computation on {record.name}"):
                record.proxy.start_computation(message)
        except CommunicationError as exc:
            self._lost(record.name, f"could not hand it a job: {exc}", job_started=False)
        except Exception:  # never let the pool swallow a bug silently
            self.logger.exception("sending a job to %s failed", record.name)
            self._lost(record.name, "sending failed", job_started=False)

    # -------------------------------------------------- called by workers (daemon thread)
    def hello(self, name: str, uri: str) -> dict | None:
        """A worker is up and free; the answer may carry its first job."""
        with self._cond:
            if self._closed:
                return None
            record = self._workers.get(name)
            if record is None:
                record = self._add_worker(name, uri)
            elif record.jobs:
                # Either it lost them (it could not deliver a result) or our jobs and its hello
                # crossed (we found it in the name server and sent it jobs first): ask it, and
                # re-run what it does not hold. Should a job given in a reply still be on its way
                # to it, the job runs twice; exactly-once still holds (the late result is dropped).
                record.last_seen = time.time()
                if self._enqueue(record, _Verify(frozenset(job.token for job in record.jobs))):
                    self._drain_in_pool(record)  # not here: the daemon thread makes no calls
                return None
            record.foreign_busy = False
            record.last_seen = time.time()
            return self._next_job_for(record)

    def register_result(self, id: Any = None, result: dict | None = None) -> dict | None:
        """A worker's result for job ``id = (token, attempt)``; the answer may carry its next
        job. A result for a job that was re-queued or finished meanwhile is dropped and logged."""
        token, attempt = id
        payload = result or {}
        name = payload.get("worker")
        with self._cond:
            record = self._workers.get(name)
            job = self._running.get(token)
            if (job is None or job.attempt != attempt or job.worker_name != name
                    or record is None):
                self.logger.warning("dropping a late result from %s for job token %s attempt %s "
                                    "(it was re-queued or finished meanwhile)", name, token,
                                    attempt)
                if self._closed:
                    return None
                if record is None and payload.get("uri"):
                    record = self._add_worker(name, payload["uri"])  # it is alive after all
                if record is None or record.jobs:
                    return None
                record.foreign_busy = False
                return self._next_job_for(record)
            del self._running[token]
            now = time.monotonic()
            budget = _budget(job)
            if budget and job is record.jobs[0]:
                self._pace.append((now - record.since) / budget)
                self._pace_median = statistics.median(self._pace)
            record.jobs.remove(job)
            record.since = now  # the next job it holds starts now
            record.jobs_done += 1
            record.last_seen = time.time()
            status = _status(payload.get("status"))
            self._finish(job, status, payload.get("result"), payload.get("exception"))
            if self._closed:
                return None
            return self._next_job_for(record)

    def status(self) -> dict:
        """A snapshot for ``ultrarun status``: workers, queue, job counts and the best loss per
        budget so far (the incumbent)."""
        with self._cond:
            workers = [{"name": r.name, "uri": r.uri,
                        "busy": bool(r.jobs) or r.foreign_busy, "holding": len(r.jobs),
                        "job": None if r.job is None else {"id": r.job.id,
                                                           "budget": r.job.kwargs.get("budget")},
                        "jobs_done": r.jobs_done, "last_seen": r.last_seen}
                       for r in self._workers.values()]
            best = [{"budget": b, "loss": loss, "id": i}
                    for b, (loss, i) in sorted(self._best.items(), key=lambda kv: str(kv[0]))]
            return {"run_id": self.run_id, "uri": self.uri, "workers": workers,
                    "queued": len(self._queue), "running": len(self._running),
                    "finished": {s.name: n for s, n in self._counts.items()},
                    "best": best}

    # --------------------------------------------------------------- pool bookkeeping
    def _add_worker(self, name: str, uri: str, busy: bool = False,
                    proxy: Any = None) -> _WorkerRecord:
        """Caller holds the lock. The worker's connection is opened now (or ``proxy``, already
        connected, is kept), so its first jobs do not wait for a TCP and HMAC handshake."""
        record = _WorkerRecord(name, uri, foreign_busy=busy, proxy=proxy)
        self._workers[name] = record
        self._suspects.pop(name, None)
        if proxy is None and self._pool is not None:
            record.sending = True  # jobs assigned meanwhile wait in the outbox, in order
            try:
                self._pool.submit(self._connect, record)
            except RuntimeError:  # shutting down
                record.sending = False
        self._update_slots(record)
        self.logger.info("worker %s joined (%d workers)", name, len(self._workers))
        self._callbacks.put(("pool", len(self._workers)))
        return record

    def _connect(self, record: _WorkerRecord) -> None:
        """Open a new worker's connection, then send what was assigned to it meanwhile."""
        proxy = transport.make_proxy(record.uri, self._secret, self.timeout)
        try:
            with transport.remote_call(f"connect to {record.name}"):
                proxy._pyroBind()
            record.proxy = proxy
        except CommunicationError as exc:  # sending will try again and report the loss
            self.logger.debug("connecting to %s failed: %s", record.name, exc)
            transport.close_proxy(proxy)
        except Exception:
            self.logger.exception("connecting to %s failed", record.name)
            transport.close_proxy(proxy)
        self._drain(record)

    def _assign(self, job: Job, record: _WorkerRecord) -> dict:
        """Caller holds the lock: the job now runs on the record's worker."""
        job.status = JobStatus.RUNNING
        job.worker_name = record.name
        job.time_it("started")
        if not record.jobs:
            record.since = time.monotonic()
        record.jobs.append(job)
        self._running[job.token] = job
        self._update_slots(record)
        return {"token": job.token, "attempt": job.attempt, "id": job.id, "kwargs": job.kwargs,
                "dispatcher": self.uri}

    def _next_job_for(self, record: _WorkerRecord) -> dict | None:
        """Caller holds the lock: give the free worker the next job, or mark it idle.

        A worker that still runs a job gets one to hold only if it would start it as soon as
        any worker would (see :meth:`_free_slot`).
        """
        self._update_slots(record)  # file its free slot first, so _free_slot can pick it
        if (self._queue and not self._stop.is_set() and len(record.jobs) <= self.prefetch
                and (not record.jobs or self._free_slot(record.name) == record.name)):
            return self._assign(self._queue.popleft(), record)
        return None

    def _free_slot(self, prefer: str | None = None) -> str | None:
        """Caller holds the lock: the worker the next queued job should go to, or None to hold
        it for now.

        An idle worker first. Otherwise (prefetch) the job goes where it would start first:
        each worker's queue is timed with the seconds per unit of budget seen so far. If that
        is a worker whose slots are full, the job waits for its next result rather than sit
        behind a long job; ``prefer`` wins ties. Without numeric budgets, any free slot will do.
        """
        if self._idle:
            return next(iter(self._idle))
        if not self._spare:
            return None
        pace = self._pace_median
        if pace is None:
            return prefer if prefer in self._spare else next(iter(self._spare))
        now = time.monotonic()
        best, best_start = None, math.inf
        for name, record in self._workers.items():
            if record.foreign_busy or not record.jobs:
                continue
            start = _free_at(record, pace, now)
            if start < best_start or (start == best_start and name == prefer):
                best, best_start = name, start
        return best if best in self._spare else None

    def expected_start(self) -> float | None:
        """When (``time.monotonic()``) a job submitted now would start, at the pace of the jobs
        so far: each worker frees up after what it holds, and the queue ahead goes to whoever
        frees up first. None before the first result (no pace yet) or without workers. The
        master uses it to start no job that would end after its deadline."""
        with self._cond:
            pace = self._pace_median
            if pace is None:
                return None
            now = time.monotonic()
            free = [_free_at(record, pace, now) for record in self._workers.values()
                    if not record.foreign_busy]
            if not free:
                return None
            heapq.heapify(free)
            for job in self._queue:
                heapq.heapreplace(free, free[0] + pace * _budget(job))
            return free[0]

    def _update_slots(self, record: _WorkerRecord) -> None:
        """Caller holds the lock: file the worker as idle, as having a free prefetch slot, or
        as full; the runner thread sends queued jobs to the first two kinds."""
        self._idle.pop(record.name, None)
        self._spare.pop(record.name, None)
        if record.foreign_busy or self._workers.get(record.name) is not record:
            return
        held = len(record.jobs)
        if held == 0:
            self._idle[record.name] = None
        elif held <= self.prefetch:
            self._spare[record.name] = None
        if held <= self.prefetch:
            self._cond.notify_all()

    def _requeue(self, record: _WorkerRecord, reason: str, count: bool,
                 jobs: list[Job] | None = None) -> None:
        """Caller holds the lock: take the record's ``jobs`` (default: all) back, in order (LOST
        after max_retries). Only the first one was running, so only it counts as an attempt."""
        running = record.job
        if jobs is None:
            jobs = record.jobs
        taken = {id(job) for job in jobs}
        record.jobs = [job for job in record.jobs if id(job) not in taken]
        if record.jobs and record.job is not running:
            record.since = time.monotonic()  # the job it holds next starts now
        back = []
        for job in jobs:
            self._running.pop(job.token, None)
            if count and job is running:
                job.attempt += 1
            if job.attempt > self.max_retries + 1:
                self.logger.error("job %s is LOST: its worker vanished %d times", job.id,
                                  job.attempt - 1)
                self._finish(job, JobStatus.LOST, None,
                             f"the worker running it was lost {job.attempt - 1} times; last: "
                             f"{record.name}: {reason}")
                continue
            self.logger.warning("re-queueing job %s (attempt %d): worker %s %s", job.id,
                                job.attempt, record.name, reason)
            job.status = JobStatus.QUEUED
            job.worker_name = None
            back.append(job)
        self._queue.extendleft(reversed(back))
        self._update_slots(record)
        if back:
            self._cond.notify_all()

    def _lost(self, name: str, reason: str, job_started: bool = True,
              level: int = logging.WARNING) -> None:
        with self._cond:
            record = self._workers.pop(name, None)
            if record is None:
                return
            self._idle.pop(name, None)
            self._spare.pop(name, None)
            self.logger.log(level, "worker %s left the pool: %s", name, reason)
            self._requeue(record, reason, count=job_started)
            self._callbacks.put(("pool", len(self._workers)))
        if record.proxy is not None:
            transport.close_proxy(record.proxy)

    def _finish(self, job: Job, status: JobStatus, result: Any, exception: str | None) -> None:
        """Caller holds the lock: a final state, reported exactly once."""
        job.status = status
        job.result = result if status is JobStatus.SUCCESS else None
        job.exception = exception
        job.time_it("finished")
        self._counts[status] += 1
        if status is JobStatus.SUCCESS and isinstance(result, dict):
            budget = job.kwargs.get("budget")
            best = self._best.get(budget)
            if best is None or result["loss"] < best[0]:
                self._best[budget] = (result["loss"], job.id)
        self._callbacks.put(("job", job))

    # ------------------------------------------------------------- discovery and pings
    def trigger_discover_worker(self) -> None:
        """Look for new workers now instead of at the next ping interval."""
        self._discover_now.set()

    def discover_workers(self) -> int:
        """List the name server for this run's workers and add the new ones that answer."""
        try:
            listed = self._ns.list(transport.worker_prefix(self.run_id))
        except CommunicationError as exc:
            self.logger.warning("cannot list workers: %s", exc)
            return 0
        now = time.monotonic()
        with self._cond:
            new = {n: u for n, u in listed.items()
                   if n not in self._workers and self._suspects.get(n, 0) <= now}
        probes = list(self._pool.map(lambda item: (item, *self._probe(*item)), new.items()))
        added = 0
        for (name, uri), state, proxy in probes:
            if state is None:
                continue
            with self._cond:
                if name not in self._workers and not self._closed:
                    self._add_worker(name, uri, busy=bool(state.get("busy")), proxy=proxy)
                    added += 1
                    continue
            transport.close_proxy(proxy)
        return added

    def _probe(self, name: str, uri: str) -> tuple[dict | None, Any]:
        """Ask a listed worker for its state (from the pool: probes run in parallel); returns
        the state and, when it answered, the connected proxy."""
        proxy = transport.make_proxy(uri, self._secret, self.timeout)
        try:
            with transport.remote_call(f"ping {name}"):
                return proxy.ping(self.uri), proxy  # it connects back to us now
        except AuthenticationError as exc:
            self.logger.error("worker %s refused us: %s", name, exc)
        except CommunicationError as exc:
            if "refused" in str(exc).lower():  # the process is gone: clean the phone book
                self.logger.info("removing stale worker %s from the name server", name)
                try:
                    self._ns.remove(name)
                except CommunicationError:
                    pass
            else:
                with self._cond:
                    self._suspects[name] = time.monotonic() + 6 * self.ping_interval
        transport.close_proxy(proxy)
        return None, None

    def _ping(self, name: str, uri: str) -> dict:
        proxy = self._monitor_proxies.get(name)
        if proxy is None:
            proxy = self._monitor_proxies[name] = transport.make_proxy(uri, self._secret,
                                                                       self.timeout)
        with transport.remote_call(f"ping {name}"):
            return proxy.ping()

    def _drop_monitor_proxy(self, name: str) -> None:
        proxy = self._monitor_proxies.pop(name, None)
        if proxy is not None:
            transport.close_proxy(proxy)

    def _ping_workers(self) -> None:
        with self._cond:
            known = [(r.name, r.uri) for r in self._workers.values()]
        for name in set(self._monitor_proxies) - {n for n, _ in known}:
            self._drop_monitor_proxy(name)
        for name, uri in known:
            if self._stop.is_set():
                return
            try:
                state = self._ping(name, uri)
            except CommunicationTimeout as exc:
                # Silent: maybe stopped, maybe a passing stall. Lost after two missed pings.
                self._drop_monitor_proxy(name)
                self._missed[name] = self._missed.get(name, 0) + 1
                if self._missed[name] >= _MISSED_PINGS:
                    self._missed.pop(name)
                    self._lost(name, f"missed {_MISSED_PINGS} pings: {exc}")
                continue
            except CommunicationError as exc:  # refused or closed: the process is gone
                self._drop_monitor_proxy(name)
                self._missed.pop(name, None)
                self._lost(name, f"did not answer a ping: {exc}")
                continue
            self._missed.pop(name, None)
            with self._cond:
                record = self._workers.get(name)
                if record is None:
                    continue
                record.last_seen = time.time()
                if record.foreign_busy and not state.get("busy"):
                    record.foreign_busy = False
                    self._update_slots(record)

    def _check_registration(self) -> None:
        """Register again if a restarted name server forgot the dispatcher."""
        name = transport.dispatcher_name(self.run_id)
        try:
            if self._ns.lookup(name) is None:
                self._ns.register(name, self.uri)
                self.logger.info("registered again with the name server (it forgot us)")
        except CommunicationError as exc:
            self.logger.debug("name server unreachable: %s", exc)

    def _monitor_loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._check_registration()
                self.discover_workers()
                self._ping_workers()
            except Exception:
                self.logger.exception("worker monitor failed; retrying")
            self._discover_now.wait(self.ping_interval)
            self._discover_now.clear()
        for name in list(self._monitor_proxies):
            self._drop_monitor_proxy(name)

    def _callback_loop(self) -> None:
        while True:
            item = self._callbacks.get()
            if item is None:
                return
            kind, value = item
            try:
                if kind == "job":
                    self.new_result_callback(value)
                elif self.queue_callback is not None:
                    self.queue_callback(value)
            except Exception:
                self.logger.exception("the %s callback raised; continuing", kind)

    # ---------------------------------------------------------------------- workers
    def shutdown_all_workers(self, rediscover: bool = False) -> None:
        """Ask every worker of the pool to shut down (their processes then exit)."""
        with self._cond:
            records = list(self._workers.values())
        for record in records:
            proxy = transport.make_proxy(record.uri, self._secret, self.timeout)
            try:
                with transport.remote_call(f"shutdown {record.name}"):
                    proxy.shutdown()
            except CommunicationError as exc:
                self.logger.debug("could not shut down %s: %s", record.name, exc)
            finally:
                transport.close_proxy(proxy)
            self._lost(record.name, "it was shut down", job_started=True, level=logging.INFO)
        if rediscover:
            self.trigger_discover_worker()


@transport.expose
class DispatcherService:
    """What workers (and ``ultrarun status``) may call on the dispatcher."""

    def __init__(self, dispatcher: Dispatcher):
        self._dispatcher = dispatcher

    def hello(self, name: str, uri: str) -> dict | None:
        return self._dispatcher.hello(name, uri)

    def register_result(self, id: Any = None, result: dict | None = None) -> dict | None:
        return self._dispatcher.register_result(id=tuple(id), result=result)

    def status(self) -> dict:
        return self._dispatcher.status()


def _status(value: Any) -> JobStatus:
    try:
        return JobStatus(value)
    except ValueError:
        return JobStatus.CRASHED


__all__ = ["Dispatcher"]
