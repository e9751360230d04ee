"""What scale.py and its HpBandSter peer share: per-thread CPU, process footprint, worker
processes that each run many worker threads. Standard library only (the peer imports it from its
own virtual environment, where ultrarun is not installed)."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence

_TICK_NS = 1e9 / os.sysconf("SC_CLK_TCK")
MAX_BUDGET = 27.0


def branin(config: dict, budget: float, max_budget: float = MAX_BUDGET) -> float:
    """ultrarun.benchmarks.branin, here so that worker processes (and the HpBandSter peer, which
    has no ultrarun) need neither numpy nor ConfigSpace: a worker process starts faster."""
    x1, x2 = float(config["x1"]), float(config["x2"])
    z = min(max(float(budget) / max_budget, 0.0), 1.0)
    b = 5.1 / (4 * math.pi ** 2) - 0.01 * (1 - z)
    c = 5 / math.pi - 0.1 * (1 - z)
    t = 1 / (8 * math.pi) + 0.05 * (1 - z)
    return (x2 - b * x1 ** 2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


def _task_cpu_ns(tid: int, pid: str = "self") -> int | None:
    """CPU time of one thread (ns): schedstat's run time, or utime + stime from stat."""
    base = f"/proc/{pid}/task/{tid}"
    try:
        with open(f"{base}/schedstat") as fh:
            return int(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    try:
        with open(f"{base}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return int((int(fields[11]) + int(fields[12])) * _TICK_NS)
    except (OSError, ValueError, IndexError):
        return None


def thread_cpu() -> dict[int, tuple[str, int]]:
    """``{native thread id: (thread name, CPU ns so far)}`` for this process's Python threads."""
    out = {}
    for thread in threading.enumerate():
        tid = thread.native_id
        if tid is None:
            continue
        cpu = _task_cpu_ns(tid)
        if cpu is not None:
            out[tid] = (thread.name, cpu)
    return out


def cpu_by_role(before: dict, after: dict, role: Callable[[str, int], str]) -> dict[str, float]:
    """CPU seconds spent between two :func:`thread_cpu` snapshots, summed by ``role(name,
    tid)``; a thread that ended in between is missed (the runtimes' threads live on)."""
    out: dict[str, float] = {}
    for tid, (name, cpu) in after.items():
        spent = cpu - before.get(tid, (name, 0))[1]
        key = role(name, tid)
        out[key] = out.get(key, 0.0) + spent / 1e9
    return out


def process_cpu_s(pid: int | str = "self") -> float:
    """utime + stime of a whole process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * _TICK_NS / 1e9


def footprint(pid: int | str = "self") -> dict[str, int]:
    """Resident memory (KiB), threads and open file descriptors of a process."""
    rss = threads = 0
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return {"rss_kb": rss, "threads": threads, "fds": len(os.listdir(f"/proc/{pid}/fd"))}


class WorkerProcesses:
    """K processes started with ``cmd + [--n N --first I]``, together running W worker threads.

    Each prints one JSON line once its workers are registered: ``{"registered": [wall clock
    times]}``; :attr:`registered` collects them. SIGTERM ends them (their workers shut down).
    """

    def __init__(self, cmd: Sequence[str], n_workers: int, n_procs: int,
                 env: dict[str, str] | None = None):
        self.n_workers = n_workers
        self.registered: list[float] = []
        self.procs: list[subprocess.Popen] = []
        self._lock = threading.Lock()
        self._readers: list[threading.Thread] = []
        per, extra = divmod(n_workers, n_procs)
        first = 0
        for k in range(n_procs):
            n = per + (k < extra)
            if n == 0:
                continue
            proc = subprocess.Popen([*cmd, "--n", str(n), "--first", str(first)],
                                    stdout=subprocess.PIPE, text=True,
                                    env={**os.environ, **(env or {})})
            first += n
            self.procs.append(proc)
            reader = threading.Thread(target=self._read, args=(proc,), daemon=True,
                                      name="bench-reader")
            reader.start()
            self._readers.append(reader)

    def _read(self, proc: subprocess.Popen) -> None:
        for line in proc.stdout:
            if line.startswith("{"):
                times = json.loads(line).get("registered", [])
                with self._lock:
                    self.registered.extend(times)

    def wait_registered(self, timeout: float) -> float:
        """Wait until every worker said it is registered; returns the last registration's
        wall-clock time."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                if len(self.registered) >= self.n_workers:
                    return max(self.registered)
            dead = [p.returncode for p in self.procs if p.poll() not in (None, 0)]
            if dead:
                raise RuntimeError(f"a worker process exited with {dead[0]} during start-up")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.registered)} of {self.n_workers} workers "
                                   f"registered after {timeout} s")
            time.sleep(0.01)

    def cpu_s(self) -> float:
        total = 0.0
        for proc in self.procs:
            try:
                total += process_cpu_s(proc.pid)
            except OSError:
                pass
        return total

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


def serve_until_terminated(start: Callable[[], list[Any]], stop: Callable[[Any], None]) -> None:
    """A worker process's main: ``start()`` the workers (returns them and the wall-clock time
    each was registered), say so on stdout as one JSON line, then wait for SIGTERM and ``stop``
    each."""
    import signal

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    workers, registered = start()
    print(json.dumps({"registered": registered, "pid": os.getpid()}), flush=True)
    while not done.wait(1.0):
        if os.getppid() == 1:  # the bench died: do not linger
            break
    for worker in workers:
        try:
            stop(worker)
        except Exception as exc:  # noqa: BLE001 - teardown goes on
            print(f"stopping a worker: {exc!r}", file=sys.stderr)


HERE = Path(__file__).resolve().parent
