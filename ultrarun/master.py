"""The master: drives multi-fidelity iterations over a dispatcher and records every result.

It asks the optimizer for configurations (through the iterations' sampler), keeps the job queue
filled relative to the number of workers, and gets results back by callback. Every finished
result is appended and flushed to the journal before the master acts on it, so a master that
dies can be restarted with ``resume=True`` and re-runs only the jobs that had not finished.
"""
from __future__ import annotations

import bisect
import collections
import hashlib
import logging
import math
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from . import _gc
from ._files import JsonLines, read_json_lines
from .dispatcher import Dispatcher
from .errors import ConfigurationError, UltrarunError
from .iterations import BaseIteration, BaseIterGenerator
from .job import ConfigId, Job, JobStatus
from .optimizers import BaseOptimizer
from .progress import Progress
from .results import Result, Run
from .transport import DEFAULT_NAMESERVER_PORT

log = logging.getLogger(__name__)


class Journal(JsonLines):
    """Append-only JSON lines: one line per configuration and per finished job.

    Lines are flushed as they are written and fsync'ed every ``fsync_every`` results; a torn last
    line (the master died mid-write) is cut before appending and skipped on reading. Lines are
    written and read by ``ultrarun/_files.py``; this class knows the records.
    """

    def read(self) -> tuple[dict | None, dict[ConfigId, dict], dict[tuple[ConfigId, float], dict]]:
        """``(header, configs by id, results by (id, budget))`` from an earlier run."""
        header: dict | None = None
        configs: dict[ConfigId, dict] = {}
        results: dict[tuple[ConfigId, float], dict] = {}
        for _, record in read_json_lines(self.path):
            if record["t"] == "header":
                header = record
            elif record["t"] == "config":
                configs[tuple(record["id"])] = record
            elif record["t"] == "result":
                results[(tuple(record["id"]), float(record["budget"]))] = record
        return header, configs, results


