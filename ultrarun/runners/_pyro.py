"""The Pyro backend: trials run on long-lived Pyro workers through the dispatcher, with its
job semantics (docs/dispatcher.md). Without a name server the runner starts a
:class:`~ultrarun.local.LocalCluster` of :class:`RunnerWorker` processes, each holding a copy of
the single worker (so the target must be importable); with one, it attaches to a running run's
workers, whose compute gets ``config``, ``budget``, ``instance``, ``seed`` and
``additional_info`` and whose ``loss`` is the cost.
"""
from __future__ import annotations

import concurrent.futures
import logging
import queue
import time
from typing import Any, Mapping, Sequence

from ..dispatcher import Dispatcher
from ..errors import ConfigurationError, JobFailed, TargetAlgorithmAbortException
from ..job import Job, JobStatus, to_plain
from ..worker import Worker
from ._base import (AbstractParallelRunner, AbstractRunner, Outcome, TrialInfo, TrialValue,
                    WorkerLost, check_n_workers)

logger = logging.getLogger(__name__)


class RunnerWorker(Worker):
    """A Pyro worker that runs each trial with its single-worker runner's ``run_wrapper``: the
    cost is the result's loss (a list of costs rides in ``info['cost']``), and a trial that did
    not succeed ends the job with its status (:class:`~ultrarun.errors.JobFailed`)."""

    def __init__(self, *args: Any, single_worker: AbstractRunner | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if not isinstance(single_worker, AbstractRunner):
            raise ConfigurationError("RunnerWorker needs single_worker=<a runner>")
        self.single_worker = single_worker

    def compute(self, config_id: Any, config: Any, budget: Any, working_directory: str,
                instance: str | None = None, seed: int | None = None,
                additional_info: Mapping[str, Any] | None = None, **kwargs: Any) -> dict:
        trial = TrialInfo(config=config, instance=instance, seed=seed, budget=budget,
                          additional_info=dict(additional_info or {}))
        try:
            _, value = self.single_worker.run_wrapper(trial)
        except TargetAlgorithmAbortException as exc:  # raised again by the runner
            raise JobFailed(JobStatus.CRASHED, f"TargetAlgorithmAbortException: {exc}",
                            info={_ABORT: str(exc)}) from None
        if value.status is not JobStatus.SUCCESS:  # the trial's info travels as data
            info = value.additional_info
            raise JobFailed(value.status, info.get("traceback") or info.get("error") or "",
                            info=info)
        info = dict(value.additional_info)
        if isinstance(value.cost, list):
            info["cost"] = value.cost
            return {"loss": value.cost[0], "info": info}
        return {"loss": value.cost, "info": info}


_ABORT = "ultrarun.abort"  # the info key of a trial that asked to stop the optimisation


class PyroRunner(AbstractParallelRunner):
    """Runs trials on Pyro workers (its own local ones, or a running run's).

    Args:
        single_worker: runs one trial (e.g. ``TargetFunctionRunner(fn)``); copied to own workers.
        n_workers: worker processes to start when no name server is given (default: CPUs).
        run_id, nameserver, nameserver_port, secret: attach to this run's workers instead.
        patience: seconds to wait for the first worker.
        ping_interval, timeout: the dispatcher's, for noticing lost workers.

    The retry policy (``max_retries``, ``retry_on``, ``retry``) is the dispatcher's to apply:
    what reaches the runner is final.
    """

    _backend_retries = True

    def __init__(self, single_worker: AbstractRunner, n_workers: int | None = None, *,
                 run_id: str | None = None, nameserver: str | None = None,
                 nameserver_port: int | None = None, secret: str | None = None,
                 patience: float = 30.0, ping_interval: float = 1.0,
                 timeout: float | None = None, **kwargs: Any) -> None:
        super().__init__(single_worker, **kwargs)
        self._done: queue.SimpleQueue = queue.SimpleQueue()
        self._cluster: Any = None
        if nameserver is None:
            from ..local import LocalCluster

            self._cluster = LocalCluster(n_workers=check_n_workers(n_workers),
                                         worker_class=RunnerWorker,
                                         worker_kwargs={"single_worker": single_worker},
                                         secret=secret).start()
            run_id, nameserver = self._cluster.run_id, self._cluster.nameserver.host
            nameserver_port, secret = self._cluster.nameserver_port, self._cluster.secret
        elif run_id is None:
            raise ConfigurationError("give run_id together with nameserver")
        self._dispatcher = Dispatcher(self._on_job, run_id=run_id, ping_interval=ping_interval,
                                      nameserver=nameserver, nameserver_port=nameserver_port,
                                      secret=secret, timeout=timeout, retry=self.retry)
        try:
            self._dispatcher.start()
            self._wait_for_workers(patience, n_workers if self._cluster is not None else 1)
        except BaseException:
            self._close()
            raise

    def _wait_for_workers(self, patience: float, wanted: int | None) -> None:
        deadline = time.monotonic() + patience
        wanted = wanted or 1
        while self._dispatcher.number_of_workers() < wanted and time.monotonic() < deadline:
            time.sleep(0.02)
        if self._dispatcher.number_of_workers() == 0:
            logger.warning("no Pyro worker joined within patience=%s s", patience)

    @property
    def num_workers(self) -> int:
        return self._dispatcher.number_of_workers()

    # ------------------------------------------------------------------ backend hooks
    def _submit(self, token: int, trial_info: TrialInfo) -> None:
        config = trial_info.config
        if not isinstance(config, Mapping) and hasattr(config, "keys"):
            config = dict(config)  # a ConfigSpace Configuration
        self._dispatcher.submit_job(token, config=to_plain(config, "config"),
                                    budget=trial_info.budget, instance=trial_info.instance,
                                    seed=trial_info.seed,
                                    additional_info=to_plain(trial_info.additional_info))

    def _on_job(self, job: Job) -> None:
        """Dispatcher callback (its callback thread): hand the outcome to _poll."""
        self._done.put((job.id, self._outcome(job)))

    def _outcome(self, job: Job) -> Outcome:
        if job.status is JobStatus.LOST:
            return WorkerLost(job.exception or "worker lost", retry=False)
        if job.status is JobStatus.CANCELLED:
            return concurrent.futures.CancelledError()
        info = job.info or {}
        if _ABORT in info:
            return TargetAlgorithmAbortException(info[_ABORT])
        stamps = job.timestamps
        attempts = {"attempts": job.attempt} if job.attempt > 1 else {}
        if job.status is not JobStatus.SUCCESS:
            text = job.exception or job.status.name
            return job.id, self._failure(job.status, {**(job.info if job.info is not None else {
                "error": text.strip().splitlines()[-1] if text.strip() else job.status.name,
                "traceback": text}), **attempts})
        info = {**(job.result.get("info") or {}), **attempts}
        return job.id, TrialValue(cost=info.pop("cost", job.result["loss"]),
                                  time=job.duration or 0.0, status=JobStatus.SUCCESS,
                                  starttime=stamps["started"], endtime=stamps["finished"],
                                  additional_info=info)

    def as_executor(self) -> Dispatcher:
        """The dispatcher itself: the master's jobs go straight to the Pyro workers."""
        return self._dispatcher

    def _poll(self, timeout: float | None) -> list[tuple[int, Outcome]]:
        try:
            out = [self._done.get(timeout=timeout) if timeout != 0 else self._done.get_nowait()]
        except queue.Empty:
            return []
        while not self._done.empty():  # this thread is the only reader
            out.append(self._done.get_nowait())
        # the pairs carry the job id where the TrialInfo goes; the base class only reads [1]
        return out

    def _cancel(self, tokens: Sequence[int]) -> None:
        self._dispatcher.cancel_queued_jobs(tokens)

    def _close(self) -> None:
        self._dispatcher.shutdown(shutdown_workers=self._cluster is not None)
        if self._cluster is not None:
            self._cluster.shutdown()
            self._cluster = None


__all__ = ["PyroRunner", "RunnerWorker"]
