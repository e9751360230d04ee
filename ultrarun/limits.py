"""Hard time and memory limits, for the workers' process mode and the runners alike.

A limited call runs in a reusable child interpreter (:func:`child_main`) started with
:mod:`subprocess` (so it starts from daemonic pool processes and Dask workers too), and killed
and replaced when it hits a limit. One rule decides every outcome (:func:`exit_status`,
:class:`LimitedCaller`): over the time limit (seconds) TIMEOUT; ``MemoryError``, or SIGKILL
while a memory limit (MiB, RLIMIT_AS) is set, MEMOUT; any other death CRASHED. Parent and child
talk over the child's stdin/stdout with length-prefixed pickles (a private pipe, never a
socket); the user's prints go to stderr. A target from the parent's ``__main__`` is found as
:mod:`multiprocessing` finds it.

Exactly the right answer: every call carries a number, and every answer the number of its call
and the pid of the child that computed it; anything else on the pipe (a copy of the child that
compute forked, bytes written from C) ends the call as CRASHED and the child is replaced, so an
answer is never taken for another call. A forked copy never answers nor serves: the child checks
its pid after every call and a copy leaves at once with ``os._exit``.

Nothing outlives its job: the child leads a session (and process group) of its own, which is
killed whole on TIMEOUT, MEMOUT, a crash, :meth:`LimitedCaller.close` and when the parent dies:
a guard process in the group (not the child's child) waits, in the kernel, for the parent's end
(its pid, or the hang-up of the pipe) and then kills the group, even while compute is busy in a
C call. See docs/runners.md ("Limits") and docs/worker.md ("Process mode").
"""
from __future__ import annotations

import logging
import os
import pickle
import select
import signal
import stat
import struct
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, cast

from .errors import ConfigurationError, TargetAlgorithmAbortException
from .job import JobStatus

logger = logging.getLogger(__name__)

_HEADER = struct.Struct(">Q")  # parent to child: the length of a pickle
_ANSWER = struct.Struct(">4sQQQ")  # child to parent: magic, call number, pid, length
_MAGIC = b"URa1"
_STARTUP_TIMEOUT = 120.0  # seconds a fresh child may take to start and load the target
_LIVENESS_STEP = 1.0  # seconds between checks that a child we wait for is still alive
_CHILD_MAIN = ("import sys; from ultrarun.limits import child_main; "
               "child_main(float(sys.argv[1]), sys.argv[2], int(sys.argv[3]))")


def check_limits(time_limit: float | None, memory_limit: float | None,
                 names: tuple[str, str] = ("walltime_limit", "memory_limit")) -> None:
    """Validate a time limit (seconds) and a memory limit (MiB): positive numbers, or None."""
    for name, value, unit in ((names[0], time_limit, "seconds"), (names[1], memory_limit, "MiB")):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not value > 0):
            raise ConfigurationError(f"{name} must be a number of {unit} > 0 or None, "
                                     f"got {value!r}")


def exit_status(returncode: int, memory_limit: float | None) -> tuple[JobStatus, dict[str, Any]]:
    """Classify a child that ended without a result (see the module's rule)."""
    if returncode < 0:
        name = signal.Signals(-returncode).name if -returncode in signal.valid_signals() else str(-returncode)
        if -returncode == signal.SIGKILL and memory_limit is not None:
            return JobStatus.MEMOUT, {"error": f"the process was killed by {name} (memory limit "
                                      f"{memory_limit:g} MiB, probably the OOM killer)",
                                      "signal": name}
        return JobStatus.CRASHED, {"error": f"the process was killed by {name}", "signal": name}
    return JobStatus.CRASHED, {"error": f"the process exited with code {returncode}",
                               "returncode": returncode}


def child_env(memory_limit: float | None) -> dict[str, str]:
    """Environment of a child: the parent's import path; one BLAS thread under a memory limit.

    BLAS thread pools reserve address space per thread, which RLIMIT_AS counts, so under a
    memory limit we keep the default of one thread unless the user set another.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([p for p in sys.path if p] +
                                        ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    if memory_limit is not None:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env.setdefault(var, "1")
    return env


def set_memory_limit(memory_limit: float | None) -> None:
    """Cap this process's address space (RLIMIT_AS) at ``memory_limit`` MiB."""
    if not memory_limit:
        return
    import resource  # POSIX only, so imported where it is needed

    limit = int(memory_limit * 1024 * 1024)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _dumps(obj: Any) -> bytes:
    try:
        return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, AttributeError, TypeError):
        import cloudpickle  # closures and lambdas: comes with dask, optional otherwise

        return cloudpickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)


