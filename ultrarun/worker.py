"""Long-lived workers: register with the name server, take one job at a time, push results back.

Subclass :class:`Worker` and override ``compute`` (HpBandSter's or ultraopt's signature), or hand
a plain function to :meth:`Worker.initialize`. ``concurrent_type="process"`` runs compute in a
child process, so a crashing compute cannot take the worker down and hard time and memory limits
can be enforced.
"""
from __future__ import annotations

import functools
import inspect
import itertools
import logging
import multiprocessing
import multiprocessing.connection
import os
import queue
import resource
import signal
import socket
import threading
import time
import traceback
from typing import Any, Callable

from . import _gc, transport
from .config import config
from .errors import (AuthenticationError, CommunicationError, ConfigurationError, NameServerError,
                     ResultError, UltrarunError)
from .job import JobStatus, validate_result
from .security import Credentials, resolve_secret

log = logging.getLogger(__name__)

_worker_ids = itertools.count()
_STARTUP_TIMEOUT = 120.0  # seconds a compute process may take to start
_CONCURRENT_TYPES = ("thread", "process")


class Worker:
    """A long-lived worker process (or thread) of a run.

    Args:
        run_id: the run this worker serves.
        nameserver, nameserver_port: where the run's name server listens (or call
            :meth:`load_nameserver_credentials`).
        host: address to listen on; by default the local address facing the name server.
        worker_id: distinguishes several workers in one process (``id`` is accepted too).
        timeout: seconds to wait idle for a job before shutting down (None: forever).
        debug: log every job with its arguments and outcome at INFO level (else DEBUG).
        secret: the run secret; see :func:`ultrarun.security.resolve_secret` for the default.
        time_limit, memory_limit: hard per-job limits in seconds and MiB; need
            ``concurrent_type="process"``. Exceeding them reports TIMEOUT / MEMOUT.

    Everything after ``nameserver_port`` is keyword-only: HpBandSter's fourth positional
    argument is ``logger`` and ultraopt's is ``host``, so a positional call fails loudly instead
    of being read differently (``ultrarun.compat`` keeps their orders).
    """

    def __init__(self, run_id: Any, nameserver: str | None = None,
                 nameserver_port: int | None = None, *, host: str | None = None,
                 worker_id: Any = None, timeout: float | None = None, debug: bool = False,
                 secret: str | None = None, time_limit: float | None = None,
                 memory_limit: float | None = None, id: Any = None,
                 logger: logging.Logger | None = None):
        self.run_id = transport.check_run_id(run_id)
        self.nameserver = nameserver
        self.nameserver_port = nameserver_port
        self.host = host
        self.worker_id = worker_id if worker_id is not None else id
        if self.worker_id is None:
            self.worker_id = next(_worker_ids)
        for label, value in (("timeout", timeout), ("time_limit", time_limit),
                             ("memory_limit", memory_limit)):
            if value is not None and not value > 0:
                raise ConfigurationError(f"{label} must be a positive number or None, got {value!r}")
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
        """Evaluate ``config`` at ``budget``; return ``{'loss': float, 'info': plain data}``."""
        if self._eval_func is None:
            raise NotImplementedError("subclass Worker and override compute(), "
                                      "or call worker.initialize(eval_func)")
        return _call_eval_func(self._eval_func, config_id=config_id, config=config, budget=budget,
                               working_directory=working_directory, **kwargs)

    def initialize(self, eval_func: Callable[..., Any]) -> "Worker":
        """Use a plain function ``f(config, budget) -> loss or dict`` as this worker's compute."""
        if not callable(eval_func):
            raise ConfigurationError(f"eval_func must be callable, got {type(eval_func).__name__}")
        self._eval_func = eval_func
        return self

    # ---------------------------------------------------------------------------- setup
    def load_nameserver_credentials(self, working_directory: str | os.PathLike,
                                    num_tries: int = 60, interval: float = 1) -> None:
        """Read the run's credentials file (written by the name server), waiting for it to appear
        for up to ``num_tries * interval`` seconds."""
        waiter = threading.Event()
        for attempt in range(max(1, int(num_tries))):
            try:
                creds = Credentials.read(working_directory, self.run_id)
                break
            except FileNotFoundError:
                if attempt + 1 < num_tries:
                    waiter.wait(interval)
        else:
            raise NameServerError(
                f"no credentials file for run {self.run_id} in {working_directory} after "
                f"{num_tries} tries; start the name server with --working-dir there first")
        self.nameserver, self.nameserver_port, self.secret = creds.host, creds.port, creds.secret

    def run(self, background: bool = False, concurrent_type: str = "thread") -> None:
        """Register and serve jobs. Foreground blocks until :meth:`shutdown` (or the idle timeout);
        background returns once the worker is registered and serves from a daemon thread."""
        if concurrent_type not in _CONCURRENT_TYPES:
            raise ConfigurationError(f"concurrent_type must be one of {_CONCURRENT_TYPES}, "
                                     f"got {concurrent_type!r}")
        if concurrent_type == "thread" and (self.time_limit or self.memory_limit):
            raise ConfigurationError("time_limit and memory_limit need concurrent_type='process'")
        if self._rt is not None:
            raise UltrarunError(f"worker {self.worker_name} is already running")
        rt = self._rt = _Runtime(concurrent_type)
        try:
            self._start(rt)
        except BaseException:
            self.shutdown()
            raise
        rt.thread = threading.Thread(target=self._loop, args=(rt,), name=f"worker-{self.worker_id}",
                                     daemon=True)
        rt.thread.start()
        threading.Thread(target=self._reporter_loop, args=(rt,), daemon=True,
                         name=f"worker-{self.worker_id}-reporter").start()
        if not background:
            try:
                rt.stopped.wait()
            finally:
                self.shutdown()

    def _start(self, rt: "_Runtime") -> None:
        ns_host = self.nameserver or config.HOST
        rt.secret = resolve_secret(self.secret, self.nameserver_port)
        rt.ns = transport.NameServerClient(ns_host, self.nameserver_port, rt.secret)
        rt.ns.wait(timeout=config.NAMESERVER_WAIT)
        bind = self.host or transport.local_address_towards(ns_host)
        rt.server = transport.Server(WorkerService(self, rt), rt.secret, host=bind)
        rt.uri = rt.server.start()
        self.worker_name = transport.worker_name(self.run_id, socket.gethostname(), os.getpid(),
                                                 self.worker_id)
        rt.ns.register(self.worker_name, rt.uri)
        if rt.concurrent_type == "process":
            rt.child = _ComputeProcess(self, self.time_limit, self.memory_limit)
        self.logger.info("worker %s serving at %s", self.worker_name, rt.uri)

    # ------------------------------------------------------------------------- the loop
    def _loop(self, rt: "_Runtime") -> None:
        try:
            job = self._hello(rt)  # first: the dispatcher counts us before the collection
            with _gc.frozen_startup_objects():
                while not rt.stop.is_set():
                    if job is None:
                        job = self._wait_for_job(rt)
                        if job is None:  # idle timeout or shutdown
                            break
                    payload = self._execute(rt, job)
                    if rt.stop.is_set():
                        break
                    if rt.jobs.empty():
                        job = self._report(rt, job, payload)  # the answer may carry the next job
                    else:  # a prefetched job waits: run it while the result travels
                        rt.outbox.put((job, payload))
                        job = None
        except Exception:
            self.logger.exception("worker %s failed", self.worker_name)
        finally:
            rt.outbox.put(None)
            rt.stopped.set()

    def _reporter_loop(self, rt: "_Runtime") -> None:
        """Sends the results handed over while the worker already computes its next job."""
        while True:
            item = rt.outbox.get()
            if item is None or rt.stop.is_set():
                return
            if isinstance(item, str):  # a new dispatcher: connect before the first result
                try:
                    with transport.remote_call("connect to the dispatcher"):
                        rt.dispatcher_proxy(item)._pyroBind()
                except CommunicationError as exc:  # reporting will retry and say so
                    self.logger.debug("could not connect to %s yet: %s", item, exc)
                continue
            try:
                following = self._report(rt, *item)
            except Exception:
                self.logger.exception("worker %s could not report a result", self.worker_name)
                continue
            if following is not None:
                rt.jobs.put(following)

    def _wait_for_job(self, rt: "_Runtime") -> dict | None:
        """The next job, or None after the idle timeout or on shutdown. While idle, check every
        PING_INTERVAL that the name server still knows us (it may have been restarted)."""
        idle_until = None if self.timeout is None else time.monotonic() + self.timeout
        while not rt.stop.is_set():
            wait = config.PING_INTERVAL
            if idle_until is not None:
                wait = min(wait, idle_until - time.monotonic())
            try:
                return rt.jobs.get(timeout=max(wait, 0.0))
            except queue.Empty:
                pass
            if idle_until is not None and time.monotonic() >= idle_until:
                self.logger.info("worker %s idle for %ss: shutting down", self.worker_name,
                                 self.timeout)
                return None
            job = self._check_registration(rt)
            if job is not None:
                return job
        return None

    def _check_registration(self, rt: "_Runtime") -> dict | None:
        """Register again if a restarted name server forgot us, and say hello again."""
        try:
            if rt.ns.lookup(self.worker_name) is not None:
                return None
            rt.ns.register(self.worker_name, rt.uri)
        except CommunicationError:
            return None  # the name server is down: try again later
        self.logger.info("worker %s registered again (the name server forgot it)",
                         self.worker_name)
        return self._hello(rt)

    def _execute(self, rt: "_Runtime", job: dict) -> dict:
        kwargs = dict(job["kwargs"])
        kwargs["config_id"] = job["id"]
        rt.current = job
        started = time.time()
        level = logging.INFO if self.debug else logging.DEBUG
        self.logger.log(level, "worker %s starts job %s with %s", self.worker_name, job["id"],
                        job["kwargs"])
        if rt.child is not None:
            status, result, exception = rt.child.run(kwargs)
        else:
            status, result, exception = _run_compute(self, kwargs)
        rt.current = None
        rt.jobs_done += 1
        self.logger.log(level, "worker %s finished job %s: %s %s", self.worker_name, job["id"],
                        status.name, result if exception is None else exception)
        return {"worker": self.worker_name, "uri": rt.uri, "status": status.value,
                "result": result, "exception": exception, "started": started,
                "finished": time.time()}

    def _report(self, rt: "_Runtime", job: dict, payload: dict) -> dict | None:
        """Send a result; the answer may carry the next job. Retries are safe: the dispatcher
        keeps only the first copy of a result."""
        waiter = threading.Event()
        key = (job["token"], job["attempt"])
        for attempt in range(3):
            try:
                proxy = rt.dispatcher_proxy(job["dispatcher"])
                with transport.remote_call("register_result"):
                    following = rt.received(proxy.register_result(key, payload))
                rt.holding.discard(key)
                return following
            except AuthenticationError:
                self.logger.error("dispatcher refused the result of job %s: %s", job["id"],
                                  "wrong secret")
                break
            except CommunicationError as exc:
                rt.drop_dispatcher()
                self.logger.warning("could not deliver the result of job %s (try %d): %s",
                                    job["id"], attempt + 1, exc)
                waiter.wait(0.1 * 2 ** attempt)
        self.logger.error("dropping the result of job %s: its dispatcher is gone", job["id"])
        rt.holding.discard(key)  # before the hello: the dispatcher re-runs what we do not hold
        return self._hello(rt)

    def _hello(self, rt: "_Runtime") -> dict | None:
        """Tell the run's dispatcher (if one is registered) that this worker is free."""
        try:
            uri = rt.ns.lookup(transport.dispatcher_name(self.run_id))
        except CommunicationError as exc:
            self.logger.warning("name server lookup failed: %s", exc)
            return None
        if uri is None:
            return None
        try:
            proxy = rt.dispatcher_proxy(uri)
            with transport.remote_call("hello"):
                return rt.received(proxy.hello(self.worker_name, rt.uri))
        except CommunicationError as exc:
            rt.drop_dispatcher()
            self.logger.debug("dispatcher at %s did not take our hello: %s", uri, exc)
            return None

    # ------------------------------------------------------------------------- control
    def is_busy(self) -> bool:
        rt = self._rt
        return bool(rt and rt.current is not None)

    def shutdown(self) -> None:
        """Stop serving, unregister and stop the compute process. Idempotent."""
        rt = self._rt
        if rt is None:
            return
        with rt.lock:
            first, rt.closed = not rt.closed, True
        if not first:  # another thread is shutting down: return when it is done
            rt.done.wait(timeout=30)
            return
        rt.stop.set()
        rt.jobs.put(None)
        rt.outbox.put(None)
        if rt.ns is not None and self.worker_name is not None:
            try:
                rt.ns.remove(self.worker_name)
            except CommunicationError as exc:
                self.logger.debug("could not unregister %s: %s", self.worker_name, exc)
            rt.ns.close()
        if rt.server is not None:
            rt.server.shutdown()
        if rt.child is not None:
            rt.child.close()
        rt.stopped.set()
        rt.done.set()
        self.logger.info("worker %s shut down", self.worker_name)

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


