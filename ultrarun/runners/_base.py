"""The runner interface: submit a trial, collect finished ones (the shape of SMAC3's runners).

A single worker turns one trial into a result (:meth:`AbstractRunner.run`, with the handling
every runner needs once in ``run_wrapper``); a backend decides where that runs through four
hooks, and the base class keeps the bookkeeping, so every backend has the same job semantics.
See docs/runners.md ("Adding a backend").
"""
from __future__ import annotations

import abc
import collections
import concurrent.futures
import logging
import math
import os
import time
import traceback
from dataclasses import dataclass, replace
from typing import Any, Iterator, Mapping, Sequence


from ..errors import (ConfigurationError, FirstRunCrashedException, ResultError,
                      TargetAlgorithmAbortException, UltrarunError)
from ..executor import Executor, RetryPolicy
from ..job import JobStatus, finite_cost, to_plain
from ._trial import Cost, Outcome, TrialInfo, TrialValue, WorkerLost

logger = logging.getLogger(__name__)

@dataclass
class _Pending:
    trial_info: TrialInfo
    attempt: int = 1


def error_info(exc: BaseException) -> dict[str, str]:
    """The ``additional_info`` of a crashed trial: the error and its formatted traceback."""
    return {"error": repr(exc), "traceback": "".join(traceback.format_exception(exc))}


