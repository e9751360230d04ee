"""Fixtures that start real name servers, worker processes and dispatchers, and always stop them."""
from __future__ import annotations

import contextlib
import itertools
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest

# Every process of the test session (workers included) shares a per-user secret file of its own,
# so tests never touch the real home directory.
if "ULTRARUNTEST_SECRET_FILE" not in os.environ:  # set once, inherited by child processes
    _dir = tempfile.mkdtemp(prefix="ultrarun-test-secret-")
    os.environ["ULTRARUNTEST_SECRET_FILE"] = os.path.join(_dir, "secret")
os.environ["ULTRARUN_SECRET_FILE"] = os.environ["ULTRARUNTEST_SECRET_FILE"]
os.environ.pop("ULTRARUN_SECRET", None)

from ultrarun.settings import settings  # noqa: E402
from ultrarun.dispatcher import Dispatcher  # noqa: E402
from ultrarun.nameserver import NameServer  # noqa: E402
from ultrarun.security import Credentials  # noqa: E402

settings.reset()

TESTS = Path(__file__).resolve().parent
ROOT_DIR = TESTS.parent
WORKERS = TESTS / "workers_for_tests.py"
_run_ids = itertools.count()


@pytest.fixture(autouse=True)
def _in_a_temporary_directory(tmp_path_factory: pytest.TempPathFactory,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs in a directory of its own: what a run writes where it was started (its
    journal, result logs) stays out of the checkout."""
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.01,
               message: str = "condition") -> Any:
    """Poll ``predicate`` until it is truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    waiter = threading.Event()
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        waiter.wait(interval)


class SchedulingLag:
    """How late a thread of this process wakes up while the block runs (seconds): the largest
    delay of a 5 ms wait beyond its 5 ms, what a loaded machine adds between a decision and the
    time stamp of what follows it. Tests that compare time stamps with a deadline allow this
    much, measured in the same run, instead of a constant that holds only on an idle machine."""

    def __enter__(self) -> "SchedulingLag":
        self.lag, self._stop = 0.0, threading.Event()
        self._thread = threading.Thread(target=self._measure, daemon=True)
        self._thread.start()
        return self

    def _measure(self) -> None:
        for _ in range(1_000_000):  # bounded: ends with the block
            before = time.monotonic()
            if self._stop.wait(0.005):
                return
            self.lag = max(self.lag, time.monotonic() - before - 0.005)

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


class Collector:
    """A result callback that tests can wait on."""

    def __init__(self) -> None:
        self.jobs: list = []
        self.pool_sizes: list[int] = []
        self._cond = threading.Condition()

    def __call__(self, job: Any) -> None:
        with self._cond:
            self.jobs.append(job)
            self._cond.notify_all()

    def on_pool(self, n: int) -> None:
        with self._cond:
            self.pool_sizes.append(n)
            self._cond.notify_all()

    def wait_for(self, n: int, timeout: float = 20.0) -> list:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.jobs) >= n, timeout=timeout):
                raise AssertionError(f"got {len(self.jobs)} results, expected {n} within {timeout}s")
            return list(self.jobs)

    def by_id(self) -> dict:
        with self._cond:
            return {tuple(j.id) if isinstance(j.id, (list, tuple)) else j.id: j for j in self.jobs}



class Recorder:
    """A TCP relay that records what the client sends, to replay it later (an on-path party
    without the secret)."""

    def __init__(self, target: tuple[str, int]):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = self.listener.getsockname()
        self.target = target
        self.sent = bytearray()
        self.upstream: socket.socket | None = None
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        client, _ = self.listener.accept()
        self.upstream = socket.create_connection(self.target)

        def pump(src: socket.socket, dst: socket.socket, record: bool) -> None:
            with contextlib.suppress(OSError):
                while data := src.recv(65536):
                    if record:
                        self.sent += data
                    dst.sendall(data)

        threading.Thread(target=pump, args=(client, self.upstream, True), daemon=True).start()
        pump(self.upstream, client, False)

