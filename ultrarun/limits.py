"""Hard time and memory limits, for the workers' process mode and the runners alike.

A limited call runs in a reusable child interpreter (:func:`child_main`) started with
:mod:`subprocess` (so it starts from daemonic pool processes and Dask workers too), and killed
and replaced when it hits a limit. One rule decides every outcome (:func:`exit_status`,
:class:`LimitedCaller`): over the time limit (seconds) TIMEOUT; ``MemoryError``, or SIGKILL
while a memory limit (MiB, RLIMIT_AS) is set, MEMOUT; any other death CRASHED. Parent and child
talk over the child's stdin/stdout with length-prefixed pickles (a private pipe, never a
socket); the user's prints go to stderr. A target from the parent's ``__main__`` is found as
:mod:`multiprocessing` finds it. See docs/runners.md ("Limits") and docs/worker.md.
"""
from __future__ import annotations

import logging
import os
import pickle
import select
import signal
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

_HEADER = struct.Struct(">Q")
_STARTUP_TIMEOUT = 120.0  # seconds a fresh child may take to start and load the target
_CHILD_MAIN = ("import sys; from ultrarun.limits import child_main; "
               "child_main(float(sys.argv[1]), sys.argv[2])")


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


def _read_exact(fd: int, n: int, deadline: float | None) -> bytes | None:
    """Read ``n`` bytes from ``fd``; None on EOF or when the deadline passes."""
    chunks, got = [], 0
    while got < n:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
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


class _Child:
    """One child interpreter that calls the target again and again."""

    def __init__(self, target_bytes: bytes, memory_limit: float | None) -> None:
        main = getattr(sys.modules.get("__main__"), "__file__", None)
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _CHILD_MAIN, str(memory_limit or 0),
             main if main and b"__main__" in target_bytes else ""],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=child_env(memory_limit))
        self.stdin = cast(BinaryIO, self.proc.stdin)
        self.stdout = cast(BinaryIO, self.proc.stdout)
        _write(self.stdin, target_bytes)
        self.ready = False  # set once the child says it has loaded the target

    def wait_ready(self) -> bool:
        """Wait (up to ``_STARTUP_TIMEOUT``) for the child's ready frame: interpreter start-up
        and unpickling the target must not count against the walltime limit."""
        if not self.ready:
            header = _read_exact(self.stdout.fileno(), _HEADER.size,
                                 time.monotonic() + _STARTUP_TIMEOUT)
            self.ready = header is not None and _HEADER.unpack(header)[0] == 0
        return self.ready

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        for stream in (self.stdin, self.stdout):
            try:
                stream.close()
            except OSError:
                pass


class LimitedCaller:
    """Calls ``target(*args, **kwargs)`` in reusable child processes under hard limits.

    Safe to use from several threads: each call borrows an idle child or starts a new one. A
    child that hit a limit, died or raised MemoryError is killed and not reused.
    """

    def __init__(self, target: Callable[..., Any], walltime_limit: float | None,
                 memory_limit: float | None) -> None:
        check_limits(walltime_limit, memory_limit)
        self._target = target
        self._walltime_limit = walltime_limit
        self._memory_limit = memory_limit
        self._target_bytes: bytes | None = None
        self._idle: list[_Child] = []
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        # Children and locks belong to this process; a copy elsewhere starts its own.
        state = self.__dict__.copy()
        state.update(_idle=[], _lock=None, _target_bytes=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _borrow(self) -> _Child:
        with self._lock:
            while self._idle:
                child = self._idle.pop()
                if child.alive():
                    return child
                child.kill()
            if self._target_bytes is None:
                self._target_bytes = _dumps(self._target)
            target_bytes = self._target_bytes
        return _Child(target_bytes, self._memory_limit)

    def call(self, *args: Any, **kwargs: Any) -> ChildResult:
        """Run the target once in a child; TargetAlgorithmAbortException is re-raised here."""
        child = self._borrow()
        if not child.wait_ready():
            child.kill()
            status, info = exit_status(child.proc.returncode, self._memory_limit)
            info["error"] = f"the target process did not start: {info['error']}"
            return ChildResult(status, info=info)
        start = time.monotonic()
        deadline = None if self._walltime_limit is None else start + self._walltime_limit
        try:
            _write(child.stdin, _dumps((args, kwargs)))
        except BrokenPipeError:
            pass  # the child is already dead; reading below tells why
        header = _read_exact(child.stdout.fileno(), _HEADER.size, deadline)
        payload = None if header is None else _read_exact(
            child.stdout.fileno(), _HEADER.unpack(header)[0], None)
        if payload is None:
            return self._ended_without_result(child, start, timed_out=deadline is not None
                                              and time.monotonic() >= deadline)
        kind, value, runtime, cpu_time = pickle.loads(payload)
        if kind == "ok":
            with self._lock:
                self._idle.append(child)
            return ChildResult(JobStatus.SUCCESS, value, runtime, cpu_time)
        child.kill()  # after an exception the child's state is unknown: start afresh
        if kind == "abort":
            raise TargetAlgorithmAbortException(value)
        status = JobStatus.MEMOUT if kind == "memout" else JobStatus.CRASHED
        return ChildResult(status, None, runtime, cpu_time, value)

    def _ended_without_result(self, child: _Child, start: float, timed_out: bool) -> ChildResult:
        runtime = time.monotonic() - start
        if timed_out and child.alive():
            child.kill()
            return ChildResult(JobStatus.TIMEOUT, runtime=runtime, info={
                "error": f"exceeded the time limit of {self._walltime_limit:g} s"})
        child.kill()
        status, info = exit_status(child.proc.returncode, self._memory_limit)
        return ChildResult(status, runtime=runtime, info=info)

    def close(self) -> None:
        """Kill the idle children; idempotent. A later call starts a new child."""
        with self._lock:
            idle, self._idle = self._idle, []
        for child in idle:
            child.kill()


def _load_main(path: str) -> None:
    """Make the parent's main script importable as ``__main__`` (multiprocessing's way)."""
    import runpy
    import types

    module = types.ModuleType("__mp_main__")
    sys.modules["__main__"] = sys.modules["__mp_main__"] = module
    module.__dict__.update(runpy.run_path(path, run_name="__mp_main__"))


def child_main(memory_limit: float, main: str = "") -> None:
    """Loop of the child: read the target once, then calls, and answer each one."""
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

    target = read()
    channel_out.write(_HEADER.pack(0))  # ready: the walltime of the first call starts now
    channel_out.flush()
    while True:
        message = read()
        if message is None:  # the parent closed the pipe: it is done with us
            return
        args, kwargs = message
        start, cpu_start = time.monotonic(), time.process_time()
        try:
            reply = ("ok", target(*args, **kwargs))
        except TargetAlgorithmAbortException as exc:
            reply = ("abort", str(exc))
        except MemoryError as exc:
            reply = ("memout", {"error": repr(exc), "traceback": traceback.format_exc()})
        except Exception as exc:  # reported to the parent as CRASHED
            reply = ("error", {"error": repr(exc), "traceback": traceback.format_exc()})
        reply = (*reply, time.monotonic() - start, time.process_time() - cpu_start)
        try:
            data = _dumps(reply)
        except Exception as exc:  # the return value cannot travel back
            data = _dumps(("error", {"error": f"the result cannot be pickled: {exc!r}",
                                     "traceback": traceback.format_exc()}, reply[2], reply[3]))
        _write(channel_out, data)

