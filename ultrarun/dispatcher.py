"""The dispatcher: runs the run's jobs on its workers and reports every job exactly once.

It drives the pool model (:mod:`ultrarun._pool`): every event goes into the model under one
lock, and what the model says to send is sent outside it, through a per-worker outbox drained by
a small pool of sender threads (one at a time per worker). How workers are found, what a
``sync`` call carries and which thread may do what: docs/architecture.md ("The pool model and
the worker's word", "Threads").
"""
from __future__ import annotations

import collections
import concurrent.futures
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from . import transport
from ._pool import Pool
from .settings import settings
from .errors import (AuthenticationError, CommunicationError, CommunicationTimeout,
                     ConfigurationError, JobError, ResultError, UltrarunError)
from .executor import Durations, Executor, RetryPolicy
from .job import Incumbents, Job, JobStatus, to_plain
from .protocol import Report, ResultMessage, SyncAnswer
from .security import resolve_secret

log = logging.getLogger(__name__)

_SENDERS = 16  # threads that talk to workers; a stopped worker holds one for a timeout
# what status()["counters"] reports: calls served (syncs), made to workers (jobs pushed, pings,
# probes of names found in the name server, cancels) and to the name server (listings)
_COUNTERS = ("syncs", "jobs", "pings", "probes", "cancels", "listings")
_LIST_GAP = 1.0  # seconds: a triggered listing of the name server comes no sooner after the last
_PING_CHECKS = 10  # times per ping interval the monitor looks for workers due a ping


@dataclass(eq=False)
class _Link:
    """The dispatcher's connection to one worker and what waits to be sent on it, in order."""

    name: str
    uri: str
    outbox: collections.deque = field(default_factory=collections.deque)
    conn: transport.Connection | None = None  # used by the one thread draining the outbox
    sending: bool = False
    pinging: bool = False  # a ping (or probe) is on its way: no second one behind it
    probing: bool = False  # found in the name server, not in the pool yet
    closed: bool = False