class AbstractRunner(abc.ABC):
    """Submit/collect interface over one backend, plus the single-trial logic in ``run``.

    The loop of an optimiser is: ``submit_trial`` while ``count_available_workers() > 0``, then
    ``wait()``, then consume ``iter_results()``. Failures of the target arrive as statuses;
    only :class:`TargetAlgorithmAbortException` (raised by the target) and, when asked for,
    :class:`FirstRunCrashedException` are raised to the caller.

    Parameters
    ----------
    crash_cost:
        Cost reported for every trial that did not succeed.
    abort_on_first_run_crash:
        Raise :class:`FirstRunCrashedException` if the first finished trial crashed: usually the
        target is broken and every other trial would crash too.
    max_retries, retry_on:
        The :class:`~ultrarun.executor.RetryPolicy` (or pass ``retry``), the same as the
        dispatcher's, with its one default (3): a trial whose worker process vanished is
        resubmitted up to ``max_retries`` times before it is LOST; statuses in ``retry_on``
        are retried too.
    """

    #: The backend applies :attr:`retry` itself (the Pyro runner's dispatcher): its outcomes
    #: are final, and this class retries nothing again (a policy is applied in one place).
    _backend_retries = False

    def __init__(self, *, crash_cost: Cost = math.inf, abort_on_first_run_crash: bool = False,
                 max_retries: int = RetryPolicy.max_retries, retry_on: Any = (), retry: RetryPolicy | None = None
                 ) -> None:
        self.retry = retry or RetryPolicy(max_retries, frozenset(retry_on))
        self._crash_cost = crash_cost
        self._n_workers = 1  # what num_workers reports; parallel backends set their own
        self._abort_on_first_run_crash = bool(abort_on_first_run_crash)
        self._pending: dict[int, _Pending] = {}
        self._results: collections.deque[tuple[TrialInfo, TrialValue]] = collections.deque()
        self._last_token = 0  # a plain int: itertools.count cannot be pickled from 3.14
        self._n_finished = 0
        self._closed = False

    # ------------------------------------------------------------------ single-worker side
    @abc.abstractmethod
    def run(self, config: Any, instance: str | None = None, budget: float | None = None,
            seed: int | None = None, additional_info: dict[str, Any] | None = None,
            ) -> tuple[Any, ...]:
        """Run one trial and return ``(status, cost, runtime, additional_info)``.

        A five-tuple ``(status, cost, runtime, cpu_time, additional_info)`` is accepted too, for
        runners that measure the CPU time of another process. Raising is fine: ``run_wrapper``
        turns the exception into a CRASHED result.
        """

    def run_wrapper(self, trial_info: TrialInfo) -> tuple[TrialInfo, TrialValue]:
        """Run ``trial_info`` through :meth:`run` with the handling every runner needs once.

        Exceptions become CRASHED with the traceback in ``additional_info``; a NaN, infinite or
        missing cost becomes CRASHED; ``additional_info`` is made plain data (numpy values become
        Python values) so results can travel and be written out. Only
        :class:`TargetAlgorithmAbortException` propagates.
        """
        start, cpu_start = time.time(), time.process_time()
        try:
            out = self.run(config=trial_info.config, instance=trial_info.instance,
                           budget=trial_info.budget, seed=trial_info.seed,
                           additional_info=trial_info.additional_info)
            if len(out) == 4:
                status, cost, runtime, info = out
                cpu_time = time.process_time() - cpu_start
            else:
                status, cost, runtime, cpu_time, info = out
            info = dict(info or {})
        except TargetAlgorithmAbortException:
            raise
        except Exception as exc:  # the target's failure is reported, not raised
            status, cost, runtime = JobStatus.CRASHED, None, time.time() - start
            cpu_time, info = time.process_time() - cpu_start, error_info(exc)
        end = time.time()
        if status is JobStatus.SUCCESS:
            try:
                cost = finite_cost(cost)
            except ResultError as exc:
                logger.warning("trial %r is treated as CRASHED: %s", trial_info.config, exc)
                status = JobStatus.CRASHED
                info.update(error_info(exc))
        if status is not JobStatus.SUCCESS:
            cost = self._crash_cost
        try:
            info = to_plain(info, "additional_info")
        except ResultError as exc:
            status, cost, info = JobStatus.CRASHED, self._crash_cost, error_info(exc)
        return trial_info, TrialValue(cost=cost, time=float(runtime), cpu_time=float(cpu_time),
                                      status=status, starttime=start, endtime=end,
                                      additional_info=info)

    # ------------------------------------------------------------------ caller side
    @property
    def num_workers(self) -> int:
        """How many trials this runner can run at the same time."""
        return self._n_workers

    def submit_trial(self, trial_info: TrialInfo) -> None:
        """Start ``trial_info``; its result shows up later in :meth:`iter_results`.

        Parallel backends queue trials beyond their worker count instead of blocking, so a list
        of trials can be submitted at once.
        """
        if self._closed:
            raise UltrarunError(f"{type(self).__name__} is closed; create a new runner")
        if not isinstance(trial_info, TrialInfo):
            raise ConfigurationError(f"submit_trial takes a TrialInfo, got {type(trial_info).__name__}")
        self._last_token += 1
        token = self._last_token
        self._pending[token] = _Pending(trial_info)
        self._submit(token, trial_info)

    def iter_results(self) -> Iterator[tuple[TrialInfo, TrialValue]]:
        """Yield the finished ``(TrialInfo, TrialValue)`` pairs and remove them from the queue."""
        self._collect(0.0)
        while self._results:
            yield self._results.popleft()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until a finished trial can be collected, nothing runs, or ``timeout`` passes.

        Returns whether a result is ready.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        self._collect(0.0)
        while not self._results and self._pending:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            self._collect(remaining)
        return bool(self._results)

    def is_running(self) -> bool:
        """Whether submitted trials have not finished yet."""
        return bool(self._pending)

    def count_available_workers(self) -> int:
        """How many more trials could start right now without queueing."""
        return max(0, self.num_workers - len(self._pending))

    def run_trial(self, trial_info: TrialInfo, timeout: float | None = None,
                  ) -> tuple[TrialInfo, TrialValue]:
        """Submit one trial and wait for it: convenient for scripts and tests, not for loops."""
        self.submit_trial(trial_info)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            for pair in self._results:
                if pair[0] is trial_info:
                    self._results.remove(pair)  # and stop iterating: the deque changed
                    return pair
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TimeoutError(f"trial {trial_info!r} did not finish within {timeout} s")
            self.wait(remaining)

    def cancel_pending(self) -> None:
        """Stop every trial that has not finished and report it as CANCELLED.

        Backends that can, stop the work (kill a worker process, cancel a queued future); a
        thread or a running Dask task cannot be stopped, so it runs on and its result is dropped.
        """
        tokens = list(self._pending)
        if not tokens:
            return
        self._cancel(tokens)
        for token in tokens:
            pending = self._pending.pop(token)
            self._results.append((pending.trial_info, self._failure(
                JobStatus.CANCELLED, {"error": "cancelled before it finished"})))

    def close(self) -> None:
        """Free the backend's resources; idempotent. Unfinished trials are dropped."""
        if self._closed:
            return
        self._closed = True
        self._close()

    def __enter__(self) -> AbstractRunner:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def as_executor(self) -> Executor:
        """This runner as the master's :class:`~ultrarun.executor.Executor`."""
        from ._executor import RunnerExecutor

        return RunnerExecutor(self)

    @property
    def meta(self) -> dict[str, Any]:
        """A description of the runner for logs."""
        return {"name": type(self).__name__, "num_workers": self.num_workers}

    # ------------------------------------------------------------------ backend hooks
    @abc.abstractmethod
    def _submit(self, token: int, trial_info: TrialInfo) -> None:
        """Start one trial; the same token may be submitted again when its worker was lost."""

    @abc.abstractmethod
    def _poll(self, timeout: float | None) -> list[tuple[int, Outcome]]:
        """Return the finished trials, waiting up to ``timeout`` seconds for at least one."""

    def _cancel(self, tokens: Sequence[int]) -> None:
        """Stop the given trials if the backend can; their late outcomes are dropped anyway."""

    def _close(self) -> None:
        """Free the backend's resources (called once)."""

    # ------------------------------------------------------------------ bookkeeping
    def _collect(self, timeout: float | None) -> None:
        if not self._pending:
            return
        for token, outcome in self._poll(timeout):
            self._deliver(token, outcome)

    def _failure(self, status: JobStatus, info: Mapping[str, Any]) -> TrialValue:
        now = time.time()
        return TrialValue(cost=self._crash_cost, status=status, starttime=now, endtime=now,
                          additional_info=dict(info))

    def _deliver(self, token: int, outcome: Outcome) -> None:
        pending = self._pending.get(token)
        if pending is None:
            logger.info("dropping the late result of trial %s: it was cancelled or lost", token)
            return
        if isinstance(outcome, WorkerLost):
            if outcome.retry and self.retry.again(pending.attempt):
                pending.attempt += 1
                logger.warning("worker lost (%s); resubmitting trial %s (attempt %d)",
                               outcome.reason, token, pending.attempt)
                self._submit(token, pending.trial_info)
                return
            value = self._failure(JobStatus.LOST, {"error": outcome.reason,
                                                   "attempts": pending.attempt})
        elif isinstance(outcome, TargetAlgorithmAbortException):
            del self._pending[token]
            raise outcome
        elif isinstance(outcome, concurrent.futures.CancelledError):
            value = self._failure(JobStatus.CANCELLED, {"error": "cancelled before it finished"})
        elif isinstance(outcome, BaseException):
            value = self._failure(JobStatus.CRASHED, error_info(outcome))
        else:
            value = outcome[1]
            if (not self._backend_retries
                    and self.retry.retries(value.status, pending.attempt)):
                pending.attempt += 1
                logger.warning("trial %s ended %s, which is retried (attempt %d)", token,
                               value.status.name, pending.attempt)
                self._submit(token, pending.trial_info)
                return
            if pending.attempt > 1:
                value = replace(value, additional_info={**value.additional_info,
                                                        "attempts": pending.attempt})
        del self._pending[token]
        self._n_finished += 1
        if (self._n_finished == 1 and self._abort_on_first_run_crash
                and value.status is JobStatus.CRASHED):
            raise FirstRunCrashedException(
                "the first trial crashed, so the target is probably broken: "
                f"{value.additional_info.get('error')}\n{value.additional_info.get('traceback', '')}")
        self._results.append((pending.trial_info, value))