class _Runtime:
    """Everything a running worker holds; absent from a worker that is not running."""

    def __init__(self, concurrent_type: str):
        self.concurrent_type = concurrent_type
        self.secret = ""
        self.ns: transport.NameServerClient | None = None
        self.server: transport.Server | None = None
        self.uri = ""
        self.child: _ComputeProcess | None = None
        self.thread: threading.Thread | None = None
        # SimpleQueue: handing a result to the reporter thread between two jobs wakes it, and
        # the C queue does that in a third of the time of queue.Queue (idle worker time).
        self.jobs: queue.SimpleQueue = queue.SimpleQueue()
        self.outbox: queue.SimpleQueue = queue.SimpleQueue()  # results for the reporter thread
        self.stop = threading.Event()
        self.stopped = threading.Event()  # the loop has ended
        self.done = threading.Event()  # shutdown() has finished
        self.lock = threading.Lock()
        self.closed = False
        self.current: dict | None = None
        #: (token, attempt) of each job received and not reported yet
        self.holding: set[tuple[int, int]] = set()
        self.jobs_done = 0
        self.started = time.time()
        self._dispatcher: tuple[str, Any] | None = None
        self._proxy_lock = threading.Lock()  # the loop and reporter threads share the proxy

    def received(self, job: dict | None) -> dict | None:
        """Note a job that arrived (it counts as held until its result is reported)."""
        if job is not None:
            self.holding.add((job["token"], job["attempt"]))
        return job

    def dispatcher_proxy(self, uri: str) -> Any:
        with self._proxy_lock:
            if self._dispatcher is None or self._dispatcher[0] != uri:
                self._drop()
                self._dispatcher = (uri, transport.make_proxy(uri, self.secret))
            return self._dispatcher[1]

    @property
    def dispatcher_uri(self) -> str | None:
        """The dispatcher this worker reports to (it holds a connection to it), if any."""
        dispatcher = self._dispatcher
        return None if dispatcher is None else dispatcher[0]

    def connected_to(self, uri: str | None) -> bool:
        """Whether results for ``uri`` already have a proxy (or there is nowhere to send)."""
        dispatcher = self._dispatcher
        return uri is None or (dispatcher is not None and dispatcher[0] == uri)

    def drop_dispatcher(self) -> None:
        with self._proxy_lock:
            self._drop()

    def _drop(self) -> None:
        if self._dispatcher is not None:
            transport.close_proxy(self._dispatcher[1])
            self._dispatcher = None


