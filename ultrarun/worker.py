"""Long-lived workers: register with the name server, take jobs, push results back.

Subclass :class:`Worker` and override ``compute`` (HpBandSter's or ultraopt's signature), or hand
a plain function to :meth:`Worker.initialize`. ``concurrent_type="process"`` runs compute in a
child process (:mod:`ultrarun.limits`) under hard time and memory limits. Three threads: the
server's, the loop (one job at a time) and the uplink (the only one that calls out); the worker's
side of the pool model is the pure :class:`Inbox`. See docs/worker.md and docs/architecture.md.
"""
from __future__ import annotations

import collections
import functools
import inspect
import itertools
import logging
import os
import socket
import threading
import time
import traceback
from typing import Any, Callable

from . import _gc, transport
from .settings import settings
from .errors import (AuthenticationError, CommunicationError, ConfigurationError, JobError,
                     JobFailed, NameServerError, ResultError, UltrarunError)
from .job import JobStatus, failure_kind, last_line, to_plain, validate_result
from .limits import LimitedCaller, check_limits
from .protocol import JobMessage, Report, ResultMessage, SyncAnswer
from .security import Credentials, credentials_path, resolve_secret

log = logging.getLogger(__name__)

_worker_ids = itertools.count()
_CONCURRENT_TYPES = ("thread", "process")
_DISPATCHERS_KEPT = 8  # dispatchers whose acknowledgements a worker remembers
_HEADROOM = 64 * 1024  # bytes of a message that are not the payload's (names, report, ...)


def _patience() -> float:
    """Seconds a worker keeps trying to deliver a result to a dispatcher that is still the
    run's (longer than any dispatcher waits before it gives up on a silent worker)."""
    return 30 * (settings.PING_INTERVAL + settings.COMMTIMEOUT)