def _write(stream: BinaryIO, payload: bytes) -> None:
    stream.write(_HEADER.pack(len(payload)) + payload)
    stream.flush()


def _read_exact(fd: int, n: int, deadline: float | None,
                alive: Callable[[], bool]) -> bytes | None:
    """Read ``n`` bytes from ``fd``; None on EOF, when the deadline passes or once the writer
    is no longer ``alive`` (a forked copy of it may hold the pipe open, so EOF may never come)."""
    chunks, got = [], 0
    while got < n:
        while True:
            step = _LIVENESS_STEP if deadline is None else min(deadline - time.monotonic(),
                                                               _LIVENESS_STEP)
            if step <= 0:
                return None
            if select.select([fd], [], [], step)[0]:
                break
            if not alive():
                return None
        chunk = os.read(fd, n - got)
        if not chunk:
            return None
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


@dataclass
class ChildResult:
    """What a limited call produced: a status, and the return value or failure info."""

    status: JobStatus
    value: Any = None
    runtime: float = 0.0
    cpu_time: float = 0.0
    info: dict[str, Any] | None = None


class _NotTheAnswer(Exception):
    """What the child's pipe held is not the answer to the call (see the module's rule)."""


class _Child:
    """One child interpreter that calls the target again and again, leading its own session."""

    def __init__(self, target_bytes: bytes, memory_limit: float | None) -> None:
        main = getattr(sys.modules.get("__main__"), "__file__", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD_MAIN, str(memory_limit or 0),
             main if main and b"__main__" in target_bytes else "", str(os.getpid())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=child_env(memory_limit),
            start_new_session=True)
        self.stdin = cast(BinaryIO, self.proc.stdin)
        self.stdout = cast(BinaryIO, self.proc.stdout)
        self.calls = 0  # the number of the last call sent
        self.cancelled = False  # killed by LimitedCaller.close() during a call
        _write(self.stdin, target_bytes)
        self.ready = False  # set once the child says it has loaded the target

    def wait_ready(self) -> bool:
        """Wait (up to ``_STARTUP_TIMEOUT``) for the child's ready frame: interpreter start-up
        and unpickling the target must not count against the walltime limit."""
        if not self.ready:
            try:
                self.ready = self.answer(0, time.monotonic() + _STARTUP_TIMEOUT) == b""
            except _NotTheAnswer:
                self.ready = False
        return self.ready

    def send(self, args: tuple, kwargs: dict) -> int:
        """Send a call; its number."""
        self.calls += 1
        try:
            _write(self.stdin, _dumps((self.calls, args, kwargs)))
        except BrokenPipeError:
            pass  # the child is already dead; reading the answer tells why
        return self.calls

    def answer(self, call: int, deadline: float | None) -> bytes | None:
        """The answer to call number ``call``: None if the child ended first or the deadline
        passed; :class:`_NotTheAnswer` if the pipe holds anything else."""
        fd = self.stdout.fileno()
        header = _read_exact(fd, _ANSWER.size, deadline, self.alive)
        if header is None:
            return None
        magic, number, pid, size = _ANSWER.unpack(header)
        if (magic, number, pid) != (_MAGIC, call, self.proc.pid):
            raise _NotTheAnswer(
                f"the compute process {self.proc.pid} wrote something that is not the answer "
                f"to this call (call {call}; read {header!r}): a copy of it (did the target "
                "fork?) or C code wrote on its result pipe. The process was replaced; the "
                "result of this call is lost")
        return _read_exact(fd, size, None, self.alive) if size else b""

    def stray_output(self) -> bool:
        """Whether an idle child's pipe holds bytes nobody asked for."""
        return bool(select.select([self.stdout], [], [], 0)[0])

    def alive(self) -> bool:
        """Still running (a zombie is not reaped here, so its pid and group stay ours)."""
        if self.proc.returncode is not None:
            return False
        if not hasattr(os, "waitid"):  # macOS: asking reaps it
            return self.proc.poll() is None
        try:
            return os.waitid(os.P_PID, self.proc.pid,
                             os.WEXITED | os.WNOHANG | os.WNOWAIT) is None
        except ChildProcessError:
            return False

    def kill_group(self) -> None:
        """SIGKILL the child's whole process group: the child and what the target started."""
        if self.proc.returncode is None:  # not reaped: the group id is still ours
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def kill(self) -> None:
        """Kill the child's process group, then reap the child and close its pipes."""
        self.kill_group()
        self.proc.wait()
        for stream in (self.stdin, self.stdout):
            try:
                stream.close()
            except OSError:
                pass