@transport.expose
class WorkerService:
    """What the dispatcher (and ``ultrarun status``) may call on a worker."""

    def __init__(self, worker: Worker, rt: _Runtime):
        self._worker = worker
        self._rt = rt

    @transport.oneway
    def start_computation(self, job: dict) -> None:
        self._rt.jobs.put(self._rt.received(job))
        self._meet(job.get("dispatcher"))

    def ping(self, dispatcher: str | None = None) -> dict:
        """The worker's state. A dispatcher that found us passes its URI: we connect back now,
        while the run starts, rather than when its first job arrives."""
        self._meet(dispatcher)
        return self.status()

    def _meet(self, dispatcher: str | None) -> None:
        if not self._rt.connected_to(dispatcher):
            self._rt.outbox.put(dispatcher)  # the reporter thread opens the connection

    def is_busy(self) -> bool:
        return self._rt.current is not None

    def status(self) -> dict:
        rt, current = self._rt, self._rt.current
        return {"name": self._worker.worker_name, "host": socket.gethostname(), "pid": os.getpid(),
                "busy": current is not None,
                "job": None if current is None else {"id": current["id"],
                                                     "budget": current["kwargs"].get("budget")},
                "jobs_done": rt.jobs_done, "queued": rt.jobs.qsize(),
                "held": sorted(rt.holding),
                "dispatcher": rt.dispatcher_uri,
                "started": rt.started,
                "concurrent_type": rt.concurrent_type}

    @transport.oneway
    def shutdown(self) -> None:
        # Not from the daemon's own thread: shutting the daemon down joins that thread.
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


