"""The process backend: a pool of worker processes, one trial at a time each.

Unlike ``concurrent.futures.ProcessPoolExecutor``, whose whole pool breaks when one process
dies, each worker here has its own pipe, so the parent knows which trial a dead worker was
running. The parent waits only inside ``wait``/``iter_results``, with
``multiprocessing.connection.wait`` on the pipes and process sentinels: no helper threads.
"""
from __future__ import annotations

import collections
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from multiprocessing.process import BaseProcess
from typing import Any, Sequence

from ..errors import ConfigurationError, ResultError
from ..limits import start_group_guard
from ._base import (AbstractParallelRunner, AbstractRunner, Outcome, TrialInfo, WorkerLost,
                    check_n_workers, run_outcome)

logger = logging.getLogger(__name__)

_JOIN_TIMEOUT = 5.0


def _worker_main(conn: Connection, single_worker: AbstractRunner, parent: int) -> None:
    """Loop of a pool process: receive a trial, run it, send the outcome back.

    It leads a session of its own, so that killing it (cancel, close) kills what the target
    started too; a guard kills the session when the parent process dies (ultrarun.limits)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the parent, which stops us
    if hasattr(os, "setsid"):
        os.setsid()
        start_group_guard(parent)
    try:
        while True:
            try:
                message = conn.recv()
            except EOFError:
                return
            if message is None:
                return
            token, trial_info = message
            outcome = run_outcome(single_worker, trial_info)
            try:
                conn.send((token, outcome))
            except Exception as exc:  # the result cannot be pickled: say so instead
                conn.send((token, ResultError(f"the result of the trial cannot be sent back "
                                              f"to the parent process: {exc!r}")))
    finally:
        single_worker.close()


@dataclass
class _Worker:
    process: BaseProcess
    conn: Connection
    token: int | None = None


def default_context() -> BaseContext:
    """``forkserver`` where available: forking a parent that runs threads (Dask clients,
    progress bars) can deadlock the child, and forkserver forks from a clean process."""
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


class ProcessRunner(AbstractParallelRunner):
    """Runs trials in ``n_workers`` worker processes started on first use.

    A worker process that dies during a trial (killed, segfault, OOM killer) is an
    infrastructure failure: the trial is resubmitted up to ``max_retries`` times (default 3) and
    then reported as LOST; the pool replaces the process and stays usable. Cancelled trials
    have their worker killed and replaced.

    ``mp_context`` is a multiprocessing context or start method name ("forkserver" by default,
    "spawn", "fork"). With forkserver and spawn the single worker must be picklable, i.e. the
    target defined at module level of an importable module (as with ProcessPoolExecutor).
    """

    def __init__(self, single_worker: AbstractRunner, n_workers: int | None = None, *,
                 mp_context: BaseContext | str | None = None, **kwargs: Any) -> None:
        super().__init__(single_worker, **kwargs)
        self._n_workers = check_n_workers(n_workers)
        if isinstance(mp_context, str):
            if mp_context not in multiprocessing.get_all_start_methods():
                raise ConfigurationError(f"mp_context {mp_context!r} is not available here; "
                                         f"allowed: {multiprocessing.get_all_start_methods()}")
            mp_context = multiprocessing.get_context(mp_context)
        self._context = mp_context or default_context()
        self._workers: list[_Worker] = []
        self._queue: collections.deque[tuple[int, TrialInfo]] = collections.deque()

    def worker_pids(self) -> list[int]:
        """Process ids of the live pool processes (for monitoring and fault-injection tests)."""
        return [w.process.pid for w in self._workers if w.process.pid is not None]

    # ------------------------------------------------------------------ backend hooks
    def _submit(self, token: int, trial_info: TrialInfo) -> None:
        self._queue.append((token, trial_info))
        self._dispatch()

    def _poll(self, timeout: float | None) -> list[tuple[int, Outcome]]:
        busy = {w.conn: w for w in self._workers if w.token is not None}
        busy.update({w.process.sentinel: w for w in busy.values()})
        if not busy:
            return []
        ready = multiprocessing.connection.wait(list(busy), timeout)
        out: list[tuple[int, Outcome]] = []
        for worker in {id(busy[obj]): busy[obj] for obj in ready}.values():
            out.extend(self._read(worker))
        self._dispatch()
        return out

    def _cancel(self, tokens: Sequence[int]) -> None:
        wanted = set(tokens)
        self._queue = collections.deque(item for item in self._queue if item[0] not in wanted)
        for worker in list(self._workers):
            if worker.token in wanted:
                logger.info("killing worker process %s to cancel trial %s",
                            worker.process.pid, worker.token)
                self._discard(worker, kill=True)

    def _close(self) -> None:
        self._queue.clear()
        for worker in self._workers:
            if worker.token is None:
                try:
                    worker.conn.send(None)
                except OSError:
                    pass
        for worker in list(self._workers):
            if worker.token is None:
                worker.process.join(_JOIN_TIMEOUT)
            self._discard(worker, kill=True)

    # ------------------------------------------------------------------ pool management
    def _start_worker(self) -> _Worker:
        parent_conn, child_conn = self._context.Pipe()
        process = self._context.Process(target=_worker_main, args=(child_conn, self._single_worker, os.getpid()),
                                        name="ultrarun-runner-worker", daemon=True)
        process.start()
        child_conn.close()
        worker = _Worker(process, parent_conn)
        self._workers.append(worker)
        logger.debug("started worker process %s", process.pid)
        return worker

    def _discard(self, worker: _Worker, kill: bool) -> None:
        """Forget a pool process; with ``kill``, kill it and what its target started."""
        if kill and worker.process.is_alive() and worker.process.pid is not None:
            try:
                os.killpg(worker.process.pid, signal.SIGKILL)  # it leads its own group
            except (ProcessLookupError, PermissionError):
                worker.process.kill()
        worker.process.join(_JOIN_TIMEOUT)
        worker.conn.close()
        self._workers.remove(worker)

    def _dispatch(self) -> None:
        """Send queued trials to idle workers, starting workers up to ``n_workers``."""
        while self._queue:
            worker = next((w for w in self._workers if w.token is None), None)
            if worker is None:
                if len(self._workers) >= self._n_workers:
                    return
                worker = self._start_worker()
            token, trial_info = self._queue[0]
            try:
                worker.conn.send((token, trial_info))
            except OSError:  # the worker died while idle: replace it and try again
                logger.warning("worker process %s died while idle; replacing it", worker.process.pid)
                self._discard(worker, kill=True)
                continue
            self._queue.popleft()
            worker.token = token

    def _read(self, worker: _Worker) -> list[tuple[int, Outcome]]:
        """Collect a worker's outcome, or report its trial lost if the process died."""
        token = worker.token
        try:
            if worker.conn.poll():
                received_token, outcome = worker.conn.recv()
                worker.token = None
                return [(received_token, outcome)]
        except (EOFError, OSError):
            pass  # the process is gone; handled below
        except Exception as exc:  # the outcome arrived but cannot be unpickled here
            worker.token = None
            return [] if token is None else [(token, exc)]
        if worker.process.is_alive():
            return []
        worker.process.join(_JOIN_TIMEOUT)
        code = worker.process.exitcode
        reason = (f"worker process {worker.process.pid} was killed by "
                  f"{signal.Signals(-code).name}" if code is not None and code < 0 else
                  f"worker process {worker.process.pid} exited with code {code}")
        logger.warning("%s while running trial %s", reason, token)
        self._discard(worker, kill=False)
        return [] if token is None else [(token, WorkerLost(reason))]


__all__ = ["ProcessRunner", "default_context"]