class Worker:
    """A long-lived worker process (or thread) of a run.

    Everything after ``nameserver_port`` is keyword-only: HpBandSter's fourth positional
    argument is ``logger`` and ultraopt's is ``host``, so a positional call fails loudly instead
    of being read differently (``ultrarun.compat`` keeps their orders).

    Args:
        run_id (Any): The run this worker serves.
        nameserver (str | None): Where the run's name server listens (or call
            ``load_nameserver_credentials``).
        nameserver_port (int | None): Its port (None: 9090).
        host (str | None): Address to listen on; by default the local address facing the name
            server.
        worker_id (Any): Distinguishes several workers in one process.
        timeout (float | None): Seconds without work after which the worker shuts down (None:
            never). The clock starts when the worker starts and again whenever it finishes a
            job, and stops while it holds a job: a worker no master comes to ends ``timeout``
            after start-up. HpBandSter starts it only when a job finishes, so a worker started
            long before its master waits for it: the workers of ``ultrarun.compat`` do that
            (``timeout_before_first_job`` is False there).
        debug (bool): Log every job with its arguments and outcome at INFO level (else DEBUG).
        secret (str | None): The run secret (default: ``ULTRARUN_SECRET``, the credentials file
            or the per-user secret; ``ultrarun.security.resolve_secret``).
        time_limit (float | None): Hard seconds per job; needs ``concurrent_type="process"``.
            Exceeding it reports TIMEOUT.
        memory_limit (float | None): Hard MiB per job; needs ``concurrent_type="process"``.
            Exceeding it reports MEMOUT.
        id (Any): HpBandSter's name for ``worker_id``.
        logger (Logger | None): The logger to use (default ``ultrarun.worker``).
        tls (Any): A directory of TLS certificates (``ultrarun certs``): two-way TLS for the
            process.
    """

    #: whether ``timeout`` counts before the first job (see the class docstring)
    timeout_before_first_job: bool = True

    def __init__(self, run_id: Any, nameserver: str | None = None,
                 nameserver_port: int | None = None, *, host: str | None = None,
                 worker_id: Any = None, timeout: float | None = None, debug: bool = False,
                 secret: str | None = None, time_limit: float | None = None,
                 memory_limit: float | None = None, id: Any = None,
                 logger: logging.Logger | None = None, tls: Any = None):
        self.run_id = transport.check_run_id(run_id)
        self.nameserver = nameserver
        self.nameserver_port = nameserver_port
        self.host = host
        self.worker_id = worker_id if worker_id is not None else id
        if self.worker_id is None:
            self.worker_id = next(_worker_ids)
        if timeout is not None and not timeout > 0:
            raise ConfigurationError(f"timeout must be a positive number or None, got {timeout!r}")
        check_limits(time_limit, memory_limit, ("time_limit", "memory_limit"))
        transport.configure_tls(tls)
        self.timeout = timeout
        self.time_limit = time_limit
        self.memory_limit = memory_limit
        self.debug = debug
        self.secret = secret
        self.logger = logger or log
        self.worker_name: str | None = None
        self._eval_func: Callable[..., Any] | None = None
        self._rt: _Runtime | None = None

    # ------------------------------------------------------------------ what users override
    def compute(self, config_id: Any, config: dict, budget: float, working_directory: str,
                **kwargs: Any) -> dict:
        """Evaluate ``config`` at ``budget``: override this in a subclass.

        Args:
            config_id (Any): The configuration's id in the run, e.g. ``(0, 0, 3)``.
            config (dict): The configuration.
            budget (float): The budget to evaluate it on (epochs, data fraction, ...).
            working_directory (str): The run's working directory.
            **kwargs: ``config_info`` and anything else the master sends.

        Returns:
            dict: ``{"loss": float, "info": plain data}``; a compute that raises ends its job
                CRASHED with the traceback.
        """
        if self._eval_func is None:
            raise NotImplementedError("subclass Worker and override compute(), "
                                      "or call worker.initialize(eval_func)")
        return _call_eval_func(self._eval_func, config_id=config_id, config=config, budget=budget,
                               working_directory=working_directory, **kwargs)

    def initialize(self, eval_func: Callable[..., Any]) -> "Worker":
        """Use a plain function as this worker's compute.

        Args:
            eval_func (Callable): ``f(config, budget)`` returning the loss or a dict with
                ``"loss"`` and ``"info"``.

        Returns:
            Worker: This worker.
        """
        if not callable(eval_func):
            raise ConfigurationError(f"eval_func must be callable, got {type(eval_func).__name__}")
        self._eval_func = eval_func
        return self

    # ---------------------------------------------------------------------------- setup
    def load_nameserver_credentials(self, working_directory: str | os.PathLike,
                                    num_tries: int = 60, interval: float = 1) -> None:
        """Read the run's credentials file (written by the name server), waiting for it.

        Args:
            working_directory (str | PathLike): The shared directory holding the file.
            num_tries (int): Looks for the file before giving up.
            interval (float): Seconds between two looks (it says so while it waits).
        """
        waiter = threading.Event()
        path = credentials_path(working_directory, self.run_id)
        for attempt in range(max(1, int(num_tries))):
            try:
                creds = Credentials.read(working_directory, self.run_id)
                break
            except FileNotFoundError:
                if attempt + 1 < num_tries:
                    if attempt % 5 == 0:
                        self.logger.warning("waiting for the credentials file %s (written by "
                                            "`ultrarun nameserver --working-dir`; %d of %d "
                                            "tries)", path, attempt + 1, num_tries)
                    waiter.wait(interval)
        else:
            raise NameServerError(
                f"no credentials file for run {self.run_id} in {working_directory} after "
                f"{num_tries} tries; start the name server with --working-dir there first")
        self.nameserver, self.nameserver_port, self.secret = creds.host, creds.port, creds.secret

    def run(self, background: bool = False, concurrent_type: str = "thread") -> None:
        """Register and serve jobs.

        Args:
            background (bool): False blocks until ``shutdown`` (or the idle timeout); True
                returns once the worker is registered and serves from threads.
            concurrent_type (str): ``"thread"`` runs compute in the worker's thread,
                ``"process"`` in a child process (needed for hard limits).
        """
        if concurrent_type not in _CONCURRENT_TYPES:
            raise ConfigurationError(f"concurrent_type must be one of {_CONCURRENT_TYPES}, "
                                     f"got {concurrent_type!r}")
        if concurrent_type == "thread" and (self.time_limit or self.memory_limit):
            raise ConfigurationError("time_limit and memory_limit need concurrent_type='process'")
        if self._rt is not None:
            raise UltrarunError(f"worker {self.worker_name} is already running")
        rt = self._rt = _Runtime(self, concurrent_type)
        try:
            self._start(rt)
        except BaseException:
            self.shutdown()
            raise
        for target, name in ((self._loop, f"worker-{self.worker_id}"),
                             (rt.uplink_loop, f"worker-{self.worker_id}-uplink")):
            thread = threading.Thread(target=target, args=(rt,) if target == self._loop else (),
                                      name=name, daemon=True)
            thread.start()
        if not background:
            try:
                rt.stopped.wait()
            finally:
                self.shutdown()

    def _start(self, rt: "_Runtime") -> None:
        ns_host = self.nameserver or settings.HOST
        rt.party = transport.Party(resolve_secret(self.secret, self.nameserver_port))
        rt.ns = transport.NameServerClient(ns_host, self.nameserver_port, rt.party)
        self.logger.info("worker of run %s: looking for the name server at %s:%s", self.run_id,
                         rt.ns.host, rt.ns.port)
        rt.ns.wait(settings.NAMESERVER_WAIT, on_wait=lambda s: self.logger.warning(
            "worker of run %s: waiting %.0fs so far for the name server at %s:%s (gives up "
            "after %gs, the NAMESERVER_WAIT setting)", self.run_id, s, rt.ns.host, rt.ns.port,
            settings.NAMESERVER_WAIT))
        bind = self.host or transport.local_address_towards(ns_host)
        rt.server = transport.Server(WorkerService(self, rt), rt.party, host=bind)
        rt.uri = rt.server.start()
        self.worker_name = transport.worker_name(self.run_id, socket.gethostname(), os.getpid(),
                                                 self.worker_id)
        rt.ns.register(self.worker_name, rt.uri)
        if rt.concurrent_type == "process":
            rt.child = LimitedCaller(functools.partial(_compute_in_child, self),
                                     self.time_limit, self.memory_limit)
        self.logger.info("worker %s registered with the name server at %s:%s, serving at %s",
                         self.worker_name, rt.ns.host, rt.ns.port, rt.uri)

    # ------------------------------------------------------------------------- the loop
    def _loop(self, rt: "_Runtime") -> None:
        """Run the jobs that arrive, one at a time, until shutdown or the idle timeout."""
        timed_out = False
        try:
            with _gc.frozen_startup_objects():
                while not rt.stop.is_set():
                    job = rt.next_job(self.timeout)
                    if job is None:
                        timed_out = not rt.stop.is_set()
                        break
                    rt.done(self._execute(rt, job))
        except Exception:
            self.logger.exception("worker %s failed", self.worker_name)
        finally:
            if timed_out:  # unregister and stop serving first, then say so
                rt.reason = f"it was idle for {self.timeout:g}s"
                self.shutdown()
            rt.stopped.set()

    def _execute(self, rt: "_Runtime", job: JobMessage) -> dict:
        kwargs = dict(job.kwargs)
        kwargs["config_id"] = job.id
        level = logging.INFO if self.debug else logging.DEBUG
        if rt.jobs_done == 0:
            self.logger.info("worker %s got its first job, from %s", self.worker_name,
                             job.dispatcher)
        self.logger.log(level, "worker %s starts job %s with %s", self.worker_name, job.id,
                        job.kwargs)
        started = time.monotonic()
        if rt.child is not None:
            status, result, exception, info = _compute_limited(rt.child, kwargs)
        else:
            status, result, exception, info = _run_compute(self, kwargs)
        duration = time.monotonic() - started
        size = transport.encoded_size([result, info])
        if size > settings.MAX_MESSAGE_SIZE - _HEADROOM:
            status, result, exception, info = JobStatus.CRASHED, None, (
                f"ResultError: the result takes {size} bytes on the wire, more than the "
                f"MAX_MESSAGE_SIZE setting allows ({settings.MAX_MESSAGE_SIZE}); return less in "
                "'info', or raise ULTRARUN_MAX_MESSAGE_SIZE for every party of the run"), None
        self.logger.log(level, "worker %s finished job %s: %s %s", self.worker_name, job.id,
                        status.name, result if exception is None else exception)
        kind = failure_kind(status, exception) if status.failed else None
        if kind is not None and kind not in rt.failures:  # the first of each kind, loud
            rt.failures.add(kind)
            self.logger.warning("worker %s: job %s ended %s: %s (the first %s here; the whole "
                                "text goes to the master)", self.worker_name, job.id,
                                status.name, last_line(exception), kind)
        return ResultMessage(job.token, job.attempt, status, result, exception, duration,
                             info).to_wire()

    # ------------------------------------------------------------------------- control
    def is_busy(self) -> bool:
        rt = self._rt
        return bool(rt and rt.current is not None)

    def leave(self, grace: float = 60.0, reason: str = "it was told to stop") -> None:
        """End gracefully: take no new job (the dispatcher is told at once, and runs the jobs
        this worker held but had not started elsewhere), let the one it runs finish within
        ``grace`` seconds and deliver its result, then ``shutdown``. A job still running
        after ``grace`` is handed back: the process ends and the dispatcher, seeing its
        connection close, runs the job again elsewhere. Blocks until done (call it from a thread
        of your own); idempotent.

        Args:
            grace (float): Seconds the running job has to finish (a batch scheduler's time
                between SIGTERM and SIGKILL, less a margin).
            reason (str): What the log says the worker left for.
        """
        rt = self._rt
        if rt is None:
            return
        with rt.lock:
            if rt.leaving or rt.closed:
                return
            rt.leaving, rt.hello = True, True
            rt.inbox.hand_back()
            hellos = rt.hellos
            job = rt.inbox.current
            rt.cond.notify_all()
        self.logger.info("worker %s is leaving (%s): it takes no new job%s", self.worker_name,
                         reason, "" if job is None else
                         f"; job {job.id} may finish within {grace:g}s")
        with rt.lock:
            done = rt.cond.wait_for(lambda: rt.closed or (
                rt.hellos > hellos and rt.inbox.current is None and not rt.inbox.results),
                timeout=grace)
            job = rt.inbox.current
        if not done and job is not None:
            self.logger.warning("worker %s: job %s did not finish within the grace of %gs: "
                                "handing it back (it runs again elsewhere)", self.worker_name,
                                job.id, grace)
        rt.reason = reason
        self.shutdown()

    def shutdown(self) -> None:
        """Stop serving, unregister and stop the compute process. Idempotent."""
        rt = self._rt
        if rt is None:
            return
        with rt.lock:
            first, rt.closed = not rt.closed, True
            rt.stop.set()
            rt.cond.notify_all()
        if not first:  # another thread is shutting down: return when it is done
            rt.finished.wait(timeout=30)
            return
        if self.worker_name is not None and rt.ns is not None:
            with transport.NameServerClient(rt.ns.host, rt.ns.port, rt.party) as ns:
                try:
                    ns.remove(self.worker_name)
                except CommunicationError as exc:
                    self.logger.debug("could not unregister %s: %s", self.worker_name, exc)
        if rt.server is not None:
            rt.server.shutdown()
        if rt.child is not None:
            rt.child.close()
        self.logger.info("worker %s shut down%s", self.worker_name,
                         f": {rt.reason}" if rt.reason else "")
        rt.stopped.set()
        rt.finished.set()

    def __enter__(self) -> "Worker":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()

    # The runtime (sockets, threads) stays behind when the worker is sent to a compute process.
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_rt"] = None
        state["logger"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.logger = log


class _Acks:
    """Which job messages (by ``seq``) arrived from one dispatcher: all up to ``upto``, and some
    above it (out of order: a reply and a push can cross)."""

    __slots__ = ("upto", "above")

    def __init__(self) -> None:
        self.upto = 0
        self.above: set[int] = set()

    def take(self, seq: int) -> bool:
        """Note ``seq``; False if it arrived before (a copy)."""
        if seq <= self.upto or seq in self.above:
            return False
        self.above.add(seq)
        while self.upto + 1 in self.above:
            self.upto += 1
            self.above.discard(self.upto)
        return True


class Inbox:
    """A worker's jobs, as one pure model (no threads, no I/O; the runtime locks it): what
    arrived from which dispatcher, what waits, what runs, what awaits delivery. Jobs are kept
    by ``(dispatcher, token, attempt)``; a job is *held* from its arrival until its result is
    delivered (or dropped)."""

    def __init__(self) -> None:
        self.acks: collections.OrderedDict[str, _Acks] = collections.OrderedDict()
        self.queue: collections.deque[JobMessage] = collections.deque()  # arrived, not started
        self.holding: dict[tuple, dict] = {}
        self.current: JobMessage | None = None
        self.results: collections.deque[tuple[tuple, dict]] = collections.deque()

    @staticmethod
    def key(job: JobMessage) -> tuple:
        return job.key

    def accept(self, job: JobMessage) -> bool:
        """A checked job message arrived; False if it is a copy of one that did."""
        dispatcher = job.dispatcher
        acks = self.acks.get(dispatcher)
        if acks is None:
            acks = self.acks[dispatcher] = _Acks()
            while len(self.acks) > _DISPATCHERS_KEPT:
                self.acks.popitem(last=False)
        self.acks.move_to_end(dispatcher)
        if not acks.take(job.seq) or self.key(job) in self.holding:
            return False
        self.holding[self.key(job)] = job
        self.queue.append(job)
        return True

    def cancel(self, dispatcher: str, keys: Any) -> list[JobMessage]:
        """Drop the jobs of ``keys`` (``[token, attempt]`` pairs) not started; returns them."""
        dropped = []
        for pair in keys if isinstance(keys, (list, tuple)) else ():
            if not (isinstance(pair, (list, tuple)) and len(pair) == 2):
                continue
            job = self.holding.get((dispatcher, *pair))
            if job is not None and job in self.queue:
                self.queue.remove(job)
                del self.holding[self.key(job)]
                dropped.append(job)
        return dropped

    def report(self, dispatcher: str | None, exclude: Any = (), leaving: bool = False) -> dict:
        """What this worker holds from ``dispatcher`` (a :class:`~ultrarun.protocol.Report`,
        on the wire)."""
        acks, current = self.acks.get(dispatcher), self.current
        return Report(acks.upto if acks else 0,
                      frozenset((t, a) for (d, t, a) in self.holding
                                if d == dispatcher and (d, t, a) not in exclude),
                      current is not None,
                      (None if current is None or current.dispatcher != dispatcher
                       else (current.token, current.attempt)), leaving).to_wire()

    def hand_back(self) -> list[JobMessage]:
        """Leaving: drop the jobs not started (their dispatchers run them elsewhere)."""
        dropped = list(self.queue)
        self.queue.clear()
        for job in dropped:
            self.holding.pop(self.key(job), None)
        return dropped

    def start(self) -> JobMessage | None:
        """The next job to run (it becomes ``current``), or None."""
        self.current = self.queue.popleft() if self.queue else None
        return self.current

    def finish(self, payload: dict) -> None:
        """``current`` ended; its result waits for delivery."""
        self.results.append((self.key(self.current), payload))
        self.current = None

    def take_results(self) -> tuple[str, list] | None:
        """The results waiting for the dispatcher of the oldest one."""
        if not self.results:
            return None
        dispatcher = self.results[0][0][0]
        batch = [item for item in self.results if item[0][0] == dispatcher]
        for item in batch:
            self.results.remove(item)
        return dispatcher, batch

    def delivered(self, keys: Any) -> None:
        """Results delivered (or dropped): the jobs are no longer held."""
        for key in keys:
            self.holding.pop(key, None)

    @property
    def idle(self) -> bool:
        return not self.holding and not self.queue


class _Runtime:
    """Everything a running worker holds; absent from a worker that is not running.

    ``lock`` guards the :class:`Inbox` and the uplink's flags; ``cond`` wakes the loop and the
    uplink.
    """

    def __init__(self, worker: Worker, concurrent_type: str):
        self.worker = worker
        self.concurrent_type = concurrent_type
        self.party: transport.Party | None = None  # made at start-up
        self.ns: transport.NameServerClient | None = None  # the uplink's, after start-up
        self.server: transport.Server | None = None
        self.uri = ""
        self.child: LimitedCaller | None = None
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.stop = threading.Event()
        self.stopped = threading.Event()  # the loop has ended
        self.finished = threading.Event()  # shutdown() has finished
        self.closed = False
        self.reason = ""  # why it shut down by itself
        self.inbox = Inbox()
        self.hello = True  # the uplink should say hello
        self.hellos = 0  # hellos the uplink tried
        self.leaving = False  # takes no new job (Worker.leave)
        self.meet: str | None = None  # a dispatcher that pinged us: connect to it
        self.dispatcher: str | None = None  # the one the uplink talks to
        self.jobs_done = 0
        self.failures: set[str] = set()  # kinds of failure logged already
        self.started = time.time()
        self.idle_since = time.monotonic()
        self.last_contact = time.monotonic()
        self._conn_to: transport.Connection | None = None  # the uplink's, to self.dispatcher

    @property
    def current(self) -> JobMessage | None:
        return self.inbox.current

    # ----------------------------------------------------------------- jobs (any thread)
    def accept(self, message: Any, source: str) -> None:
        """A job arrived (pushed, or in an answer): keep it unless it is a copy."""
        try:
            job = JobMessage.from_wire(message)
        except JobError as exc:
            self.worker.logger.warning("worker %s refused a malformed job from %s: %s",
                                       self.worker.worker_name, source, exc)
            return
        with self.lock:
            self.last_contact = time.monotonic()
            if not self.closed and self.inbox.accept(job):
                if self.leaving:  # taken (acknowledged) and handed back at once
                    self.inbox.hand_back()
                    self.hello = True
                self.cond.notify_all()

    def cancel(self, dispatcher: str, keys: Any) -> None:
        """The dispatcher gave these jobs elsewhere: drop those not started."""
        with self.lock:
            dropped = self.inbox.cancel(dispatcher, keys)
        for job in dropped:
            self.worker.logger.info("worker %s dropped job %s: its dispatcher gave it to "
                                    "another worker", self.worker.worker_name, job.id)

    def report(self, dispatcher: str | None, exclude: Any = ()) -> dict:
        with self.lock:
            return self.inbox.report(dispatcher, exclude, self.leaving)

    def next_job(self, timeout: float | None) -> JobMessage | None:
        """The loop's next job, or None on shutdown or after ``timeout`` seconds idle (the
        clock stops while the worker holds a job or a result to deliver)."""
        with self.lock:
            while not self.stop.is_set():
                job = None if self.leaving else self.inbox.start()
                if job is not None:
                    return job
                if (timeout is None or not self.inbox.idle or self.leaving
                        or not (self.jobs_done or self.worker.timeout_before_first_job)):
                    self.cond.wait()
                    continue
                left = self.idle_since + timeout - time.monotonic()
                if left <= 0:
                    return None
                self.cond.wait(left)
        return None

    def done(self, payload: dict) -> None:
        """The loop finished its job: the result goes to the uplink."""
        with self.lock:
            self.inbox.finish(payload)
            self.jobs_done += 1
            self.cond.notify_all()

    # ----------------------------------------------------------------------- the uplink
    def uplink_loop(self) -> None:
        """The one thread that calls out: results, hellos and the name server."""
        worker = self.worker
        next_check = time.monotonic() + settings.PING_INTERVAL
        try:
            while not self.stop.is_set():
                with self.lock:
                    while not (self.inbox.results or self.hello or self.meet
                               or self.stop.is_set()):
                        if not self.cond.wait(max(0.0, next_check - time.monotonic())):
                            break
                    batch = self.inbox.take_results()
                    hello, self.hello = self.hello, False
                    meet, self.meet = self.meet, None
                if self.stop.is_set():
                    break
                if meet:
                    self._connect(meet)
                if batch:
                    self._deliver(*batch)
                if hello:
                    self._hello()
                    with self.lock:
                        self.hellos += 1
                        self.cond.notify_all()
                if time.monotonic() >= next_check:
                    self._maintain()
                    next_check = time.monotonic() + settings.PING_INTERVAL
        except Exception:
            worker.logger.exception("worker %s: the uplink failed", worker.worker_name)
        finally:
            self._drop()
            if self.ns is not None:
                self.ns.close()

    def _conn(self, uri: str) -> transport.Connection:
        """The connection to the dispatcher at ``uri`` (one dispatcher at a time)."""
        if self._conn_to is None or self.dispatcher != uri:
            self._drop()
            self._conn_to = transport.Connection(uri, self.party, what="the dispatcher")
            self.dispatcher = uri
        return self._conn_to

    def _drop(self, uri: str | None = None) -> None:
        conn, self._conn_to = self._conn_to, None
        if conn is not None:
            conn.close()

    def _connect(self, uri: str) -> None:
        """A dispatcher found us: say hello on the connection now, not when the first result
        is due, so it knows the connection is ours (and notices at once when it closes)."""
        try:
            self._sync(uri, [])
        except CommunicationError as exc:  # the first call will try again and say so
            self._drop(uri)
            self.worker.logger.debug("could not connect to %s yet: %s", uri, exc)

    def _sync(self, uri: str, results: list) -> bool:
        """One call to the dispatcher at ``uri``; False if it failed (logged)."""
        keys = {key for key, _ in results}
        report = self.report(uri, exclude=keys)
        answer = self._conn(uri).call("sync", self.worker.worker_name, self.uri, report,
                                      [payload for _, payload in results])
        with self.lock:
            self.inbox.delivered(keys)
            self.last_contact = time.monotonic()
            if results and self.inbox.idle:
                self.idle_since = time.monotonic()
                self.cond.notify_all()  # the idle clock starts again
        answer = SyncAnswer.from_wire(answer)
        for job in answer.jobs:
            self.accept(job, uri)
        if answer.cancel:
            self.cancel(uri, answer.cancel)
        return True

    def _deliver(self, uri: str, results: list) -> None:
        """Deliver results to their dispatcher, trying again while it is still the run's."""
        worker = self.worker
        give_up = time.monotonic() + _patience()
        waiter = threading.Event()
        for attempt in itertools.count():
            try:
                self._sync(uri, results)
                return
            except AuthenticationError as exc:
                worker.logger.error("worker %s: the dispatcher refused our results: %s",
                                    worker.worker_name, exc)
                break
            except CommunicationError as exc:
                self._drop(uri)
                if self.stop.is_set():
                    return
                worker.logger.warning("worker %s could not deliver %d result(s) (try %d): %s",
                                      worker.worker_name, len(results), attempt + 1, exc)
                if attempt % 3 == 2 and self._replaced(uri):
                    break
                if time.monotonic() >= give_up:
                    break
                waiter.wait(min(0.1 * 2 ** attempt, settings.PING_INTERVAL))
        worker.logger.error("worker %s dropped %d result(s): their dispatcher %s is gone",
                            worker.worker_name, len(results), uri)
        with self.lock:
            self.inbox.delivered(key for key, _ in results)
            self.idle_since = time.monotonic()
            self.hello = True
            self.cond.notify_all()

    def _replaced(self, uri: str) -> bool:
        """Whether the name server names another dispatcher (or none) for the run."""
        try:
            return self.ns.lookup(transport.dispatcher_name(self.worker.run_id)) != uri
        except CommunicationError:
            return False  # cannot tell: keep trying

    def _hello(self) -> None:
        """Tell the run's dispatcher (if one is registered) what this worker holds."""
        try:
            uri = self.ns.lookup(transport.dispatcher_name(self.worker.run_id))
        except CommunicationError as exc:
            self.worker.logger.warning("worker %s: the name server did not answer: %s",
                                       self.worker.worker_name, exc)
            return
        if uri is None:
            self.worker.logger.info("worker %s: no dispatcher of run %s yet; waiting to be "
                                    "found", self.worker.worker_name, self.worker.run_id)
            return
        try:
            self._sync(uri, [])
        except CommunicationError as exc:
            self._drop(uri)
            self.worker.logger.debug("dispatcher at %s did not take our hello: %s", uri, exc)

    def _maintain(self) -> None:
        """Every PING_INTERVAL, busy or not: register again if a restarted name server forgot
        this worker; say hello if no dispatcher was heard of for two intervals."""
        worker = self.worker
        try:
            if self.ns.lookup(worker.worker_name) is None:
                self.ns.register(worker.worker_name, self.uri)
                worker.logger.info("worker %s registered again (the name server forgot it)",
                                   worker.worker_name)
                self.hello = True
        except CommunicationError as exc:
            worker.logger.debug("name server unreachable: %s", exc)
        if time.monotonic() - self.last_contact > 2 * settings.PING_INTERVAL:
            self.hello = True


@transport.expose
class WorkerService:
    """What the dispatcher (and ``ultrarun status``) may call on a worker. Everything that
    comes in is checked; malformed input is refused and logged, and the worker keeps serving."""

    def __init__(self, worker: Worker, rt: _Runtime):
        self._worker = worker
        self._rt = rt

    @transport.oneway
    def start_computation(self, job: Any) -> None:
        self._rt.accept(job, "a push")

    @transport.oneway
    def cancel(self, dispatcher: Any, keys: Any) -> None:
        if type(dispatcher) is str:
            self._rt.cancel(dispatcher, keys)

    def ping(self, dispatcher: Any = None) -> dict:
        """The worker's state and its report for ``dispatcher``; a dispatcher that found us
        passes its URI, and we connect back now rather than when the first result is due."""
        rt = self._rt
        if type(dispatcher) is not str:
            dispatcher = None
        if dispatcher is not None:
            with rt.lock:
                rt.last_contact = time.monotonic()
                if dispatcher != rt.dispatcher:
                    rt.meet = dispatcher
                    rt.cond.notify_all()
        return {**self.status(), "report": rt.report(dispatcher)}

    def status(self) -> dict:
        rt = self._rt
        current = rt.current
        return {"name": self._worker.worker_name, "host": socket.gethostname(), "pid": os.getpid(),
                "busy": current is not None,
                "job": None if current is None else {"id": current.id,
                                                     "budget": current.kwargs.get("budget")},
                "jobs_done": rt.jobs_done, "queued": len(rt.inbox.queue),
                "holding": len(rt.inbox.holding),
                "dispatcher": rt.dispatcher, "started": rt.started,
                "concurrent_type": rt.concurrent_type}

    @transport.oneway
    def shutdown(self) -> None:
        # Not from the server's own thread: shutting the server down joins that thread.
        threading.Thread(target=self._worker.shutdown, daemon=True).start()


# ----------------------------------------------------------------------------- compute calls
@functools.lru_cache(maxsize=64)
def _signature(func: Callable[..., Any]) -> tuple[frozenset[str], bool]:
    """``func``'s parameter names and whether it takes ``**kwargs``; cached, as reading a
    signature costs more than a short job's bookkeeping."""
    params = inspect.signature(func).parameters
    return (frozenset(params),
            any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()))