class LimitedCaller:
    """Calls ``target(*args, **kwargs)`` in reusable child processes under hard limits.

    Safe to use from several threads: each call borrows an idle child or starts a new one. A
    child that hit a limit, died, raised, or wrote anything but its answer is killed with its
    process group and not reused.
    """

    def __init__(self, target: Callable[..., Any], walltime_limit: float | None,
                 memory_limit: float | None) -> None:
        check_limits(walltime_limit, memory_limit)
        self._target = target
        self._walltime_limit = walltime_limit
        self._memory_limit = memory_limit
        self._target_bytes: bytes | None = None
        self._idle: list[_Child] = []
        self._busy: set[_Child] = set()
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        # Children and locks belong to this process; a copy elsewhere starts its own.
        state = self.__dict__.copy()
        state.update(_idle=[], _busy=set(), _lock=None, _target_bytes=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _borrow(self) -> _Child:
        with self._lock:
            while self._idle:
                child = self._idle.pop()
                if child.alive() and not child.stray_output():
                    self._busy.add(child)
                    return child
                logger.debug("compute process %s ended or wrote out of turn while idle; "
                             "replacing it", child.proc.pid)
                child.kill()
            if self._target_bytes is None:
                self._target_bytes = _dumps(self._target)
            target_bytes = self._target_bytes
        child = _Child(target_bytes, self._memory_limit)
        with self._lock:
            self._busy.add(child)
        return child

    def call(self, *args: Any, **kwargs: Any) -> ChildResult:
        """Run the target once in a child; TargetAlgorithmAbortException is re-raised here."""
        child, keep = self._borrow(), False
        try:
            result = self._call(child, args, kwargs)
            keep = result.status is JobStatus.SUCCESS
            return result
        finally:
            with self._lock:
                self._busy.discard(child)
                keep = keep and not child.cancelled
                if keep:
                    self._idle.append(child)
            if not keep:
                child.kill()

    def _call(self, child: _Child, args: tuple, kwargs: dict) -> ChildResult:
        if not child.wait_ready():
            child.kill()
            status, info = exit_status(child.proc.returncode, self._memory_limit)
            info["error"] = f"the target process did not start: {info['error']}"
            return self._cancelled(child, 0.0) or ChildResult(status, info=info)
        start = time.monotonic()
        deadline = None if self._walltime_limit is None else start + self._walltime_limit
        call = child.send(args, kwargs)
        try:
            payload = child.answer(call, deadline)
            reply = None if payload is None else pickle.loads(payload)
            if reply is not None:
                kind, value, runtime, cpu_time = reply
        except _NotTheAnswer as exc:
            return self._failed(child, start, str(exc))
        except Exception as exc:  # noqa: BLE001 - a garbled answer, whatever the error
            return self._failed(child, start, f"the answer of compute process {child.proc.pid} "
                                f"cannot be read ({exc!r}); the process was replaced")
        if reply is None:
            return self._ended_without_result(child, start, timed_out=deadline is not None
                                              and time.monotonic() >= deadline)
        if kind == "ok":
            return ChildResult(JobStatus.SUCCESS, value, runtime, cpu_time)
        child.kill()  # after an exception the child's state is unknown: start afresh
        if kind == "abort":
            raise TargetAlgorithmAbortException(value)
        status = JobStatus.MEMOUT if kind == "memout" else JobStatus.CRASHED
        return ChildResult(status, None, runtime, cpu_time, value)

    def _failed(self, child: _Child, start: float, error: str) -> ChildResult:
        child.kill()
        logger.warning("%s", error)
        return ChildResult(JobStatus.CRASHED, runtime=time.monotonic() - start,
                           info={"error": error})

    def _cancelled(self, child: _Child, runtime: float) -> ChildResult | None:
        if not child.cancelled:
            return None
        return ChildResult(JobStatus.CANCELLED, runtime=runtime, info={
            "error": "stopped: the caller was closed (the worker or runner shut down)"})

    def _ended_without_result(self, child: _Child, start: float, timed_out: bool) -> ChildResult:
        runtime = time.monotonic() - start
        if timed_out and child.alive():
            child.kill()
            return ChildResult(JobStatus.TIMEOUT, runtime=runtime, info={
                "error": f"exceeded the time limit of {self._walltime_limit:g} s"})
        child.kill()
        status, info = exit_status(child.proc.returncode, self._memory_limit)
        return self._cancelled(child, runtime) or ChildResult(status, runtime=runtime, info=info)

    def close(self) -> None:
        """Kill every child with its process group, idle or in a call (that call ends
        CANCELLED); idempotent. A later call starts a new child."""
        with self._lock:
            idle, self._idle = self._idle, []
            for child in self._busy:  # their calls see the end, reap them and return
                child.cancelled = True
                child.kill_group()
        for child in idle:
            child.kill()


def _load_main(path: str) -> None:
    """Make the parent's main script importable as ``__main__`` (multiprocessing's way)."""
    import runpy
    import types

    module = types.ModuleType("__mp_main__")
    sys.modules["__main__"] = sys.modules["__mp_main__"] = module
    module.__dict__.update(runpy.run_path(path, run_name="__mp_main__"))


def start_group_guard(parent: int) -> None:
    """Start the guard of this process's group (see the module's docstring), which this process
    must lead: it kills the group once this process or process ``parent`` ends (or our stdin
    pipe hangs up). Forked twice, so that it is nobody's child but init's (compute's ``wait``
    never sees it)."""
    leader = os.getpid()
    first = os.fork()
    if first:
        os.waitpid(first, 0)
        return
    try:
        if os.fork() == 0:
            _guard(parent, leader)
    finally:
        os._exit(0)


def _guard(parent: int, leader: int) -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # let go of the answer pipe: the parent must see its end when it ends
    os.closerange(3, 1 << 16)  # and of any other pipe or socket
    poller = select.poll()
    try:
        if stat.S_ISFIFO(os.fstat(0).st_mode):
            poller.register(0, 0)  # asking for no event, poll reports only the hang-up
    except OSError:
        pass
    try:
        for pid in (parent, leader):  # Linux 5.3+: a pidfd is readable once its process ended
            poller.register(os.pidfd_open(pid), select.POLLIN)
        poller.poll()
    except ProcessLookupError:
        pass  # one of them has ended already
    except (AttributeError, OSError):
        poller.poll()  # other systems: the hang-up of our stdin pipe alone tells
    os.killpg(0, signal.SIGKILL)


def child_main(memory_limit: float, main: str = "", parent: int = 0) -> None:
    """Loop of the child: read the target once, then calls, and answer each one."""
    me = os.getpid()
    if parent and hasattr(os, "fork") and os.getpgid(0) == me:  # we lead our own group
        start_group_guard(parent)
    channel_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # the user's prints go to stderr, never into the channel
    channel_in = sys.stdin.buffer
    set_memory_limit(memory_limit or None)
    if main:
        _load_main(main)

    def read() -> Any:
        header = channel_in.read(_HEADER.size)
        if len(header) < _HEADER.size:
            return None
        return pickle.loads(channel_in.read(_HEADER.unpack(header)[0]))

    def answer(call: int, data: bytes) -> None:
        if os.getpid() != me:  # a copy of this process (compute forked): never answer
            os._exit(0)
        channel_out.write(_ANSWER.pack(_MAGIC, call, me, len(data)) + data)
        channel_out.flush()

    target = read()
    answer(0, b"")  # ready: the walltime of the first call starts now
    try:
        while True:
            message = read()
            if message is None:  # the parent closed the pipe: it is done with us
                return
            call, args, kwargs = message
            start, cpu_start = time.monotonic(), time.process_time()
            try:
                reply = ("ok", target(*args, **kwargs))
            except TargetAlgorithmAbortException as exc:
                reply = ("abort", str(exc))
            except MemoryError as exc:
                reply = ("memout", {"error": repr(exc), "traceback": traceback.format_exc()})
            except Exception as exc:  # reported to the parent as CRASHED
                reply = ("error", {"error": repr(exc), "traceback": traceback.format_exc()})
            if os.getpid() != me:  # a copy that compute forked came back here: it must not
                os._exit(0)  # answer, nor read the next call
            reply = (*reply, time.monotonic() - start, time.process_time() - cpu_start)
            try:
                data = _dumps(reply)
            except Exception as exc:  # the return value cannot travel back
                data = _dumps(("error", {"error": f"the result cannot be pickled: {exc!r}",
                                         "traceback": traceback.format_exc()}, reply[2],
                               reply[3]))
            answer(call, data)
    finally:
        if os.getpid() != me:  # a copy leaving by an exception (SystemExit, ...): no clean-up
            os._exit(0)