class Dispatcher(Executor):
    """Runs jobs on the run's Pyro workers: the executor (``ultrarun.executor.Executor``) the
    master uses by default. Calls ``new_result_callback(job)`` once per job.

    Args:
        new_result_callback (Callable[[Job], Any]): Called with each finished
            [Job][ultrarun.job.Job].
        run_id (Any): The run whose workers to use.
        ping_interval (float | None): Seconds between listings of the name server; a worker
            not heard from (no call, no ping answer) for this long is pinged (default: the
            PING_INTERVAL setting, 10).
        nameserver (str): The run's name server's address.
        nameserver_port (int | None): Its port (None: 9090).
        host (str | None): Address the dispatcher listens on (default: the one facing the name
            server).
        queue_callback (Callable[[int], Any] | None): Called with the number of workers
            whenever the pool changes.
        secret (str | None): The run secret.
        max_retries (int): A job whose worker was lost runs again up to this many times, then
            is LOST.
        retry_on (Any): Statuses retried too (CRASHED, TIMEOUT, MEMOUT).
        retry (RetryPolicy | None): Both at once (``ultrarun.executor.RetryPolicy``).
        timeout (float | None): Seconds a remote call may take; a worker that misses two pings
            in a row (or whose process is gone) is lost, so a stopped worker loses its jobs
            at most 2.1 x ping_interval + timeout after it last spoke.
        prefetch (int): Jobs a busy worker may hold besides the one it runs. With short jobs,
            1 hides the result's round trip.
        logger (Logger | None): The logger to use (default ``ultrarun.dispatcher``).
        clock (Any): Gives ``monotonic()`` and ``time()``: the ``time`` module; tests pass a
            fake one.
        tls (Any): A directory of certificates (``ultrarun certs``): two-way TLS for the
            process.
    """

    def __init__(self, new_result_callback: Callable[[Job], Any], run_id: Any = "0",
                 ping_interval: float | None = None, nameserver: str = "localhost",
                 nameserver_port: int | None = None, host: str | None = None,
                 queue_callback: Callable[[int], Any] | None = None, *, secret: str | None = None,
                 max_retries: int = RetryPolicy.max_retries, retry_on: Any = (), retry: RetryPolicy | None = None,
                 timeout: float | None = None, prefetch: int = 0,
                 logger: logging.Logger | None = None, clock: Any = time, tls: Any = None):
        transport.configure_tls(tls)
        if ping_interval is None:
            ping_interval = settings.PING_INTERVAL
        if not ping_interval > 0:
            raise ConfigurationError(f"ping_interval must be > 0, got {ping_interval!r}")
        self.pool = Pool(retry or RetryPolicy(max_retries, frozenset(retry_on)), prefetch,
                         clock=clock, durations=Durations())
        self.new_result_callback = new_result_callback
        self.queue_callback = queue_callback
        self.run_id = transport.check_run_id(run_id)
        self.ping_interval = float(ping_interval)
        self.nameserver = nameserver
        self.nameserver_port = nameserver_port
        self.host = host
        self.secret = secret
        self.timeout = float(timeout) if timeout else settings.COMMTIMEOUT
        self.logger = logger or log

        self._lock = threading.Lock()
        self._links: dict[str, _Link] = {}
        self._suspects: dict[str, float] = {}  # name -> when to probe it again
        self._best = Incumbents()
        self._n_workers = 0
        # what the dispatcher did, for status(): calls served and made, by kind
        self._counters: collections.Counter = collections.Counter()
        self._callbacks: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        self._discover_now = threading.Event()
        self._started = False
        self._threads: list[threading.Thread] = []
        self._server: transport.Server | None = None
        self._senders: concurrent.futures.ThreadPoolExecutor | None = None
        self._party: transport.Party | None = None  # made by start()
        self.uri: str | None = None

    @property
    def prefetch(self) -> int:
        return self.pool.prefetch

    @property
    def where(self) -> str:
        """The name server it finds its workers through."""
        return (f"{self.nameserver or '127.0.0.1'}:"
                f"{self.nameserver_port or transport.DEFAULT_NAMESERVER_PORT}")

    @property
    def retry(self) -> RetryPolicy:  # type: ignore[override]
        return self.pool.retry

    @retry.setter
    def retry(self, policy: RetryPolicy) -> None:
        self.pool.retry = policy

    @property
    def durations(self) -> Durations:  # type: ignore[override]
        return self.pool.durations

    # ------------------------------------------------------------------------ lifecycle
    def start(self) -> "Dispatcher":
        """Listen, register with the name server and start the threads; returns at once."""
        with self._lock:
            if self._started:
                return self
            self._started = True
        self._party = transport.Party(resolve_secret(self.secret, self.nameserver_port),
                                      timeout=self.timeout)
        ns = transport.NameServerClient(self.nameserver, self.nameserver_port, self._party)
        try:
            ns.wait(settings.NAMESERVER_WAIT, on_wait=lambda s: self.logger.warning(
                "dispatcher of run %s: waiting %.0fs for the name server at %s:%s",
                self.run_id, s, ns.host, ns.port))
            bind = self.host or transport.local_address_towards(ns.host)
            self._server = transport.Server(DispatcherService(self), self._party, host=bind,
                                            on_peer_closed=self._hung_up)
            self.uri = self.pool.address = self._server.start()
            ns.register(transport.dispatcher_name(self.run_id), self.uri)
        except BaseException:
            ns.close()
            self.shutdown()
            raise
        self._senders = concurrent.futures.ThreadPoolExecutor(_SENDERS, "dispatch-send")
        for target, name, arg in ((self._callback_loop, "dispatcher-callbacks", None),
                                  (self._monitor_loop, "dispatcher-monitor", ns)):
            thread = threading.Thread(target=target, name=name, daemon=True,
                                      args=() if arg is None else (arg,))
            thread.start()
            self._threads.append(thread)
        self.logger.info("dispatcher of run %s at %s", self.run_id, self.uri)
        return self

    def run(self) -> None:
        """Start (if needed) and block until ``shutdown`` (HpBandSter runs this in a thread)."""
        self.start()
        self._stop.wait()

    def shutdown(self, shutdown_workers: bool = False) -> None:
        """Stop dispatching; queued and running jobs are reported as CANCELLED. Idempotent.

        Args:
            shutdown_workers (bool): Ask the workers to shut down too.
        """
        with self._lock:
            if self._stop.is_set():
                return
            self._stop.set()
        self._discover_now.set()
        if shutdown_workers:
            self.shutdown_all_workers()
        for thread in self._threads:
            if thread.name == "dispatcher-monitor" and thread is not threading.current_thread():
                thread.join(timeout=2 * self.timeout)
        if self.uri is not None:
            with transport.NameServerClient(self.nameserver, self.nameserver_port,
                                            self._party) as ns:
                try:
                    name = transport.dispatcher_name(self.run_id)
                    if ns.lookup(name) == self.uri:
                        ns.remove(name)
                except CommunicationError as exc:
                    self.logger.debug("could not unregister the dispatcher: %s", exc)
        if self._server is not None:
            self._server.shutdown()
        with self._lock:
            self.pool.close()
            self._after()
            links = list(self._links.values())
            self._links.clear()
        self._callbacks.put(None)
        for thread in self._threads:
            if thread.name == "dispatcher-callbacks" and thread is not threading.current_thread():
                thread.join(timeout=10)
        if self._senders is not None:
            self._senders.shutdown(wait=False, cancel_futures=True)
        for link in links:
            self._close_link(link)
        self.logger.info("dispatcher of run %s shut down", self.run_id)

    # ----------------------------------------------------------------------------- jobs
    def submit_job(self, id: Any, **kwargs: Any) -> Job:
        """Queue a job; an idle worker gets it at once.

        Args:
            id (Any): The caller's identifier of the job (a config id for the master).
            **kwargs: The compute's arguments (``config``, ``budget``, ``working_directory``,
                ...), converted to plain data here: numpy values never travel.

        Returns:
            Job: The queued job.
        """
        job = Job(id=to_plain(id, "job id"), kwargs=to_plain(kwargs, "job kwargs"))
        size = transport.encoded_size(job.kwargs)
        if size > settings.MAX_MESSAGE_SIZE // 2:
            raise ResultError(f"job kwargs take {size} bytes on the wire, more than half the "
                              f"MAX_MESSAGE_SIZE setting ({settings.MAX_MESSAGE_SIZE}): pass a "
                              "path to the data instead, or raise ULTRARUN_MAX_MESSAGE_SIZE "
                              "for every party of the run")
        with self._lock:
            if self._stop.is_set():
                raise UltrarunError("the dispatcher is shut down")
            self.pool.submit(job)
            drain = self._after()
        self._start_draining(drain)
        return job

    def cancel_queued_jobs(self, ids: Any = None) -> int:
        """Report jobs that have not started yet as CANCELLED. A running job cannot be
        recalled: it finishes.

        Args:
            ids (Any): The ids of the jobs to cancel (None: all queued jobs).

        Returns:
            int: How many were cancelled.
        """
        with self._lock:
            n = self.pool.cancel_queued(ids)
            self._after()
        return n

    def number_of_workers(self) -> int:
        with self._lock:
            return len(self.pool.workers)

    def expected_start(self) -> float | None:
        """When (``time.monotonic()``) a job submitted now would start, at the pace of the
        jobs so far (None before the first result). The master starts no job that would end
        after its deadline."""
        with self._lock:
            return self.pool.expected_start()

    # -------------------------------------------------------------- the model's effects
    def _after(self) -> list[_Link]:
        """Caller holds the lock: after any change to the pool, queue what it says to send,
        hand finished jobs to the callback thread, log what happened. Returns the links that
        need a sending thread."""
        drain = [self._enqueue(name, ("job", message)) for name, message in self.pool.assign()]
        gone = []
        for event in self.pool.take_events():
            self._log_event(event)
            if event[0] in ("lost", "left"):
                gone.append(event[1])
        for job in self.pool.take_finished():
            self._best.offer_job(job)
            self._callbacks.put(("job", job))
        for name in gone:  # the links of workers that left the pool (not O(W) per event)
            link = self._links.get(name)
            state = self.pool.workers.get(name)
            if link is None or link.probing or (state is not None and state.uri == link.uri):
                continue
            del self._links[name]
            link.closed = True
            if not link.sending:
                self._close_link(link)
        if len(self.pool.workers) != self._n_workers:
            self._n_workers = len(self.pool.workers)
            self._callbacks.put(("pool", self._n_workers))
            if not self._n_workers and self.pool.queue:  # no silent wait for workers
                self.logger.warning("no worker left in run %s: %d jobs wait for a worker to "
                                    "register at %s", self.run_id, len(self.pool.queue),
                                    self.where)
        return [link for link in drain if link is not None]

    def _log_event(self, event: tuple) -> None:
        kind = event[0]
        if kind == "requeued":
            _, job, worker, reason = event
            self.logger.warning("re-queueing job %s (attempt %d): worker %s %s", job.id,
                                job.attempt, worker, reason)
        elif kind == "late":
            _, worker, token, attempt = event
            self.logger.warning("dropping a late result from %s for job token %s attempt %s "
                                "(it was re-queued or finished meanwhile)", worker, token,
                                attempt)
        elif kind in ("lost", "left"):
            _, worker, reason = event
            self.logger.log(logging.WARNING if kind == "lost" else logging.INFO,
                            "worker %s left the pool: %s", worker, reason)

    def _enqueue(self, name: str, item: tuple) -> _Link | None:
        """Caller holds the lock: queue ``item`` on the worker's link; returns the link if it
        needs a sending thread."""
        link = self._links.get(name)
        if link is None:
            state = self.pool.workers.get(name)
            if state is None:
                return None
            link = self._links[name] = _Link(name, state.uri)
        link.outbox.append(item)
        if link.sending:
            return None
        link.sending = True
        return link

    def _start_draining(self, links: list[_Link]) -> None:
        for link in links:
            try:
                self._senders.submit(self._drain, link)
            except (RuntimeError, AttributeError):  # shutting down
                with self._lock:
                    link.sending = False

    def _drain(self, link: _Link) -> None:
        """Send what the link's outbox holds, in order (one thread per link at a time)."""
        while True:
            with self._lock:
                if link.closed or not link.outbox:
                    link.sending = False
                    closed = link.closed
                    break
                item = link.outbox.popleft()
            try:
                self._deliver(link, item)
            except Exception:  # never let the pool swallow a bug silently
                self.logger.exception("talking to %s failed", link.name)
        if closed:
            self._close_link(link)

    def _deliver(self, link: _Link, item: tuple) -> None:
        kind, payload = item
        if link.conn is None:
            link.conn = transport.Connection(link.uri, self._party, what=link.name)
        with self._lock:
            self._counters[kind + "s"] += 1
        try:
            if kind == "job":
                link.conn.send("start_computation", payload)
                return
            if kind == "cancel":
                link.conn.send("cancel", self.uri, payload)
                return
            answer = link.conn.call("ping", self.uri)
        except CommunicationTimeout as exc:
            self._failed(link, kind, str(exc), silent=True)
            return
        except CommunicationError as exc:  # refused, closed, or the secrets differ
            if isinstance(exc, AuthenticationError):
                self.logger.error("worker %s refused us: %s", link.name, exc)
            self._failed(link, kind, str(exc), refused="refused" in str(exc).lower())
            return
        try:
            report = Report.from_wire(answer.get("report") if isinstance(answer, dict)
                                      else None)
        except ValueError as exc:
            self.logger.error("worker %s sent a malformed report: %s", link.name, exc)
            return
        with self._lock:
            link.pinging = False
            if kind == "probe":
                link.probing = False
                if self._stop.is_set() or link.closed:
                    return
                self.pool.add(link.name, link.uri)
                self._suspects.pop(link.name, None)
            resend, stale = self.pool.on_report(link.name, report, payload)
            for message in resend:
                link.outbox.append(("job", message))
            if stale:
                link.outbox.append(("cancel", [list(k) for k in stale]))
            drain = self._after()
        self._start_draining([d for d in drain if d is not link])

    def _failed(self, link: _Link, kind: str, reason: str, silent: bool = False,
                refused: bool = False) -> None:
        """A call to the worker failed. A probe: a name that does not answer is tried again
        later, one whose process is gone (refused) leaves the phone book. A worker that was
        silent is lost after two missed pings; one that refused or hung up is lost now (a job
        that could not be handed over never started)."""
        link.conn.close()
        if refused and kind == "probe":
            self.logger.info("removing stale worker %s from the name server", link.name)
            with transport.NameServerClient(self.nameserver, self.nameserver_port,
                                            self._party) as ns:
                try:
                    ns.remove(link.name)
                except CommunicationError:
                    pass
        with self._lock:
            if kind in ("ping", "probe"):
                link.pinging = False
            if kind == "probe":
                if silent:
                    self._suspects[link.name] = time.monotonic() + 6 * self.ping_interval
                self._links.pop(link.name, None)
                link.closed = True
                return
            if silent:
                self.pool.missed(link.name, reason)
            else:
                self.pool.remove(link.name, f"did not answer: {reason}", started=kind != "job")
            drain = self._after()
        self._start_draining(drain)

    @staticmethod
    def _close_link(link: _Link) -> None:
        if link.conn is not None:
            link.conn.close()

    # ---------------------------------------------------- called by workers (server thread)
    def sync(self, name: str, uri: str, report: Report, results: list[ResultMessage],
             peer: Any = None) -> dict:
        """A worker's call (on the connection at address ``peer``): its results and its
        report; the answer carries its jobs."""
        with self._lock:
            self._counters["syncs"] += 1
            if self._stop.is_set():
                return SyncAnswer().to_wire()
            jobs, stale = self.pool.on_call(name, uri, report, results, peer)
            drain = self._after()
        self._start_draining(drain)
        return SyncAnswer(tuple(jobs), tuple(stale)).to_wire()

    def status(self) -> dict:
        """A snapshot for ``ultrarun status``: workers, queue, job counts and the best loss per
        budget so far (the incumbent)."""
        with self._lock:
            best = [{"budget": b, "loss": loss, "id": self._best.ids[b]}
                    for b, loss in sorted(self._best.losses.items(), key=_budget_order)]
            counts = self.pool.counts
            return {"run_id": self.run_id, "uri": self.uri, "workers": self.pool.snapshot(),
                    "queued": len(self.pool.queue), "running": self.pool.running,
                    "finished": {s.name: n for s, n in counts.items() if isinstance(s, JobStatus)},
                    "late_results": counts["late"], "best": best,
                    "counters": {k: self._counters[k] for k in _COUNTERS}}

    # ------------------------------------------------------------- discovery and pings
    def other_runs(self) -> dict[str, int]:
        """``{run id: workers}`` of the other runs whose workers the name server lists (a
        master waiting for workers names them: a wrong run id shows). Empty if it cannot
        tell. A remote call: not for the dispatch path."""
        runs: collections.Counter = collections.Counter()
        with transport.NameServerClient(self.nameserver, self.nameserver_port, self._party) as ns:
            try:
                names = ns.list("ultrarun.")
            except CommunicationError:
                return {}
        for name in names:
            try:
                run = transport.parse_worker_name(name)["run_id"]
            except (ConfigurationError, ValueError):
                continue  # a dispatcher's name
            if run != self.run_id:
                runs[run] += 1
        return dict(sorted(runs.items()))

    def trigger_discover_worker(self) -> None:
        """Look for new workers now instead of at the next ping interval."""
        self._discover_now.set()

    def _monitor_loop(self, ns: transport.NameServerClient) -> None:
        """List the name server (new names are probed) every ping interval, and ping the
        workers not heard from for an interval (checked ``_PING_CHECKS`` times per interval).
        A trigger lists sooner, at most once per ``_LIST_GAP`` seconds, and pings nobody: what
        the monitor does per second does not grow with the calls to trigger it."""
        name = transport.dispatcher_name(self.run_id)
        step = self.ping_interval / _PING_CHECKS
        # half a step early: a silent worker is pinged every interval (every _PING_CHECKS
        # checks), one heard from at most half a step after an interval of silence
        quiet = self.ping_interval - step / 2
        next_list = next_check = 0.0
        listed_at = -float("inf")
        gap = min(_LIST_GAP, self.ping_interval)
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                listed = None
                if now >= next_list or (self._discover_now.is_set() and now >= listed_at + gap):
                    self._discover_now.clear()
                    listed_at = now
                    if now >= next_list:
                        next_list = now + self.ping_interval
                    try:
                        self._check_registration(ns, name)
                        self._counters["listings"] += 1
                        listed = ns.list(transport.worker_prefix(self.run_id))
                    except CommunicationError as exc:
                        self.logger.warning("cannot reach the name server: %s", exc)
                with self._lock:
                    drain = self._probe_new(listed) if listed else []
                    if now >= next_check:
                        drain += self._ping_quiet(quiet)
                        next_check = now + step
                self._start_draining(drain)
                wake = min(next_list, next_check)
                if self._discover_now.is_set():  # a trigger: not sooner than gap after the last
                    self._stop.wait(max(0.0, min(wake, listed_at + gap) - time.monotonic()))
                else:
                    self._discover_now.wait(max(0.0, wake - time.monotonic()))
        finally:
            ns.close()

    def _check_registration(self, ns: transport.NameServerClient, name: str) -> None:
        """Register again if a restarted name server forgot the dispatcher."""
        if ns.lookup(name) != self.uri:
            ns.register(name, self.uri)
            self.logger.info("registered again with the name server (it forgot us)")

    def _probe_new(self, listed: dict[str, str]) -> list[_Link]:
        """Caller holds the lock: probe the listed names that are not in the pool yet."""
        drain = []
        now = time.monotonic()
        for name, uri in listed.items():
            if (name not in self.pool.workers and name not in self._links
                    and self._suspects.get(name, 0) <= now):
                link = self._links[name] = _Link(name, uri, sending=True, pinging=True,
                                                 probing=True)
                link.outbox.append(("probe", self.pool.mark()))
                drain.append(link)
        return drain

    def _ping_quiet(self, quiet: float) -> list[_Link]:
        """Caller holds the lock: ping the workers not heard from for ``quiet`` seconds (a
        ping's answer repairs what differs, see the pool model; a worker's call did the same)."""
        drain = []
        for name in self.pool.due_pings(quiet):
            link = self._ping(name)
            if link is not None:
                drain.append(link)
        return drain

    def _ping(self, name: str) -> _Link | None:
        """Caller holds the lock: queue a ping of the worker unless one is on its way; returns
        the link if it needs a sending thread."""
        link = self._links.get(name)
        if link is not None and link.pinging:
            return None
        needs_thread = self._enqueue(name, ("ping", self.pool.mark()))
        self._links[name].pinging = True
        return needs_thread

    def _hung_up(self, peer: Any) -> None:
        """The server's hook: a connection closed from the other side. If a worker called on
        it, probe that worker now: a dead one refuses and loses its jobs at once, instead of
        at its next ping interval (the server's thread: bookkeeping only)."""
        with self._lock:
            name = None if self._stop.is_set() else self.pool.hung_up(peer)
            if name is None:
                return
            self.logger.info("worker %s hung up: checking on it now", name)
            link = self._ping(name)
        self._start_draining([link] if link is not None else [])

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
            except Exception:  # the master stops its run itself; another caller is told here
                self.logger.exception("the %s callback raised on %r: it is not recorded",
                                      kind, getattr(value, "id", value))

    # ---------------------------------------------------------------------- workers
    def shutdown_all_workers(self, rediscover: bool = False) -> None:
        """Ask every worker of the pool to shut down (their processes then exit).

        Args:
            rediscover (bool): List the name server afterwards, to find workers that joined
                meanwhile.
        """
        with self._lock:
            workers = [(s.name, s.uri) for s in self.pool.workers.values()]
        for name, uri in workers:
            with transport.Connection(uri, self._party, what=name) as conn:
                try:
                    conn.send("shutdown")
                except CommunicationError as exc:
                    self.logger.debug("could not shut down %s: %s", name, exc)
            with self._lock:
                self.pool.remove(name, "it was shut down", lost=False)
                self._after()
        if rediscover:
            self.trigger_discover_worker()