def _parameters(func: Callable[..., Any]) -> tuple[frozenset[str], bool]:
    try:
        return _signature(func)
    except TypeError:  # an unhashable callable
        return _signature.__wrapped__(func)


def _accepted(func: Callable[..., Any], kwargs: dict) -> dict:
    """The subset of ``kwargs`` that ``func`` accepts (all of them if it takes ``**kwargs``)."""
    names, var_keyword = _parameters(func)
    if var_keyword:
        return kwargs
    return {k: v for k, v in kwargs.items() if k in names}


def _call_eval_func(func: Callable[..., Any], **kwargs: Any) -> Any:
    if "config" in _parameters(func)[0]:
        return func(**_accepted(func, kwargs))
    return func(kwargs["config"], kwargs["budget"])


#: what a compute came to: status, result (a success's), exception text and info (a failure's)
_Outcome = tuple[JobStatus, "dict | None", "str | None", "dict | None"]


def _run_compute(worker: Worker, kwargs: dict) -> _Outcome:
    """Call compute with the keywords it accepts; never raises."""
    full = {"config_info": {}, "working_directory": ".", **kwargs}
    try:
        raw = worker.compute(**_accepted(worker.compute, full))
        return JobStatus.SUCCESS, validate_result(raw), None, None
    except ResultError as exc:
        return JobStatus.CRASHED, None, f"ResultError: {exc}", None
    except JobFailed as exc:
        status = exc.status if isinstance(exc.status, JobStatus) and exc.status.failed else \
            JobStatus.CRASHED
        try:
            info = None if exc.info is None else to_plain(dict(exc.info), "JobFailed info")
        except (ResultError, TypeError, ValueError) as bad:
            return JobStatus.CRASHED, None, f"ResultError: {bad}", None
        return status, None, str(exc), info
    except MemoryError:
        return JobStatus.MEMOUT, None, traceback.format_exc(), None
    except (Exception, SystemExit):
        return JobStatus.CRASHED, None, traceback.format_exc(), None


def _compute_in_child(worker: Worker, kwargs: dict) -> tuple:
    """What the compute child runs (see :mod:`ultrarun.limits`): one job, as plain data."""
    status, result, exception, info = _run_compute(worker, kwargs)
    return status.value, result, exception, info


def _compute_limited(caller: LimitedCaller, kwargs: dict) -> _Outcome:
    """One job in the worker's compute child, under its limits."""
    out = caller.call(kwargs)
    if out.status is JobStatus.SUCCESS:
        status, result, exception, info = out.value
        return JobStatus(status), result, exception, info
    info = out.info or {}
    return out.status, None, info.get("traceback") or info.get("error") or out.status.name, None


__all__ = ["Worker"]