class Master:
    """Runs iterations of a budget schedule with an optimizer on the run's workers.

    The parameters mean what they mean in HpBandSter and ultraopt. ``job_queue_sizes`` are
    (min, max) jobs in flight, relative to the number of workers when ``dynamic_queue_size``;
    ``time_left_for_this_task`` (seconds) stops launching jobs when it is used up;
    ``previous_result`` warm-starts the optimizer; ``checkpoint_file`` is the journal's path
    (default ``<working_directory>/ultrarun-<run_id>.journal.jsonl``) and ``checkpoint_freq`` how
    many results may pass between fsyncs of it. ``prefetch=1`` lets each worker hold its next job
    while it computes (the dispatcher's option), which keeps workers busy when jobs are short;
    the queue sizes then count job slots (workers x (1 + prefetch)). ``dispatcher`` lets another executor with the
    dispatcher's interface (``start``, ``submit_job``, ``number_of_workers``, ``shutdown``) run the
    jobs, and ``runner`` any :mod:`ultrarun.runners` backend (process, Dask, MPI, ...); by default
    a :class:`~ultrarun.dispatcher.Dispatcher` on the name server is used.
    """

    def __init__(self, run_id: Any, optimizer: BaseOptimizer, iter_generator: BaseIterGenerator,
                 progress_callback: Callable[[Job, "Master"], Any] | None = None,
                 checkpoint_file: str | os.PathLike | None = None, checkpoint_freq: int = 10,
                 working_directory: str | os.PathLike = ".", ping_interval: float = 60,
                 time_left_for_this_task: float = math.inf, nameserver: str = "127.0.0.1",
                 nameserver_port: int | None = None, host: str | None = None,
                 shutdown_workers: bool = True, job_queue_sizes: tuple[int, int] = (-1, 0),
                 dynamic_queue_size: bool = True, result_logger: Any = None,
                 previous_result: Result | None = None,
                 incumbents: dict[float, dict] | None = None,
                 incumbent_performances: dict[float, float] | None = None, *,
                 resume: bool = False, show_progress: bool | None = None, prefetch: int = 0,
                 secret: str | None = None, dispatcher: Any = None, runner: Any = None,
                 logger: logging.Logger | None = None, tls: Any = None):
        if not isinstance(optimizer, BaseOptimizer):
            raise ConfigurationError("optimizer must be an ultrarun.optimizers.BaseOptimizer, "
                                     f"got {type(optimizer).__name__}")
        if not isinstance(iter_generator, BaseIterGenerator):
            raise ConfigurationError("iter_generator must be an ultrarun.iterations generator, "
                                     f"got {type(iter_generator).__name__}")
        if len(job_queue_sizes) != 2 or job_queue_sizes[0] > job_queue_sizes[1]:
            raise ConfigurationError(f"job_queue_sizes must be (min, max) with min <= max, got "
                                     f"{job_queue_sizes!r}")
        if not time_left_for_this_task > 0:
            raise ConfigurationError("time_left_for_this_task must be > 0 seconds")
        self.run_id = run_id
        self.optimizer = optimizer
        self.iter_generator = iter_generator
        self.progress_callback = progress_callback
        self.working_directory = Path(working_directory)
        self.time_left_for_this_task = float(time_left_for_this_task)
        self.shutdown_workers = shutdown_workers
        self.user_job_queue_sizes = tuple(job_queue_sizes)
        self.job_queue_sizes = tuple(job_queue_sizes)
        self.dynamic_queue_size = dynamic_queue_size
        self.result_logger = result_logger
        self.incumbents: dict[float, dict] = dict(incumbents or {})
        self.incumbent_performances: dict[float, float] = dict(incumbent_performances or {})
        self.show_progress = show_progress
        self.logger = logger or log
        self.journal = Journal(checkpoint_file or self.working_directory /
                               f"ultrarun-{run_id}.journal.jsonl", fsync_every=checkpoint_freq)
        self.resume = resume

        self.iterations: list[BaseIteration] = []
        self.jobs: list[Job] = []
        self.num_failed = 0
        self.thread_cond = threading.Condition()
        self.config: dict[str, Any] = {"time_ref": None}
        self._replay_configs: dict[ConfigId, dict] = {}
        self._replay_results: dict[tuple[ConfigId, float], dict] = {}
        self._progress: Any = None
        self._closed = False
        self._deadline = math.inf  # time.monotonic() at which run() stops launching
        self._durations: dict[float, collections.deque] = {}  # seconds per job, by budget
        self._median: dict[float, float] = {}  # the median of each of those
        self._worker_free_at: dict[str, float] = {}  # when each worker's last job finished
        self._in_flight: collections.Counter = collections.Counter()  # running jobs per budget
        self._n_workers = 0  # as of the last adjust_queue_size
        self._unfit = False  # a run was held back because it would outlast the deadline
        self._expected_start: float | None = None  # when a job launched now would start

        if runner is not None:
            from .runners import RunnerDispatcher

            dispatcher = RunnerDispatcher(runner)
        if dispatcher is None:
            dispatcher = Dispatcher(self.job_callback, run_id=run_id, ping_interval=ping_interval,
                                    nameserver=nameserver, nameserver_port=nameserver_port,
                                    host=host, queue_callback=self.adjust_queue_size,
                                    secret=secret, prefetch=prefetch, tls=tls)
        else:
            dispatcher.new_result_callback = self.job_callback
            dispatcher.queue_callback = self.adjust_queue_size
        self.dispatcher = dispatcher
        self._warm_runs: list[Run] = []  # previous_result's runs, iteration -1 of the Result
        self._warm_configs: dict[ConfigId, tuple[dict, Any]] = {}
        if previous_result is not None:
            self._warm_start(previous_result)

    # ------------------------------------------------------------------------ running
    def run(self, n_iterations: int | None = 1, min_n_workers: int = 1,
            iteration_kwargs: dict | None = None,
            min_n_workers_timeout: float | None = None) -> Result:
        """Run ``n_iterations`` more iterations; returns the :class:`Result` of all of them.

        Returns once every job it started has finished (or was cancelled); crashed, timed-out and
        lost jobs count as failed and never stall an iteration. ``n_iterations=None`` runs
        iterations until ``time_left_for_this_task`` is used up. With a time limit, a job whose
        estimated duration (from finished jobs) exceeds the time left is not started: the run
        ends on time instead of waiting for a job that started too late. It first waits for
        ``min_n_workers`` workers, saying so every 10 s, and gives up with an error after
        ``min_n_workers_timeout`` seconds (None: waits as long as it takes).
        """
        if n_iterations is None:
            if math.isinf(self.time_left_for_this_task):
                raise ConfigurationError("n_iterations=None runs until the time is up; give "
                                         "time_left_for_this_task too")
        elif n_iterations < 1:
            raise ConfigurationError(f"n_iterations must be >= 1 or None, got {n_iterations}")
        iteration_kwargs = dict(iteration_kwargs or {})
        self.dispatcher.start()
        if self.journal._fh is None:
            header = self._journal_header()
            if self.resume:
                earlier, self._replay_configs, self._replay_results = self.journal.read()
                _check_same_run(earlier, header, self.journal.path)
                self.logger.info("resuming from %s: %d configurations, %d results",
                                 self.journal.path, len(self._replay_configs),
                                 len(self._replay_results))
            fresh = not (self.resume and self.journal.path.exists())
            self.journal.open(append=not fresh)
            if fresh:
                self.journal.write(header, sync=True)
        self.wait_for_workers(min_n_workers, timeout=min_n_workers_timeout)
        to_start = math.inf if n_iterations is None else n_iterations
        fresh = False  # the newest iteration has not handed out a run yet
        self._open_progress(n_iterations)
        try:
            with _gc.frozen_startup_objects(), self.thread_cond:
                # the clock starts after the freeze's one full collection (tens of ms), and the
                # results' times count from the same moment
                deadline = self._deadline = time.monotonic() + self.time_left_for_this_task
                if self.config["time_ref"] is None:
                    self.config["time_ref"] = time.time()
                fits = None if math.isinf(deadline) else self._fits
                while True:
                    if time.monotonic() >= deadline:
                        self.logger.info("time is up: no new jobs; cancelling the queued ones and "
                                         "waiting for %d running", self.num_running_jobs)
                        self.dispatcher.cancel_queued_jobs()
                        self._wait_for_running()
                        break
                    self._queue_wait(deadline)
                    if time.monotonic() >= deadline:
                        continue
                    run, self._unfit, self._expected_start = None, False, None
                    for i in self.active_iterations():
                        run = self.iterations[i].get_next_run(fits)
                        if run is not None:
                            break
                    if run is not None:
                        self._submit_job(*run)
                        fresh = False
                        continue
                    if fresh and self._unfit:
                        to_start = 0  # not even a new iteration's first job fits any more
                    if to_start > 0:
                        self.iterations.append(self.get_next_iteration(len(self.iterations),
                                                                       iteration_kwargs))
                        to_start -= 1
                        fresh = True
                        continue
                    if self.num_running_jobs == 0 and (self._unfit or
                                                       not self.active_iterations()):
                        if self._unfit:
                            self.logger.info("no job fits in the %.1f s left; stopping",
                                             _remaining(deadline))
                        break
                    self.thread_cond.wait(timeout=_remaining(deadline))
        finally:
            self._close_progress()
        return self.get_result()

    @property
    def num_running_jobs(self) -> int:
        """Jobs submitted and not finished yet (running, held by a worker, or queued)."""
        return sum(self._in_flight.values())

    def wait_for_workers(self, min_n_workers: int = 1, timeout: float | None = None,
                         report_every: float = 10.0) -> None:
        """Block until at least ``min_n_workers`` workers are in the pool.

        Says what it waits for, and where, every ``report_every`` seconds (a warning); with a
        ``timeout`` (seconds), raises :class:`~ultrarun.errors.UltrarunError` when it is over.
        """
        start = time.monotonic()
        deadline = math.inf if timeout is None else start + timeout
        self.dispatcher.start()  # idempotent: lets callers wait before run()
        d = self.dispatcher
        where = f"run {self.run_id}" + (
            f" at {d.nameserver or '127.0.0.1'}:{d.nameserver_port or DEFAULT_NAMESERVER_PORT}"
            if isinstance(d, Dispatcher) else "")
        report = start + report_every
        self.logger.info("waiting for workers of %s (%d of %d so far)", where,
                         self.dispatcher.number_of_workers(), min_n_workers)
        with self.thread_cond:
            while (n := self.dispatcher.number_of_workers()) < min_n_workers:
                now = time.monotonic()
                if now >= deadline:
                    raise UltrarunError(
                        f"gave up waiting for workers of {where} after {timeout:g} s: {n} of "
                        f"{min_n_workers} registered. Are the workers started with --run-id "
                        f"{self.run_id} and this name server? `ultrarun status` shows who is "
                        "registered")
                if now >= report:
                    self.logger.warning("still waiting for workers of %s (%d of %d so far, "
                                        "%.0f s)", where, n, min_n_workers, now - start)
                    report = now + report_every
                self.dispatcher.trigger_discover_worker()
                self.thread_cond.wait(max(0.0, min(1.0, report - now, deadline - now)))
        self.adjust_queue_size()

    def active_iterations(self) -> list[int]:
        """Indices of the iterations that are not finished."""
        return [i for i, it in enumerate(self.iterations) if not it.is_finished]

    def get_next_iteration(self, iteration: int, iteration_kwargs: dict | None = None) -> BaseIteration:
        return self.iter_generator.get_next_iteration(iteration, self._sample,
                                                      **(iteration_kwargs or {}))

    def adjust_queue_size(self, number_of_workers: int | None = None) -> None:
        """Keep (min, max) jobs in flight relative to the number of workers (when dynamic)."""
        with self.thread_cond:
            self._n_workers = (self.dispatcher.number_of_workers() if number_of_workers is None
                               else number_of_workers)
            if self.dynamic_queue_size:
                nw = self._n_workers * (1 + getattr(self.dispatcher, "prefetch", 0))  # job slots
                self.job_queue_sizes = (self.user_job_queue_sizes[0] + nw,
                                        self.user_job_queue_sizes[1] + nw)
            self.thread_cond.notify_all()

    def _queue_wait(self, deadline: float) -> None:
        if self.num_running_jobs >= self.job_queue_sizes[1]:
            while (self.num_running_jobs > self.job_queue_sizes[0]
                   and time.monotonic() < deadline):
                self.thread_cond.wait(timeout=_remaining(deadline))

    def _fits(self, budget: float) -> bool:
        """Whether a job at ``budget`` is expected to finish before the deadline.

        A job's duration is the median of the last finished jobs at its budget, or, for a budget
        not seen yet, the nearest smaller (else larger) seen budget's scaled linearly; with no
        finished job yet, every job fits. It starts when the dispatcher expects a worker to be
        free for it (after what the workers hold and the jobs queued ahead of it), or, with a
        dispatcher that cannot tell, after the shortest running job when every worker is busy.
        Caller holds thread_cond.
        """
        estimate = self._estimate(budget)
        if estimate is None:
            return True
        if self._expected_start is None:  # the same for every budget tried: ask once
            expected_start = getattr(self.dispatcher, "expected_start", None)
            start = expected_start() if expected_start is not None else None
            if start is None:
                start = time.monotonic()
                if self._in_flight and self.num_running_jobs >= self._n_workers:
                    start += self._estimate(min(self._in_flight)) or 0.0
            self._expected_start = start
        if self._expected_start + estimate <= self._deadline:
            return True
        self._unfit = True
        return False

    def _estimate(self, budget: float) -> float | None:
        """Seconds a job at ``budget`` holds a worker (None: nothing finished yet)."""
        budget = float(budget)
        known = self._median.get(budget)
        if known is not None or not self._median:
            return known
        seen = sorted(self._median)
        near = seen[max(bisect.bisect_left(seen, budget) - 1, 0)]
        return self._median[near] * budget / near

    def _record_duration(self, job: Job) -> None:
        """How long the job held its worker: from when it was sent, or, when it was sent ahead
        (prefetch), from when the worker finished its previous job. Caller holds thread_cond."""
        started, finished = job.timestamps.get("started"), job.timestamps.get("finished")
        if started is None or finished is None or job.worker_name is None:
            return
        begin = max(started, self._worker_free_at.get(job.worker_name, started))
        self._worker_free_at[job.worker_name] = finished
        if job.status is JobStatus.SUCCESS:
            budget = float(job.kwargs["budget"])
            durations = self._durations.setdefault(budget, collections.deque(maxlen=64))
            durations.append(max(finished - begin, 0.0))
            self._median[budget] = statistics.median(durations)

    def _wait_for_running(self) -> None:
        while self.num_running_jobs > 0:
            self.thread_cond.wait(timeout=1.0)

    # ------------------------------------------------------------------- jobs
    def _sample(self, budget: float, n: int) -> list[tuple[dict, dict]]:
        return self.optimizer.ask(budget, n)

    def _submit_job(self, config_id: ConfigId, config: dict, budget: float) -> None:
        """Caller holds thread_cond."""
        config_id = tuple(config_id)
        iteration = self.iterations[config_id[0]]
        datum = iteration.data[config_id]
        earlier = self._replay_configs.get(config_id)
        if earlier is not None and earlier["config"] != config:
            # Resuming: this id was sampled before; run what the journal says it was.
            self.optimizer.cancel(config, budget)
            datum.config, datum.config_info = earlier["config"], earlier.get("info", {})
            config = datum.config
        new = budget == _first_budget(datum)
        if not new or earlier is not None:
            self.optimizer.mark_running(config, budget)
        if new:
            self.journal.write({"t": "config", "id": config_id, "config": config,
                                "info": datum.config_info})
            if self.result_logger is not None:
                self.result_logger.new_config(config_id, config, datum.config_info)
        self._in_flight[float(budget)] += 1
        kwargs = {"config": config, "budget": budget, "config_info": datum.config_info,
                  "working_directory": str(self.working_directory)}
        done = self._replay_results.get((config_id, float(budget)))
        if done is not None:
            self.job_callback(_replayed_job(config_id, kwargs, done), replayed=True)
        else:
            self.dispatcher.submit_job(config_id, **kwargs)

    def job_callback(self, job: Job, replayed: bool = False) -> None:
        """A finished job: journal it, then tell the iteration and the optimizer."""
        config_id = tuple(job.id)
        budget = job.kwargs["budget"]
        if not replayed:  # before the master acts on it; the file write does not hold the lock
            self.journal.write({"t": "result", "id": config_id, "budget": budget,
                                "status": job.status.value, "result": job.result,
                                "exception": job.exception, "timestamps": job.timestamps,
                                "attempt": job.attempt, "worker": job.worker_name}, sync=True)
        with self.thread_cond:
            if self.result_logger is not None:
                self.result_logger(job)
            self.jobs.append(job)
            self._in_flight[float(budget)] -= 1
            if self._in_flight[float(budget)] <= 0:
                del self._in_flight[float(budget)]
            if not replayed:
                self._record_duration(job)
            loss = job.result["loss"] if job.status is JobStatus.SUCCESS and job.result else None
            if job.status.failed:
                self.num_failed += 1
            config = job.kwargs["config"]
            if loss is not None and loss < self.incumbent_performances.get(budget, math.inf):
                self.incumbents[budget] = config
                self.incumbent_performances[budget] = loss
            try:
                self.iterations[config_id[0]].register_result(
                    config_id, budget, loss, job.status,
                    None if job.result is None else job.result.get("info"))
            except (IndexError, UltrarunError):
                self.logger.exception("result of %s does not fit any iteration; ignored", job.id)
            try:
                if job.status is JobStatus.CANCELLED:
                    self.optimizer.cancel(config, budget)
                else:
                    self.optimizer.tell(config, loss, budget)
            except Exception:  # a broken optimizer must not lose the result or stall the run
                self.logger.exception("the optimizer could not take the result of %s", job.id)
            self._update_progress(job)
            self.thread_cond.notify_all()
        if self.progress_callback is not None:
            try:
                self.progress_callback(job, self)
            except Exception:
                self.logger.exception("progress_callback raised; continuing")

    def _journal_header(self) -> dict:
        """What a resumed run must share with the run that wrote the journal."""
        space = getattr(self.optimizer, "configspace", None)
        return {"t": "header", "run_id": str(self.run_id),
                "optimizer": type(self.optimizer).__name__,
                "seed": getattr(self.optimizer, "seed", None),
                "iterations": type(self.iter_generator).__name__,
                "budgets": [float(b) for b in self.iter_generator.budgets],
                "space": hashlib.sha1(str(space).encode()).hexdigest()[:16]}

    # ------------------------------------------------------------------- results
    def get_result(self) -> Result:
        configs = {cid: d for it in self.iterations for cid, d in it.data.items()}
        budgets = sorted({float(j.kwargs["budget"]) for j in self.jobs})
        hb_config = {"time_ref": self.config["time_ref"], "budgets": budgets,
                     "max_budget": max(self.iter_generator.budgets or budgets or [0.0]),
                     "min_budget": min(self.iter_generator.budgets or budgets or [0.0])}
        # warm-start runs end at time 0 of this run (as in HpBandSter): absolute = ref + relative
        ref = self.config["time_ref"] or 0.0
        warm = [Run(r.config_id, r.budget, r.loss, r.info,
                    {k: v + ref for k, v in r.time_stamps.items() if v is not None},
                    r.error_logs, r.status) for r in self._warm_runs]
        configs.update(self._warm_configs)
        return Result.from_runs(warm + self.jobs, configs, hb_config)

    def _warm_start(self, previous: Result) -> None:
        """Tell the optimizer every earlier result; the Result of this run shows them as
        iteration -1, ids ``(-1, 0, i)``, shifted so that the last one finished at time 0."""
        id2conf = previous.get_id2config_mapping()
        finished = [r.time_stamps.get("finished") for r in previous.get_all_runs()]
        shift = -max([t for t in finished if t is not None], default=0.0)
        new_ids: dict[Any, ConfigId] = {}
        told = 0
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
            told += 1
            if run.loss is not None and run.loss < self.incumbent_performances.get(run.budget, math.inf):
                self.incumbents[run.budget] = config
                self.incumbent_performances[run.budget] = run.loss
        self.logger.info("warm start: told the optimizer %d earlier results", told)

    # ------------------------------------------------------------------- progress
    def _open_progress(self, n_iterations: int | None) -> None:
        """A bar on a terminal (or with show_progress=True), INFO log lines otherwise."""
        if self.show_progress is False:
            return
        counts = ([] if n_iterations is None else
                  [self.iter_generator.num_jobs(len(self.iterations) + i)
                   for i in range(n_iterations)])
        total = sum(counts) if counts and None not in counts else None
        self._progress = Progress(self.run_id, total=total,
                                  time_left=self.time_left_for_this_task,
                                  bar=self.show_progress or sys.stderr.isatty(),
                                  logger=self.logger)

    def _update_progress(self, job: Job) -> None:
        if self._progress is not None:
            self._progress.update(self.num_running_jobs, self.num_failed,
                                  self.incumbent_performances)

    def _close_progress(self) -> None:
        if self._progress is not None:
            self._progress.close()
            self._progress = None

    # ------------------------------------------------------------------- lifecycle
    def shutdown(self, shutdown_workers: bool = False) -> None:
        """Stop the dispatcher (and the workers, if asked) and close the journal. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.dispatcher.shutdown(shutdown_workers=shutdown_workers)
        self.journal.close()
        self._close_progress()

    def __enter__(self) -> "Master":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown(shutdown_workers=self.shutdown_workers)


def _check_same_run(earlier: dict | None, now: dict, path: Path) -> None:
    """Refuse to resume from a journal another kind of run wrote (replaying its results into
    this run would silently mix two experiments)."""
    if earlier is None:
        return
    differ = [k for k in now if k != "t" and earlier.get(k) != now[k]]
    if differ:
        details = ", ".join(f"{k}: journal {earlier.get(k)!r}, now {now[k]!r}" for k in differ)
        raise ConfigurationError(f"cannot resume from {path}: it was written by a different run "
                                 f"({details}); use another run_id or checkpoint_file")


def _remaining(deadline: float) -> float | None:
    """Seconds until ``deadline`` for Condition.wait (None: no deadline)."""
    return None if math.isinf(deadline) else max(0.0, deadline - time.monotonic())


def _first_budget(datum: Any) -> float:
    """The budget a configuration started at (its first job)."""
    return min(datum.losses, default=datum.budget)


def _replayed_job(config_id: ConfigId, kwargs: dict, record: dict) -> Job:
    job = Job(id=config_id, kwargs=kwargs, status=JobStatus(record["status"]),
              result=record.get("result"), exception=record.get("exception"),
              worker_name=record.get("worker"), attempt=int(record.get("attempt", 1)))
    job.timestamps = dict(record.get("timestamps") or {})
    return job


__all__ = ["Master", "Journal"]