def _run_compute(worker: Worker, kwargs: dict) -> tuple[JobStatus, dict | None, str | None]:
    """Call compute with the keywords it accepts; never raises."""
    full = {"config_info": {}, "working_directory": ".", **kwargs}
    try:
        raw = worker.compute(**_accepted(worker.compute, full))
        return JobStatus.SUCCESS, validate_result(raw), None
    except ResultError as exc:
        return JobStatus.CRASHED, None, f"ResultError: {exc}"
    except MemoryError:
        return JobStatus.MEMOUT, None, traceback.format_exc()
    except (Exception, SystemExit):
        return JobStatus.CRASHED, None, traceback.format_exc()


def _child_main(conn: multiprocessing.connection.Connection, worker: Worker,
                memory_limit: float | None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the worker process decides about Ctrl-C
    if memory_limit:
        limit = int(memory_limit * 1024 * 1024)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    conn.send("ready")  # start-up (imports, unpickling the worker) is not the job's time
    while True:
        try:
            kwargs = conn.recv()
        except (EOFError, OSError):
            return
        status, result, exception = _run_compute(worker, kwargs)
        conn.send((status.value, result, exception))


class _ComputeProcess:
    """A reusable child process that runs compute; killed and replaced on a limit or a crash."""

    def __init__(self, worker: Worker, time_limit: float | None, memory_limit: float | None):
        self._worker = worker
        self._time_limit = time_limit
        self._memory_limit = memory_limit
        self._ctx = multiprocessing.get_context("spawn")
        self._proc: Any = None
        self._conn: Any = None
        self._ready = False
        self._lock = threading.Lock()
        self._closed = False

    def _ensure(self) -> None:
        if self._proc is not None and self._proc.is_alive():
            return
        self._kill()
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_child_main, args=(child, self._worker, self._memory_limit),
                                 name="ultrarun-compute", daemon=True)
        proc.start()
        child.close()
        self._proc, self._conn = proc, parent
        self._ready = False

    def _wait_ready(self, proc: Any, conn: Any) -> bool:
        """Wait for a fresh child's ready message (at most _STARTUP_TIMEOUT)."""
        if self._ready:
            return True
        ready = multiprocessing.connection.wait([conn, proc.sentinel], timeout=_STARTUP_TIMEOUT)
        if conn in ready:
            try:
                self._ready = conn.recv() == "ready"
            except (EOFError, OSError):
                self._ready = False
        return self._ready

    def run(self, kwargs: dict) -> tuple[JobStatus, dict | None, str | None]:
        with self._lock:
            if self._closed:
                return JobStatus.CANCELLED, None, "the worker is shutting down"
            self._ensure()
            proc, conn = self._proc, self._conn
        if not self._wait_ready(proc, conn):
            with self._lock:
                self._kill()
            return JobStatus.CRASHED, None, ("the compute process did not start (exit code "
                                             f"{proc.exitcode}); see the worker's log")
        try:
            conn.send(kwargs)
        except (OSError, ValueError) as exc:
            return JobStatus.CRASHED, None, f"could not hand the job to the compute process: {exc}"
        deadline = None if self._time_limit is None else time.monotonic() + self._time_limit
        while True:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready = multiprocessing.connection.wait([conn, proc.sentinel], timeout=wait)
            if conn in ready:
                try:
                    status, result, exception = conn.recv()
                    return JobStatus(status), result, exception
                except (EOFError, OSError):
                    pass  # the process died while answering: handled below
            if ready or proc.exitcode is not None:
                proc.join(timeout=5)
                code = proc.exitcode
                with self._lock:
                    self._kill()
                if self._memory_limit and code == -signal.SIGKILL:
                    return JobStatus.MEMOUT, None, ("compute process was killed (SIGKILL), "
                                                    f"memory limit {self._memory_limit} MiB")
                return JobStatus.CRASHED, None, f"compute process died with exit code {code}"
            if deadline is not None and time.monotonic() >= deadline:
                with self._lock:
                    self._kill()
                return JobStatus.TIMEOUT, None, f"compute exceeded the time limit of {self._time_limit}s"

    def _kill(self) -> None:
        if self._proc is not None:
            if self._proc.is_alive():
                self._proc.kill()
            self._proc.join(timeout=5)
            self._conn.close()
        self._proc = self._conn = None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._kill()


__all__ = ["Worker"]