def _budget_order(item: tuple) -> tuple:
    """Budgets in numeric order (strings after numbers)."""
    budget = item[0]
    return (0, budget, "") if type(budget) in (int, float) else (1, 0, str(budget))


@transport.expose
class DispatcherService:
    """What workers (and ``ultrarun status``) may call on the dispatcher. Everything that comes
    in is checked; a malformed call is refused with a ``ValueError`` naming the problem."""

    def __init__(self, dispatcher: Dispatcher):
        self._dispatcher = dispatcher

    def sync(self, name: Any, uri: Any, report: Any, results: Any = ()) -> dict:
        d = self._dispatcher
        try:
            if type(name) is not str or transport.parse_worker_name(name)["run_id"] != d.run_id:
                raise ValueError(f"{name!r} is not a worker name of run {d.run_id}")
            if type(uri) is not str or not uri.startswith("PYRO:"):
                raise ValueError(f"{uri!r} is not a Pyro URI")
            parsed = Report.from_wire(report)
            if not isinstance(results, (list, tuple)):
                raise ValueError("results must be a list")
            taken = [ResultMessage.from_wire(r) for r in results]
        except (ValueError, JobError, ConfigurationError) as exc:
            d.logger.warning("refused a malformed call from %r: %s", name, exc)
            raise ValueError(f"malformed sync: {exc}") from None
        return d.sync(name, uri, parsed, taken, transport.caller_address())

    def status(self) -> dict:
        return self._dispatcher.status()


#: the front ends' keywords that make their dispatcher (docs/master.md)
PYRO_KEYWORDS = ("nameserver", "nameserver_port", "host", "ping_interval", "timeout", "prefetch",
                 "secret", "tls")


def dispatcher_for(run_id: Any, **kwargs: Any) -> Dispatcher:
    """The run's Pyro dispatcher for a master (which binds its callbacks): the one place the
    front ends, ``minimize``, the demo and compat make it, from their ``PYRO_KEYWORDS``.

    Args:
        run_id (Any): The run whose workers to use.
        **kwargs: [Dispatcher][ultrarun.dispatcher.Dispatcher]'s keywords (``nameserver``,
            ``secret``, ``prefetch``, ...); ``nameserver`` is ``127.0.0.1`` unless given.
    """
    return Dispatcher(None, run_id=run_id, **{"nameserver": "127.0.0.1", **kwargs})  # type: ignore[arg-type]


__all__ = ["Dispatcher", "dispatcher_for"]
