"""A runner as an :class:`~ultrarun.executor.Executor`: the one adapter between the two, made by
``AbstractRunner.as_executor`` (docs/runners.md). One thread owns the runner (runners are not
thread-safe): it submits what the master queued and turns finished trials into
:class:`~ultrarun.job.Job` callbacks.
"""
from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any

from ..executor import Durations, Executor, RetryPolicy
from ..errors import ResultError
from ..job import Job, JobStatus, to_plain, validate_result
from ..lifecycle import Lifecycle
from ._trial import TrialInfo, TrialValue, worker_time

logger = logging.getLogger(__name__)

_POLL = 0.01  # seconds the pump waits for results before looking for new submissions


class RunnerExecutor(Executor):
    """Runs the master's jobs on ``runner``; its retry policy is the runner's. Jobs move
    through the one lifecycle (:mod:`ultrarun.lifecycle`); ``clock`` has ``time()``."""

    def __init__(self, runner: Any, clock: Any = time):  # an AbstractRunner (it imports us)
        self.runner = runner
        self._life = Lifecycle(durations=Durations(), clock=clock)
        self._lock = threading.Lock()
        self._submissions: collections.deque[Job] = collections.deque()
        self._cancel = False
        self._running: dict[int, Job] = {}  # id(TrialInfo) -> job
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._workers = 0

    @property
    def durations(self) -> Durations:  # type: ignore[override]
        return self._life.durations

    @property
    def retry(self) -> RetryPolicy:  # type: ignore[override]
        return self.runner.retry

    @retry.setter
    def retry(self, policy: RetryPolicy) -> None:
        self.runner.retry = policy

    def start(self) -> "RunnerExecutor":
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._pump, name="runner-pump", daemon=True)
                self._thread.start()
        return self

    def submit_job(self, id: Any, **kwargs: Any) -> Job:
        job = Job(id=to_plain(id, "job id"), kwargs=to_plain(kwargs, "job kwargs"))
        self._life.submitted(job)
        with self._lock:
            self._submissions.append(job)
        return job

    def number_of_workers(self) -> int:
        return self._workers

    def cancel_queued_jobs(self, ids: Any = None) -> int:
        """Cancel what has not finished (runners cannot tell queued from running)."""
        with self._lock:
            self._cancel = True
            return len(self._submissions) + len(self._running)

    def expected_start(self) -> float | None:
        """Now, while a worker is free; else when the shortest running job should end."""
        with self._lock:
            running = list(self._running.values())
        if len(running) < self._workers:
            return time.monotonic()
        ends = [self.durations.estimate(job.kwargs.get("budget", 0.0)) for job in running]
        known = [end for end in ends if end is not None]
        return time.monotonic() + min(known) if known else None

    def _pump(self) -> None:
        self._announce()
        while not self._stop.is_set():
            with self._lock:
                batch, self._submissions = list(self._submissions), collections.deque()
                cancel, self._cancel = self._cancel, False
            for job in batch:
                trial = TrialInfo(config=job.kwargs["config"], budget=job.kwargs.get("budget"),
                                  additional_info={"config_id": job.id})
                self._life.start(job)
                with self._lock:
                    self._running[id(trial)] = job
                self.runner.submit_trial(trial)
            if cancel:
                self.runner.cancel_pending()
            if self._running:
                self.runner.wait(timeout=_POLL)
                for trial, value in self.runner.iter_results():
                    with self._lock:
                        job = self._running.pop(id(trial), None)
                    if job is not None:
                        self._deliver(job, value)
            else:
                self._stop.wait(_POLL)
            self._announce()

    def _announce(self) -> None:
        workers = self.runner.num_workers
        if workers != self._workers:
            self._workers = workers
            if self.queue_callback is not None:
                self.queue_callback(workers)

    def _deliver(self, job: Job, value: TrialValue) -> None:
        self._life.timed(job, worker_time(value))
        info = to_plain(value.additional_info, "additional_info")
        if value.status is JobStatus.SUCCESS:
            cost = value.cost[0] if isinstance(value.cost, list) else value.cost
            try:  # what the master's journal and logs can write, as the workers check it
                result = validate_result({"loss": cost, "info": info})
            except ResultError as exc:
                self._life.finish(job, JobStatus.CRASHED, None, f"ResultError: {exc}", info)
            else:
                self._life.finish(job, value.status, result)
        else:
            self._life.finish(job, value.status, None, info.get("traceback")
                              or info.get("error") or value.status.name, info)
        self._report(job)

    def _report(self, job: Job) -> None:
        if self.new_result_callback is not None:
            try:
                self.new_result_callback(job)
            except Exception:  # the master stops its run itself; another caller is told here
                logger.exception("the result callback raised on job %r: its result is not "
                                 "recorded", job.id)

    def shutdown(self, shutdown_workers: bool = False) -> None:
        """Stop the pump and report what is queued or running CANCELLED (the contract); with
        ``shutdown_workers`` also close the runner. Idempotent."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)
        with self._lock:  # the pump pops what it delivers under this lock: nothing twice
            left = [*self._submissions, *self._running.values()]
            self._submissions.clear()
            self._running.clear()
        if left and not shutdown_workers:
            self.runner.cancel_pending()
        for job in left:
            self._life.finish(job, JobStatus.CANCELLED, None,
                              "cancelled: the executor was shut down")
            self._report(job)
        if shutdown_workers:
            self.runner.close()


__all__ = ["RunnerExecutor"]
