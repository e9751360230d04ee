"""Everything on one machine: an embedded name server and worker processes.

Used by ``ultrarun demo`` and :func:`ultrarun.minimize`; handy for notebooks and tests. Worker
processes are started with multiprocessing's "spawn", so the worker class (or eval function)
must be importable: defined at module level, not in ``__main__`` without a main guard.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import tempfile
import uuid
from typing import Any, Callable

from .errors import ConfigurationError
from .nameserver import NameServer
from .worker import Worker

log = logging.getLogger(__name__)


def _worker_main(worker_class: type, kwargs: dict, eval_func: Callable | None,
                 concurrent_type: str, log_level: int) -> None:
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    worker = worker_class(**kwargs)
    if eval_func is not None:
        worker.initialize(eval_func)
    signal.signal(signal.SIGTERM, lambda *_: worker.shutdown())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us on Ctrl-C
    worker.run(background=False, concurrent_type=concurrent_type)


class LocalCluster:
    """A name server in this process and ``n_workers`` worker processes of ``worker_class``.

    ``eval_func`` (a plain ``f(config, budget)``) makes each worker a ``Worker.initialize``-d one.
    Use as a context manager; ``run_id``, ``nameserver`` and ``nameserver_port`` tell a master
    where to find the workers.
    """

    def __init__(self, n_workers: int = 4, worker_class: type = Worker,
                 worker_kwargs: dict | None = None, eval_func: Callable | None = None,
                 run_id: str | None = None, working_directory: str | os.PathLike | None = None,
                 concurrent_type: str = "thread", secret: str | None = None):
        if n_workers < 1:
            raise ConfigurationError(f"n_workers must be >= 1, got {n_workers}")
        if not (isinstance(worker_class, type) and issubclass(worker_class, Worker)):
            raise ConfigurationError("worker_class must be a subclass of ultrarun.Worker")
        self.n_workers = n_workers
        self.worker_class = worker_class
        self.worker_kwargs = dict(worker_kwargs or {})
        self.eval_func = eval_func
        self.run_id = run_id or f"local-{uuid.uuid4().hex[:8]}"
        self.concurrent_type = concurrent_type
        self._tmp: tempfile.TemporaryDirectory | None = None
        if working_directory is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="ultrarun-")
            working_directory = self._tmp.name
        self.working_directory = working_directory
        self.nameserver = NameServer(self.run_id, working_directory=working_directory,
                                     secret=secret)
        self.processes: list[Any] = []

    @property
    def nameserver_port(self) -> int:
        return self.nameserver.port

    @property
    def secret(self) -> str:
        return self.nameserver.secret

    def start(self) -> "LocalCluster":
        host, port = self.nameserver.start()
        ctx = multiprocessing.get_context("spawn")
        level = logging.getLogger("ultrarun").getEffectiveLevel()
        for i in range(self.n_workers):
            kwargs = dict(self.worker_kwargs, run_id=self.run_id, nameserver=host,
                          nameserver_port=port, worker_id=i, secret=self.secret)
            proc = ctx.Process(target=_worker_main, name=f"ultrarun-worker-{i}",
                               args=(self.worker_class, kwargs, self.eval_func,
                                     self.concurrent_type, level), daemon=True)
            proc.start()
            self.processes.append(proc)
        log.info("local cluster %s: %d worker processes", self.run_id, self.n_workers)
        return self

    def shutdown(self) -> None:
        """Stop the worker processes and the name server. Idempotent."""
        for proc in self.processes:
            if proc.is_alive():
                proc.terminate()
        for proc in self.processes:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)
        self.processes = []
        self.nameserver.shutdown()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> "LocalCluster":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()


__all__ = ["LocalCluster"]
