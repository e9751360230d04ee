"""The master: drives multi-fidelity iterations over an executor and records every result.

It asks the optimizer for configurations (through the iterations' sampler), keeps the job queue
filled relative to the number of workers, and gets results back by callback. It depends on the
executor contract only (:mod:`ultrarun.executor`; docs/architecture.md). Every finished result
is appended and flushed to the journal before the master acts on it, so a master that dies can
be restarted with ``existing="resume"`` and re-runs only the jobs that had not finished.
"""
from __future__ import annotations

import collections
import logging
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from . import _gc
from .errors import ConfigurationError, RecordingError, RunInterrupted, UltrarunError
from .executor import Executor, RetryPolicy
from .iterations import BaseIteration, BaseIterGenerator
from .job import ConfigId, Incumbents, Job, JobStatus, failure_kind, last_line
from .journal import EXISTING, Journal, Replay, header
from .optimizers import BaseOptimizer
from .progress import Progress, ensure_logging
from .results import Result, Run

log = logging.getLogger(__name__)


class _RunState:
    """What one call of :meth:`Master.run` carries from one pass of its loop to the next."""

    def __init__(self, n_iterations: int | None, deadline: float, fits: Any,
                 iteration_kwargs: dict):
        self.to_start = math.inf if n_iterations is None else n_iterations  # iterations left
        self.deadline = deadline  # self.clock.monotonic() at which no job starts any more
        self.fits = fits  # fits(budget) -> bool, None without a deadline
        self.iteration_kwargs = iteration_kwargs
        self.fresh = False  # the newest iteration has not handed out a run yet
        self.unfit = False  # a run was held back because it would outlast the deadline
        self.expected_start: float | None = None  # when a job launched now would start
        self.handed: dict[int, float] = {}  # iteration -> clock time of its latest job