class WorkerProcess:
    def __init__(self, proc: subprocess.Popen, log_path: Path):
        self.proc = proc
        self.pid = proc.pid
        self.log_path = log_path

    def log(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""


class Cluster:
    """A run: a real name server, worker processes started with ``ultrarun worker``, dispatchers."""

    def __init__(self, tmp_path: Path, nameserver: NameServer | None = None,
                 run_id: str | None = None, address: tuple[str, int] | None = None):
        """A fresh name server, or ``nameserver`` (started), or one of ``run_id`` at
        ``address`` that the test runs itself (its credentials file is in ``tmp_path``)."""
        self.run_id = run_id or (nameserver.run_id if nameserver else
                                 f"t{os.getpid()}x{next(_run_ids)}")
        self.dir = tmp_path
        if address is None:
            self.nameserver = nameserver or NameServer(self.run_id, working_directory=tmp_path)
            self.host, self.port = self.nameserver.start()
        else:
            self.nameserver, (self.host, self.port) = None, address
        self.workers: list[WorkerProcess] = []
        self.dispatchers: list[Dispatcher] = []
        self.markers = tmp_path / "markers"
        self.markers.mkdir()

    def start_workers(self, n: int, cls: str = "TestWorker", *extra: str, wait: bool = True,
                      env: dict[str, str] | None = None, prefix: tuple[str, ...] = ()
                      ) -> list[WorkerProcess]:
        """``n`` worker processes (``env``: extra environment, such as ULTRARUN_* settings;
        ``prefix``: a command to run them under, such as ``ip netns exec NAME``)."""
        started = []
        for _ in range(n):
            log_path = self.dir / f"worker-{len(self.workers)}.log"
            cmd = [*prefix, sys.executable, "-m", "ultrarun", "worker", f"{WORKERS}:{cls}",
                   "--run-id", self.run_id, "--working-dir", str(self.dir), "-v", *extra]
            with open(log_path, "w") as fh:
                proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT,
                                        env={**os.environ, **(env or {})})
            wp = WorkerProcess(proc, log_path)
            self.workers.append(wp)
            started.append(wp)
        if wait:
            client = self.client()
            try:
                pids = {w.pid for w in started}
                wait_until(lambda: pids <= {int(n.split(".")[4]) for n in
                                            client.list(f"ultrarun.{self.run_id}.worker.")},
                           timeout=30, message=f"{n} workers to register")
            finally:
                client.close()
        return started

    def dispatcher(self, collector: Collector | None = None, **kwargs: Any) -> tuple[Dispatcher, Collector]:
        collector = collector or Collector()
        kwargs.setdefault("ping_interval", 0.25)
        kwargs.setdefault("timeout", 5.0)
        if self.nameserver is None:
            kwargs.setdefault("secret", Credentials.read(self.dir, self.run_id).secret)
        d = Dispatcher(collector, run_id=self.run_id, nameserver=self.host,
                       nameserver_port=self.port, queue_callback=collector.on_pool, **kwargs)
        self.dispatchers.append(d)
        d.start()
        return d, collector

    def client(self) -> Any:
        from ultrarun.security import resolve_secret
        from ultrarun.transport import NameServerClient

        secret = (self.nameserver.secret if self.nameserver else
                  Credentials.read(self.dir, self.run_id).secret)
        return NameServerClient(self.host, self.port, resolve_secret(secret, self.port))

    def marker(self, tag: str) -> Path:
        return self.markers / f"{tag}.started"

    def close(self) -> None:
        for d in self.dispatchers:
            d.shutdown()
        for w in self.workers:
            if w.proc.poll() is None:
                try:
                    os.kill(w.pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
                w.proc.terminate()
        for w in self.workers:
            try:
                w.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                w.proc.kill()
                w.proc.wait(timeout=10)
        if self.nameserver is not None:
            self.nameserver.shutdown()


@pytest.fixture
def cluster(tmp_path: Path):
    c = Cluster(tmp_path)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def nameserver(tmp_path: Path):
    ns = NameServer(f"ns{next(_run_ids)}", working_directory=tmp_path)
    try:
        ns.start()
        yield ns
    finally:
        ns.shutdown()


@pytest.fixture(scope="module")
def dask_client():
    """A real local Dask cluster of worker processes, shared by the tests of a module (starting
    one takes about a second). Tasks are given up after their worker died once more, so the LOST
    tests are quick."""
    import dask
    import distributed

    with dask.config.set({"distributed.scheduler.allowed-failures": 1}):
        dask_cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                                host="127.0.0.1", dashboard_address=":0")
    try:
        client = distributed.Client(dask_cluster)
        try:
            yield client
        finally:
            client.close()
    finally:
        dask_cluster.close()