class AbstractSerialRunner(AbstractRunner):
    """A runner that executes each trial inside ``submit_trial`` (SMAC3's serial runner)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._done: list[tuple[int, Outcome]] = []

    def _submit(self, token: int, trial_info: TrialInfo) -> None:
        self._done.append((token, run_outcome(self, trial_info)))

    def _poll(self, timeout: float | None) -> list[tuple[int, Outcome]]:
        done, self._done = self._done, []
        return done


class AbstractParallelRunner(AbstractRunner):
    """A backend that runs a *single worker*'s ``run_wrapper`` somewhere else.

    ``single_worker`` is a serial runner (e.g. :class:`TargetFunctionRunner`) that knows how to run
    one trial; the parallel runner only decides where and how many at once. Subclasses implement
    ``_submit``, ``_poll``, ``_cancel``, ``_close`` and set ``_n_workers`` (or ``num_workers``).
    """

    def __init__(self, single_worker: AbstractRunner, **kwargs: Any) -> None:
        if not isinstance(single_worker, AbstractRunner):
            raise ConfigurationError("single_worker must be a runner (e.g. TargetFunctionRunner), "
                                     f"got {type(single_worker).__name__}")
        kwargs.setdefault("crash_cost", single_worker._crash_cost)
        super().__init__(**kwargs)
        self._single_worker = single_worker

    @property
    def single_worker(self) -> AbstractRunner:
        return self._single_worker

    def run(self, config: Any, instance: str | None = None, budget: float | None = None,
            seed: int | None = None, additional_info: dict[str, Any] | None = None,
            ) -> tuple[Any, ...]:
        return self._single_worker.run(config, instance=instance, budget=budget, seed=seed,
                                       additional_info=additional_info)

    def close(self) -> None:
        """Free the backend and the local single worker (its limit children); idempotent."""
        if self._closed:
            return
        super().close()
        self._single_worker.close()


def run_outcome(runner: AbstractRunner, trial_info: TrialInfo) -> Outcome:
    """``runner.run_wrapper(trial_info)``, or the abort it raised, for a backend to hand on."""
    try:
        return runner.run_wrapper(trial_info)
    except TargetAlgorithmAbortException as exc:
        return exc


def check_n_workers(n_workers: int | None, default: int | None = os.cpu_count() or 1
                    ) -> int | None:
    """Validate a worker count argument, with ``None`` meaning ``default`` (the CPU count)."""
    if n_workers is None:
        return default
    if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
        raise ConfigurationError(f"n_workers must be an int >= 1 or None, got {n_workers!r}")
    return n_workers


__all__ = ["TrialInfo", "TrialValue", "WorkerLost", "AbstractRunner", "AbstractSerialRunner",
           "AbstractParallelRunner", "error_info"]