class Master:
    """Runs iterations of a budget schedule with an optimizer on an executor's workers.

    One rule, ``existing``, covers the journal and the result logs of an earlier run in the
    same place. The front ends (``TPE``, ``BOHB``, ...) build the executor from a name server's
    address and take HpBandSter's other arguments; a master is built from parts here. Set
    after construction, if needed: ``shutdown_workers`` (True: leaving a ``with`` block shuts
    the workers down), ``logger``, ``incumbents`` and ``incumbent_performances``, ``clock``
    (``monotonic()`` and ``time()``: the ``time`` module; tests put a fake one there). More:
    docs/master.md.

    Args:
        run_id (Any): The run's id; its name server, workers and master share it.
        optimizer (BaseOptimizer): Chooses the configurations (``ultrarun.optimizers``:
            ``RandomSearch``, ``TPE``, ``BOHB``, ``DEHB``).
        iter_generator (BaseIterGenerator): The budget schedule
            ([HyperBandIterGenerator][ultrarun.iterations.HyperBandIterGenerator],
            [ASHAIterGenerator][ultrarun.iterations.ASHAIterGenerator], ...).
        executor (Any): What runs the jobs: an ``ultrarun.executor.Executor`` such as
            [dispatcher_for][ultrarun.dispatcher.dispatcher_for]'s Pyro dispatcher, or any
            ``ultrarun.runners`` backend. Required.
        working_directory (str | PathLike): Passed to compute; holds the journal by default.
        journal (str | PathLike | Journal | None): The journal's path (default
            ``<working_directory>/ultrarun-<run_id>.journal.jsonl``), or an
            ``ultrarun.journal.Journal`` (its ``fsync_every``: results between fsyncs; 10 here).
        existing (str): ``"refuse"`` an earlier run's journal and logs (an error saying what to
            do), ``"resume"`` its run (its finished jobs are not run again) or ``"overwrite"``
            them.
        result_logger (Any): E.g. [json_result_logger][ultrarun.results.json_result_logger]:
            HpBandSter-format logs of every result.
        time_left_for_this_task (float): Seconds; when used up no job is launched, and no job
            starts that is expected to end later.
        progress_callback (Callable | None): ``f(job, master)``, called after every finished
            job; its exceptions are logged.
        show_progress (bool | None): None: a progress bar on a terminal, else a log line every
            30 s; True: always the bar; False: neither.
        deterministic (bool): Hand results to the iterations and the optimizer in submission
            order, so a seeded run with a fixed number of workers reproduces.
    """

    clock: Any = time
    logger: logging.Logger = log
    shutdown_workers = True  # leaving a ``with`` block shuts the workers down

    def __init__(self, run_id: Any, optimizer: BaseOptimizer, iter_generator: BaseIterGenerator,
                 executor: Any = None, *, working_directory: str | os.PathLike = ".",
                 journal: str | os.PathLike | Journal | None = None, existing: str = "refuse",
                 result_logger: Any = None, time_left_for_this_task: float = math.inf,
                 progress_callback: Callable[[Job, "Master"], Any] | None = None,
                 show_progress: bool | None = None, deterministic: bool = False):
        if not isinstance(optimizer, BaseOptimizer):
            raise ConfigurationError("optimizer must be an ultrarun.optimizers.BaseOptimizer, "
                                     f"got {type(optimizer).__name__}")
        if not isinstance(iter_generator, BaseIterGenerator):
            raise ConfigurationError("iter_generator must be an ultrarun.iterations generator, "
                                     f"got {type(iter_generator).__name__}")
        if executor is None:
            raise ConfigurationError(
                "Master needs an executor: pass executor=ultrarun.dispatcher_for(run_id, "
                "nameserver=..., secret=...) for the run's Pyro workers, or an ultrarun.runners "
                "runner; or use a front end (TPE, BOHB, ...), which takes nameserver=... itself")
        if existing not in EXISTING:
            raise ConfigurationError(f"existing is {existing!r}; it must be one of {EXISTING}")
        if not time_left_for_this_task > 0:
            raise ConfigurationError("time_left_for_this_task must be > 0 seconds")
        self.run_id = run_id
        self.optimizer = optimizer
        self.iter_generator = iter_generator
        self.progress_callback = progress_callback
        self.working_directory = Path(working_directory)
        self.time_left_for_this_task = float(time_left_for_this_task)
        self.user_job_queue_sizes = self.job_queue_sizes = (-1, 0)
        self.dynamic_queue_size = True
        self.result_logger = result_logger
        self.best = Incumbents()
        self.show_progress = show_progress
        self.deterministic = bool(deterministic)
        self.journal = journal if isinstance(journal, Journal) else Journal(
            journal or self.working_directory / f"ultrarun-{run_id}.journal.jsonl", 10)
        self.existing = existing

        self.iterations: list[BaseIteration] = []
        self.jobs: list[Job] = []
        self.num_failed = 0
        self.thread_cond = threading.Condition()
        self.time_ref: float | None = None  # time.time() when the first run started
        self._replay = Replay()  # resuming: what the journal holds
        self._submitted_now = 0  # jobs this run submitted (not replayed)
        self._interrupt = False  # Ctrl-C or SIGTERM: the run is being stopped
        self._replayed: list[tuple[dict, Any, float]] = []  # results the optimizer is not told yet
        self._random_picks = 0  # journal configurations drawn at random it has not skipped yet
        self._progress: Any = None
        self._closed = False
        self._error: RecordingError | None = None  # a result could not be recorded: stop
        self._in_flight = 0  # jobs submitted, not finished
        self._failures: collections.Counter = collections.Counter()  # by kind
        self._submitted: collections.deque = collections.deque()  # deterministic: (id, budget)
        self._arrived: dict[tuple, tuple[Job, bool]] = {}  # deterministic: not applied yet
        self.executor = Executor.of(executor).bind(self.job_callback, self.adjust_queue_size)
        self._warm_runs: list[Run] = []  # previous results' runs, iteration -1 of the Result
        self._warm_configs: dict[ConfigId, tuple[dict, Any]] = {}

    def set_job_queue_sizes(self, job_queue_sizes: tuple[int, int] = (-1, 0),
                            dynamic: bool = True) -> None:
        """How many jobs to keep in flight (HpBandSter's ``job_queue_sizes``).

        Args:
            job_queue_sizes (tuple[int, int]): (min, max) jobs in flight; the default keeps
                one job per job slot.
            dynamic (bool): Whether they count relative to the executor's job slots (workers x
                (1 + prefetch)).
        """
        if len(job_queue_sizes) != 2 or job_queue_sizes[0] > job_queue_sizes[1]:
            raise ConfigurationError(f"job_queue_sizes must be (min, max) with min <= max, got "
                                     f"{job_queue_sizes!r}")
        self.user_job_queue_sizes = self.job_queue_sizes = tuple(job_queue_sizes)
        self.dynamic_queue_size = dynamic

    @property
    def dispatcher(self) -> Executor:
        """The executor (HpBandSter's name for it)."""
        return self.executor

    @property
    def incumbents(self) -> dict:
        """Budget -> the best configuration at it (ultraopt's name)."""
        return self.best.configs

    @incumbents.setter
    def incumbents(self, value: dict) -> None:
        self.best.configs = value

    @property
    def incumbent_performances(self) -> dict:
        """Budget -> the best loss at it (ultraopt's name)."""
        return self.best.losses

    @incumbent_performances.setter
    def incumbent_performances(self, value: dict) -> None:
        self.best.losses = value

    # ------------------------------------------------------------------------ running
    def run(self, n_iterations: int | None = 1, min_n_workers: int = 1,
            iteration_kwargs: dict | None = None,
            min_n_workers_timeout: float | None = None) -> Result:
        """Run ``n_iterations`` more iterations and return the result of all of them.

        Returns once every job it started has finished (or was cancelled); crashed, timed-out and
        lost jobs count as failed and never stall an iteration. With a time limit, a job whose
        estimated duration (from finished jobs) exceeds the time left is not started: the run
        ends on time instead of waiting for a job that started too late.

        Args:
            n_iterations (int | None): Iterations to run; None runs them until
                ``time_left_for_this_task`` is used up.
            min_n_workers (int): Workers to wait for before the first job (saying so every
                10 s).
            iteration_kwargs (dict | None): Passed to every new iteration.
            min_n_workers_timeout (float | None): Seconds to wait for them before giving up
                with an error (None: as long as it takes).

        Returns:
            Result: Every run so far ([Result][ultrarun.results.Result]).
        """
        if n_iterations is None:
            if math.isinf(self.time_left_for_this_task):
                raise ConfigurationError("n_iterations=None runs until the time is up; give "
                                         "time_left_for_this_task too")
        elif n_iterations < 1:
            raise ConfigurationError(f"n_iterations must be >= 1 or None, got {n_iterations}")
        with _TermAsInterrupt():
            try:
                return self._run(n_iterations, min_n_workers, iteration_kwargs,
                                 min_n_workers_timeout)
            except KeyboardInterrupt as exc:
                raise self._interrupted(exc) from None

    def _interrupted(self, exc: KeyboardInterrupt) -> RunInterrupted:
        """Ctrl-C or SIGTERM: stop launching, leave the workers running, keep the journal to
        what finished (the jobs in flight run again on resume), say how to resume. The
        executor stays up until the program ends or calls ``shutdown`` (which stops the
        workers too only when told: ``shutdown_workers=True``)."""
        running = self.num_running_jobs
        self._interrupt = True  # their CANCELLED ends are not journaled: they run again
        try:
            self.executor.cancel_queued_jobs()
        except UltrarunError as exc:
            self.logger.debug("could not cancel the queued jobs: %s", exc)
        self._close_progress()
        with self.thread_cond:
            done = sum(1 for job in self.jobs if job.status is not JobStatus.CANCELLED)
        what = "SIGTERM" if isinstance(exc, _Terminated) else "Ctrl-C"
        return RunInterrupted(
            f"run {self.run_id} interrupted ({what}): {done} results are in the journal "
            f"{self.journal.path}, {running} jobs in flight will run again; the workers keep "
            f"running. To continue, run the same master again with resume=True (a Master: "
            f"existing=\"resume\")")

    def _run(self, n_iterations: int | None, min_n_workers: int,
             iteration_kwargs: dict | None, min_n_workers_timeout: float | None) -> Result:
        if self.show_progress is None and not sys.stderr.isatty():
            ensure_logging(self.logger)  # a batch job's output: what it waits for, resumes...
        self.executor.start()
        with _gc.frozen_startup_objects():  # one full collection, before a journal is read
            self._open_journal()
            self.wait_for_workers(min_n_workers, timeout=min_n_workers_timeout)
            self._open_progress(n_iterations)
            try:
                with self.thread_cond:  # the clock starts now: results' times count from here
                    deadline = self.clock.monotonic() + self.time_left_for_this_task
                    if self.time_ref is None:
                        self.time_ref = self.clock.time()
                    state = _RunState(n_iterations, deadline, None, dict(iteration_kwargs or {}))
                    if not math.isinf(deadline):
                        state.fits = lambda budget: self._fits(state, budget)
                    while self._step(state):
                        pass
                    self._tell_replayed()
                    if self.existing == "resume" and not self._submitted_now:
                        self.logger.info("resumed run %s: the journal held every result; "
                                         "nothing was left to run", self.run_id)
            finally:
                self._close_progress()
            if self._failures:
                self.logger.warning("%d of %d jobs failed: %s", sum(self._failures.values()),
                                    len(self.jobs), ", ".join(f"{kind} x{n}" for kind, n in
                                                             self._failures.most_common()))
            result = self.get_result()  # in the block: its records are frozen, not scanned
            if self.jobs and not any(j.status is JobStatus.SUCCESS for j in self.jobs):
                self.logger.error("run %s: %s", self.run_id, result.no_incumbent_error())
            return result

    def _step(self, state: _RunState) -> bool:
        """One pass of the run loop; False when the run is over. Caller holds thread_cond."""
        self._raise_if_stopped()
        if self.clock.monotonic() >= state.deadline:
            self._stop_launching()
            return False
        self._queue_wait(state.deadline)
        if self.clock.monotonic() >= state.deadline:
            return True
        if self._launch_next(state) or self._start_iteration(state):
            return True
        if self.num_running_jobs == 0 and (state.unfit or not self.active_iterations()):
            if state.unfit:
                self.logger.info("no job fits in the %.1f s left; stopping",
                                 self._remaining(state.deadline))
            return False
        self._wait(self._remaining(state.deadline))
        return True

    def _stop_launching(self) -> None:
        """The time is up: cancel what waits, let what runs finish."""
        self.logger.info("time is up: no new jobs; cancelling the queued ones and waiting for "
                         "%d running", self.num_running_jobs)
        self.executor.cancel_queued_jobs()
        while self.num_running_jobs > 0:
            self._wait(1.0)

    def _launch_next(self, state: _RunState) -> bool:
        """Submit the next run of the oldest active iteration that has one (and that fits)."""
        state.unfit, state.expected_start = False, None
        for i in self.active_iterations():
            run = self.iterations[i].get_next_run(state.fits)
            if run is not None:
                self._submit_job(*run)
                state.fresh, state.handed[i] = False, self.clock.monotonic()
                return True
            if (hold := self._hold(state, i)) is not None:
                self._wait(hold)  # until a result comes in, or the hold is over
                return True
        if state.fresh and state.unfit:
            state.to_start = 0  # not even a new iteration's first job fits any more
        return False

    def _hold(self, state: _RunState, i: int) -> float | None:
        """Seconds to keep a free worker for iteration ``i`` (None: none): while its next stage
        needs more workers than its running jobs and the free ones, if its latest job should
        end within 5% of its duration; never with no duration known, nor when deterministic."""
        barrier = None if self.deterministic else self.iterations[i].barrier
        if barrier is None or i not in state.handed:
            return None
        budget, short = barrier
        if short < self.job_queue_sizes[1] - self.num_running_jobs:  # the free slots will do
            return None
        estimate = self.executor.durations.estimate(budget)
        if not estimate:
            return None
        left, margin = state.handed[i] + estimate - self.clock.monotonic(), 0.05 * estimate
        return left + margin if -margin < left <= margin else None

    def _start_iteration(self, state: _RunState) -> bool:
        if state.to_start <= 0:
            return False
        self.iterations.append(self.get_next_iteration(len(self.iterations),
                                                       state.iteration_kwargs))
        self.iterations[-1].decided = self._replay.configs
        state.to_start -= 1
        state.fresh = True
        return True

    @property
    def num_running_jobs(self) -> int:
        """Jobs submitted and not finished yet (running, held by a worker, or queued)."""
        return self._in_flight

    def wait_for_workers(self, min_n_workers: int = 1, timeout: float | None = None,
                         report_every: float = 10.0) -> None:
        """Block until at least ``min_n_workers`` workers are in the pool.

        Args:
            min_n_workers (int): Workers to wait for.
            timeout (float | None): Seconds to wait; None waits as long as it takes.
            report_every (float): Seconds between the warnings that say what it waits for.

        Raises:
            UltrarunError: The timeout is over.
        """
        start = self.clock.monotonic()
        deadline = math.inf if timeout is None else start + timeout
        self.executor.start()  # idempotent: lets callers wait before run()
        where = f"run {self.run_id}" + (f" at {self.executor.where}"
                                        if getattr(self.executor, "where", None) else "")
        report = start + report_every
        self.logger.info("waiting for workers of %s (%d of %d so far)%s", where,
                         self.executor.number_of_workers(), min_n_workers, self._other_runs())
        with self.thread_cond:
            while (n := self.executor.number_of_workers()) < min_n_workers:
                now = self.clock.monotonic()
                if now >= deadline:
                    raise UltrarunError(
                        f"gave up waiting for workers of {where} after {timeout:g} s: {n} of "
                        f"{min_n_workers} registered{self._other_runs()}. Are the workers "
                        f"started with --run-id {self.run_id} and this name server? `ultrarun "
                        "status` shows who is registered")
                if now >= report:
                    self.logger.warning("still waiting for workers of %s (%d of %d so far, "
                                        "%.0f s)%s", where, n, min_n_workers, now - start,
                                        self._other_runs())
                    report = now + report_every
                self.executor.trigger_discover_worker()
                self.thread_cond.wait(max(0.0, min(1.0, report - now, deadline - now)))
        self.adjust_queue_size()

    def _other_runs(self) -> str:
        """``; the name server has workers of run(s) exp2 (4): is the run id right?``, or
        nothing (no other run's workers, or an executor that cannot tell)."""
        other_runs = getattr(self.executor, "other_runs", None)
        runs = other_runs() if other_runs is not None else {}
        if not runs:
            return ""
        listed = ", ".join(f"{run} ({n})" for run, n in runs.items())
        return f"; the name server has workers of run(s) {listed}: is the run id right?"

    def active_iterations(self) -> list[int]:
        """Indices of the iterations that are not finished."""
        return [i for i, it in enumerate(self.iterations) if not it.is_finished]

    def get_next_iteration(self, iteration: int, iteration_kwargs: dict | None = None) -> BaseIteration:
        return self.iter_generator.get_next_iteration(iteration, self._sample,
                                                      **(iteration_kwargs or {}))

    def adjust_queue_size(self, number_of_workers: int | None = None) -> None:
        """Keep (min, max) jobs in flight relative to the executor's job slots (when dynamic)."""
        with self.thread_cond:
            workers = (self.executor.number_of_workers() if number_of_workers is None
                       else number_of_workers)
            if self.dynamic_queue_size:
                slots = workers * (1 + self.executor.prefetch)
                self.job_queue_sizes = (self.user_job_queue_sizes[0] + slots,
                                        self.user_job_queue_sizes[1] + slots)
            self.thread_cond.notify_all()

    def _queue_wait(self, deadline: float) -> None:
        if self.num_running_jobs >= self.job_queue_sizes[1]:
            while (self.num_running_jobs > self.job_queue_sizes[0]
                   and self.clock.monotonic() < deadline):
                self._wait(self._remaining(deadline))

    def _fits(self, state: _RunState, budget: float) -> bool:
        """Whether a job at ``budget`` is expected to finish before the deadline: it starts when
        the executor expects a slot to be free (now, if it cannot tell) and takes what jobs at
        that budget took (the executor's durations; with none finished yet, every job fits).
        Caller holds thread_cond."""
        estimate = self.executor.durations.estimate(budget)
        if estimate is None:
            return True
        if state.expected_start is None:  # the same for every budget tried: ask once
            state.expected_start = self.executor.expected_start() or self.clock.monotonic()
        if state.expected_start + estimate <= state.deadline:
            return True
        state.unfit = True
        return False

    def _remaining(self, deadline: float) -> float | None:
        """Seconds until ``deadline`` for Condition.wait (None: no deadline)."""
        return None if math.isinf(deadline) else max(0.0, deadline - self.clock.monotonic())

    def _wait(self, timeout: float | None) -> None:
        """Wait for a result. Deterministic: apply the next result in submission order instead,
        if it is in (one per wait, so each decision sees the same results). Caller holds
        thread_cond."""
        self._raise_if_stopped()
        if self.deterministic and self._submitted and self._submitted[0] in self._arrived:
            self._apply_result(*self._arrived.pop(self._submitted.popleft()))
            return
        self.thread_cond.wait(timeout=timeout)
        self._raise_if_stopped()

    # ------------------------------------------------------------------- jobs
    def _sample(self, budget: float, n: int) -> list[tuple[dict, dict]]:
        self._tell_replayed()  # the optimizer knows every earlier result before it picks
        return self.optimizer.ask(budget, n)

    def _tell_replayed(self) -> None:
        """Resuming: tell the optimizer the journal's results replayed since the last call, in
        one batch (iterations take the journal's configurations without asking it)."""
        if self._replayed or self._random_picks:
            results, self._replayed = self._replayed, []
            picks, self._random_picks = self._random_picks, 0
            try:
                self.optimizer.replay(results, picks)
            except Exception:  # as for a result: a broken optimizer must not stall the run
                self.logger.exception("the optimizer could not take the journal's results")

    def _submit_job(self, config_id: ConfigId, config: dict, budget: float) -> None:
        """Submit a job, or, resuming, replay its journaled result. Caller holds thread_cond."""
        config_id = tuple(config_id)
        datum = self.iterations[config_id[0]].data[config_id]
        done = self._replay.results.get((config_id, float(budget)))
        new = budget == min(datum.losses, default=datum.budget)  # its first job
        journaled = new and config_id in self._replay.configs  # the optimizer did not pick it
        try:
            if new and not journaled:  # a resumed configuration is in the journal
                self.journal.write({"t": "config", "id": config_id, "config": config,
                                    "info": datum.config_info})
            if new and self.result_logger is not None and (
                    not journaled or hasattr(self.result_logger, "complete")):
                # resumed: a logger that completes its logs skips what they hold (a crash may
                # have come between the journal and the logs)
                self.result_logger.new_config(config_id, config, datum.config_info)
        except Exception as exc:
            raise RecordingError(f"could not record the configuration {config_id}: "
                                 f"{type(exc).__name__}: {exc}; the run stops") from exc
        if (journaled or not new) and done is None:  # a promotion, or a journaled
            self.optimizer.mark_running(config, budget)  # configuration without a result
        self._random_picks += journaled and not datum.config_info.get("model_based_pick", False)
        self._in_flight += 1
        if self.deterministic:
            self._submitted.append((config_id, float(budget)))
        kwargs = {"config": config, "budget": budget, "config_info": datum.config_info,
                  "working_directory": str(self.working_directory)}
        if done is None:
            self.executor.submit_job(config_id, **kwargs)
            self._submitted_now += 1
            return
        job = Job(id=config_id, kwargs=kwargs, status=JobStatus(done["status"]),
                  result=done.get("result"), exception=done.get("exception"),
                  worker_name=done.get("worker"), attempt=int(done.get("attempt", 1)),
                  timestamps=dict(done.get("timestamps") or {}))
        self.job_callback(job, replayed=True)

    def job_callback(self, job: Job, replayed: bool = False) -> None:
        """A finished job: journal and log it (outside the lock: no file write holds up the
        run loop), then tell the iteration and the optimizer. A result that cannot be recorded
        is not acted on: the run stops with a ``RecordingError`` (``run`` raises it)."""
        if self._interrupt and job.status is JobStatus.CANCELLED:
            return  # in flight at Ctrl-C: not the user's failure, it runs again on resume
        try:
            if not replayed:  # journaled before the master acts on it
                self.journal.write({"t": "result", "id": tuple(job.id),
                                    "budget": job.kwargs["budget"], "status": job.status.value,
                                    "result": job.result, "exception": job.exception,
                                    "timestamps": job.timestamps, "attempt": job.attempt,
                                    "worker": job.worker_name, "duration": job.duration},
                                   sync=True)
                if self.result_logger is not None:
                    self.result_logger(job)
            elif hasattr(self.result_logger, "complete"):  # what a crash kept from the logs
                self.result_logger.complete(job)
            if self.deterministic:  # applied by the run loop, in submission order (_wait)
                with self.thread_cond:
                    self._arrived[(tuple(job.id), float(job.kwargs["budget"]))] = (job, replayed)
                    self.thread_cond.notify_all()
                return
            self._apply_result(job, replayed)
        except Exception as exc:  # never swallowed, never a wait: the run loop raises it
            self._stop_on(RecordingError(
                f"could not record the result of job {job.id} at budget "
                f"{job.kwargs.get('budget')} ({job.status.name}): {type(exc).__name__}: {exc}; "
                "the run stops (resume=True continues it from the journal)"), exc)

    def _stop_on(self, error: RecordingError, cause: BaseException) -> None:
        """Stop the run with ``error`` (the first one is kept): the run loop raises it."""
        error.__cause__ = cause
        self.logger.error("%s", error)
        with self.thread_cond:
            if self._error is None:
                self._error = error
            self.thread_cond.notify_all()

    def _raise_if_stopped(self) -> None:
        if self._error is not None:
            raise self._error

    def _apply_result(self, job: Job, replayed: bool) -> None:
        """Tell the iteration and the optimizer about a finished job."""
        config_id = tuple(job.id)
        budget = job.kwargs["budget"]
        config = job.kwargs["config"]
        with self.thread_cond:
            self.jobs.append(job)
            if replayed and len(self.jobs) % 100 == 0:  # they live for the run: frozen, no
                # collection scans them (a resumed run replays 100,000s)
                _gc.freeze_live()
            self._in_flight = max(0, self._in_flight - 1)
            loss = job.result["loss"] if job.status is JobStatus.SUCCESS and job.result else None
            self.num_failed += job.status.failed
            if job.status.failed and job.status is not JobStatus.CANCELLED:
                self._report_failure(job)
            self.best.offer(budget, loss, config_id, config)
            try:
                self.iterations[config_id[0]].register_result(
                    config_id, budget, loss, job.status,
                    None if job.result is None else job.result.get("info"))
            except (IndexError, UltrarunError):
                self.logger.exception("result of %s does not fit any iteration; ignored", job.id)
            try:
                if replayed:  # told with the others before the optimizer picks again
                    if job.status is not JobStatus.CANCELLED:
                        self._replayed.append((config, loss, budget))
                elif job.status is JobStatus.CANCELLED:
                    self.optimizer.cancel(config, budget)
                else:
                    self._tell_replayed()
                    self.optimizer.tell(config, loss, budget)
            except Exception:  # a broken optimizer must not lose the result or stall the run
                self.logger.exception("the optimizer could not take the result of %s", job.id)
            if self._progress is not None:
                self._progress.update(self.num_running_jobs, self.num_failed, self.best.losses)
            self.thread_cond.notify_all()
        if self.progress_callback is not None:
            try:
                self.progress_callback(job, self)
            except Exception:
                self.logger.exception("progress_callback raised; continuing")

    def _report_failure(self, job: Job) -> None:
        """The first failure of each kind is a warning with its reason; the rest are counted
        (summed up at the end of ``run``). Caller holds thread_cond."""
        kind = failure_kind(job.status, job.exception)
        self._failures[kind] += 1
        if self._failures[kind] == 1:
            self.logger.warning("job %s at budget %s ended %s: %s (the first %s; %d failed so far;"
                                " the whole text is in the result's error_logs)", job.id,
                                job.kwargs.get("budget"), job.status.name,
                                last_line(job.exception), kind, self.num_failed)

    # ------------------------------------------------------------------- the journal
    def _open_journal(self) -> None:
        """Open the journal and the result logs once, by the ``existing`` rule (resuming: read
        the journal back, refuse another run's)."""
        if self.journal.is_open:
            return
        self.journal.refuse_earlier(self.existing)
        if hasattr(self.result_logger, "open"):
            self.result_logger.open(self.existing)
        if hasattr(self.result_logger, "log_configspace"):  # the report's log axes
            self.result_logger.log_configspace(getattr(self.optimizer, "configspace", None))
        self._replay = self.journal.start(header(self.run_id, self.optimizer,
                                                 self.iter_generator), self.existing)
        if self.existing == "resume":
            self.logger.info("resuming from %s: %d results replayed, %s", self.journal.path,
                             len(self._replay.results), f"{self._replay.again} jobs to run "
                             "again" if self._replay.again else "no job was left unfinished")

    # ------------------------------------------------------------------- results
    def get_result(self) -> Result:
        configs = {cid: d for it in self.iterations for cid, d in it.data.items()}
        budgets = sorted({float(j.kwargs["budget"]) for j in self.jobs})
        hb_config = {"time_ref": self.time_ref, "budgets": budgets,
                     "max_budget": max(self.iter_generator.budgets or budgets or [0.0]),
                     "min_budget": min(self.iter_generator.budgets or budgets or [0.0])}
        # warm-start runs end at time 0 of this run (as in HpBandSter): absolute = ref + relative
        ref = self.time_ref or 0.0
        warm = [Run(r.config_id, r.budget, r.loss, r.info,
                    {k: v + ref for k, v in r.time_stamps.items() if v is not None},
                    r.error_logs, r.status) for r in self._warm_runs]
        configs.update(self._warm_configs)
        with _gc.paused():
            return Result.from_runs(warm + self.jobs, configs, hb_config)

    def warm_start(self, previous: Result) -> None:
        """Tell the optimizer every result of an earlier run (HpBandSter's ``previous_result``).

        The Result of this run shows them as iteration -1, ids ``(-1, 0, i)``, shifted so that
        the last one finished at time 0.

        Args:
            previous (Result): The earlier run's result.
        """
        id2conf = previous.get_id2config_mapping()
        finished = [r.time_stamps.get("finished") for r in previous.get_all_runs()]
        shift = -max([t for t in finished if t is not None], default=0.0)
        new_ids: dict[Any, ConfigId] = {}
        for run in previous.get_all_runs():
            config = id2conf.get(run.config_id, {}).get("config")
            if config is None:
                continue
            if run.config_id not in new_ids:
                new_ids[run.config_id] = (-1, 0, len(new_ids))
                self._warm_configs[new_ids[run.config_id]] = (
                    config, id2conf[run.config_id].get("config_info", {}))
            self._warm_runs.append(Run(new_ids[run.config_id], run.budget, run.loss, run.info,
                                       {k: v + shift for k, v in run.time_stamps.items()
                                        if v is not None}, run.error_logs, run.status))
            self.optimizer.tell(config, run.loss, run.budget)
            self.best.offer(run.budget, run.loss, new_ids[run.config_id], config)
        self.logger.info("warm start: told the optimizer %d earlier results", len(self._warm_runs))

    # ------------------------------------------------------------------- progress
    def _open_progress(self, n_iterations: int | None) -> None:
        """A bar on a terminal (or with show_progress=True), INFO log lines otherwise."""
        if self.show_progress is False:
            return
        counts = ([] if n_iterations is None else
                  [self.iter_generator.num_jobs(len(self.iterations) + i)
                   for i in range(n_iterations)])
        total = sum(counts) if counts and None not in counts else None
        bar = bool(self.show_progress or sys.stderr.isatty())
        if not bar:  # a line every 30 s, the first after 10 s, even if nobody set up logging
            ensure_logging(self.logger)
        self._progress = Progress(self.run_id, total=total,
                                  time_left=self.time_left_for_this_task, bar=bar,
                                  logger=self.logger, first=_FIRST_PROGRESS_LINE).start()

    def _close_progress(self) -> None:
        if self._progress is not None:
            self._progress.close()
            self._progress = None

    # ------------------------------------------------------------------- lifecycle
    def shutdown(self, shutdown_workers: bool = False) -> None:
        """Stop the executor (and the workers, if asked) and close the journal. Idempotent.

        Args:
            shutdown_workers (bool): Shut the workers down too.
        """
        if self._closed:
            return
        self._closed = True
        self.executor.shutdown(shutdown_workers=shutdown_workers)
        self.journal.close()
        self._close_progress()

    def __enter__(self) -> "Master":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown(shutdown_workers=self.shutdown_workers)


_FIRST_PROGRESS_LINE = 10.0  # seconds into a run without a terminal: its first progress line


class _Terminated(KeyboardInterrupt):
    """SIGTERM, as the master's run takes it: like Ctrl-C."""


class _TermAsInterrupt:
    """While a run runs in the main thread, SIGTERM (a batch scheduler's) stops it as Ctrl-C
    does, unless the program handles SIGTERM itself."""

    def __enter__(self) -> "_TermAsInterrupt":
        self._saved = None
        if threading.current_thread() is threading.main_thread():
            if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
                self._saved = signal.signal(signal.SIGTERM, self._raise)
        return self

    @staticmethod
    def _raise(signum: int, frame: Any) -> None:
        raise _Terminated()

    def __exit__(self, *exc: Any) -> None:
        if self._saved is not None:
            signal.signal(signal.SIGTERM, self._saved)


__all__ = ["Master"]
