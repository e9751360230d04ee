"""The master on a small in-memory executor with a fake clock: its decisions (deadlines,
iterations, deterministic order, retries as the executor reports them), with no process, no
thread and no waiting. The end-to-end tests in test_master.py show the same on real workers."""
from __future__ import annotations

import collections
import heapq
import json
import threading

import pytest
from ConfigSpace import ConfigurationSpace, Float

from ultrarun.executor import Durations, Executor, RetryPolicy
from ultrarun.lifecycle import Lifecycle
from ultrarun.iterations import (ASHAIterGenerator, CustomIterGenerator,
                                 HyperBandIterGenerator)
from ultrarun.job import Job, JobStatus
from ultrarun.errors import ConfigurationError
from ultrarun.frontends import HyperBand
from ultrarun.master import Master
from ultrarun.optimizers import BOHB, RandomSearch as RandomSampler


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def monotonic(self) -> float:
        return self.t

    def time(self) -> float:
        return 1_000_000.0 + self.t


class SimulatedExecutor(Executor):
    """``n_workers`` simulated workers; a job at budget b takes ``seconds_per_budget * b``. A
    submitted job runs at once on the worker free first, the clock jumps to its end, and its
    result is reported before ``submit_job`` returns (so the master never waits). Its jobs move
    through the one lifecycle (``ultrarun.lifecycle``): its moves, retry policy and durations."""

    def __init__(self, clock: Clock, n_workers: int = 1, seconds_per_budget: float = 0.05,
                 fail: set | None = None):
        self.clock = clock
        self.free_at = [0.0] * n_workers
        self.seconds_per_budget = seconds_per_budget
        self.fail = fail or set()
        self.lifecycle = Lifecycle(clock=clock)
        self.submitted: list[Job] = []

    @property
    def retry(self) -> RetryPolicy:  # type: ignore[override]
        return self.lifecycle.retry

    @retry.setter
    def retry(self, policy: RetryPolicy) -> None:
        self.lifecycle.retry = policy

    @property
    def durations(self) -> Durations:  # type: ignore[override]
        return self.lifecycle.durations

    def start(self) -> "SimulatedExecutor":
        return self

    def number_of_workers(self) -> int:
        return len(self.free_at)

    def expected_start(self) -> float:
        return max(self.clock.t, min(self.free_at))

    def submit_job(self, id, **kwargs) -> Job:
        job, life = Job(id=id, kwargs=kwargs), self.lifecycle
        self.submitted.append(job)
        life.submitted(job)
        crash = len(self.submitted) in self.fail
        while True:  # each attempt on the worker free first; a crash fails every attempt
            worker = self.free_at.index(min(self.free_at))
            self.clock.t = max(self.clock.t, self.free_at[worker])
            life.start(job, f"w{worker}")
            seconds = self.seconds_per_budget * kwargs["budget"]
            self.clock.t = self.free_at[worker] = self.clock.t + seconds
            life.timed(job, seconds)
            if not (crash and life.retry.retries(JobStatus.CRASHED, job.attempt)):
                break
            life.requeue(job, costs_attempt=True)
        if crash:
            life.finish(job, JobStatus.CRASHED, exception="simulated crash")
        else:
            life.finish(job, JobStatus.SUCCESS, {"loss": float(kwargs["config"]["x"]), "info": {}})
        self.new_result_callback(job)
        return job

    def cancel_queued_jobs(self, ids=None) -> int:
        return 0

    def shutdown(self, shutdown_workers: bool = False) -> None:
        pass


def master_on(executor: SimulatedExecutor, generator, tmp_path, optimizer=None,
              **kwargs) -> Master:
    space = ConfigurationSpace(seed=0, space=[Float("x", (0.0, 1.0))])
    master = Master("sim", optimizer or RandomSampler(space, seed=0), generator,
                    executor=executor,
                    working_directory=tmp_path, show_progress=False, **kwargs)
    master.clock = executor.clock
    return master


def test_time_left_holds_back_a_job_that_would_end_after_the_deadline(tmp_path):
    """One worker; stage 0: 6 jobs of 0.05 s, stage 1: 2 jobs of 0.5 s. The first of those ends
    0.8 s in; the second would end 1.3 s in, past the 1 s deadline: it is not started."""
    executor = SimulatedExecutor(Clock())
    master = master_on(executor, CustomIterGenerator([1, 10], [6, 2]), tmp_path,
                       time_left_for_this_task=1.0)
    result = master.run(n_iterations=1)
    runs = result.get_all_runs()
    assert sorted(r.budget for r in runs) == [1.0] * 6 + [10.0]
    assert max(r.time_stamps["finished"] for r in runs) <= 1.0
    assert executor.clock.t == pytest.approx(0.8)


def test_a_hyperband_iteration_runs_its_whole_schedule(tmp_path):
    generator = HyperBandIterGenerator(1, 9, 3)
    executor = SimulatedExecutor(Clock(), n_workers=3)
    result = master_on(executor, generator, tmp_path).run(n_iterations=2)
    assert len(result.get_all_runs()) == generator.num_jobs(0) + generator.num_jobs(1)
    budgets = [job.kwargs["budget"] for job in executor.submitted]
    expected = collections.Counter()
    for i in (0, 1):  # every stage of both brackets ran, with its number of jobs
        stages = generator.bracket(i)
        expected.update(dict(zip(stages.budgets, stages.num_configs)))
    assert collections.Counter(budgets) == expected and expected[9.0] == 2


def test_failed_jobs_count_and_never_stall_an_iteration(tmp_path):
    executor = SimulatedExecutor(Clock(), fail={1, 2, 3})
    master = master_on(executor, CustomIterGenerator([1, 3], [6, 2]), tmp_path)
    result = master.run(n_iterations=1)
    assert master.num_failed == 3
    assert [r.status for r in result.get_all_runs()].count(JobStatus.CRASHED) == 3
    assert all(it.is_finished for it in master.iterations)


def test_the_incumbent_is_the_best_loss_per_budget(tmp_path):
    executor = SimulatedExecutor(Clock(), n_workers=2)
    master = master_on(executor, CustomIterGenerator([1, 3], [6, 2]), tmp_path)
    result = master.run(n_iterations=1)
    for budget in (1.0, 3.0):
        losses = [r.loss for r in result.get_all_runs() if r.budget == budget]
        assert master.incumbent_performances[budget] == min(losses)
    assert master.best.best()[0] == 3.0


def test_a_front_end_sets_the_retry_policy_of_any_executor(tmp_path):
    executor = SimulatedExecutor(Clock())
    space = ConfigurationSpace(seed=0, space=[Float("x", (0.0, 1.0))])
    HyperBand(space, executor=executor, working_directory=tmp_path,
              retry=RetryPolicy(max_retries=7, retry_on={JobStatus.TIMEOUT}))
    assert executor.retry == RetryPolicy(7, frozenset({JobStatus.TIMEOUT}))


def test_a_master_without_an_executor_says_what_to_pass(tmp_path):
    """No default Pyro dispatcher behind the user's back: the error names the two fixes."""
    space = ConfigurationSpace(seed=0, space=[Float("x", (0.0, 1.0))])
    with pytest.raises(ConfigurationError, match=r"executor=ultrarun\.dispatcher_for\(run_id, "
                       r"nameserver=.*or use a front end"):
        Master("x", RandomSampler(space), CustomIterGenerator([1], [1]),
               working_directory=tmp_path)
    with pytest.raises(ConfigurationError, match="existing is 'append'"):
        Master("x", RandomSampler(space), CustomIterGenerator([1], [1]),
               SimulatedExecutor(Clock()), existing="append")


def test_the_executor_must_keep_the_contract(tmp_path):
    space = ConfigurationSpace(seed=0, space=[Float("x", (0.0, 1.0))])
    with pytest.raises(Exception, match="Executor"):
        Master("x", RandomSampler(space), CustomIterGenerator([1], [1]), executor=object(),
               working_directory=tmp_path)


@pytest.mark.parametrize("n_workers", [1, 3])
def test_seconds_are_counted_by_the_clock_the_master_is_given(tmp_path, n_workers):
    """A deadline of 2 s on the fake clock: whatever the real machine does, the master starts
    no job whose estimate ends after it (n_iterations=None: until the time is up)."""
    executor = SimulatedExecutor(Clock(), n_workers=n_workers)
    master = master_on(executor, HyperBandIterGenerator(1, 9, 3), tmp_path,
                       time_left_for_this_task=2.0)
    result = master.run(n_iterations=None)
    ends = [r.time_stamps["finished"] for r in result.get_all_runs()]
    assert ends and max(ends) <= 2.0
    assert len(ends) == len(executor.submitted)


class ReportingExecutor(SimulatedExecutor):
    """``n_workers`` workers; every job takes ``seconds`` from its submission and reports
    through the master's wait (its ``thread_cond``, replaced): each wait moves the clock to the
    next report and delivers it, or to the end of the wait's timeout. Jobs that end together
    report ``spread`` s apart in worker order, as results reach a real master a few ms apart."""

    def __init__(self, clock: Clock, n_workers: int, seconds: float = 4.0, spread=0.001):
        super().__init__(clock, n_workers)
        self.seconds, self.spread = seconds, spread
        self.idle = list(range(n_workers))
        self.reports: list = []  # heap of (time, worker, job)
        self.timeouts = 0  # waits that ended without a result

    def expected_start(self) -> float:
        return self.clock.t if self.idle else self.reports[0][0]

    def submit_job(self, id, **kwargs) -> Job:
        job = Job(id=id, kwargs=kwargs, status=JobStatus.SUCCESS,
                  result={"loss": float(kwargs["config"]["x"]), "info": {}})
        job.duration, worker = self.seconds, self.idle.pop(0)  # never more jobs than workers
        job.timestamps = {"started": self.clock.t, "finished": self.clock.t + self.seconds}
        self.submitted.append(job)
        report = self.clock.t + self.seconds + self.spread * worker
        heapq.heappush(self.reports, (report, worker, len(self.submitted), job))
        return job

    def wait(self, timeout: float | None) -> None:
        until = self.clock.t + (float("inf") if timeout is None else timeout)
        if self.reports and self.reports[0][0] <= until:
            self.clock.t, worker, _, job = heapq.heappop(self.reports)
            self.idle.append(worker)
            self.durations.record(job.kwargs["budget"], job.duration)
            self.new_result_callback(job)
        else:
            assert until < float("inf"), "the master waits for nothing"
            self.clock.t, self.timeouts = until, self.timeouts + 1


def reporting_master(executor: ReportingExecutor, generator, tmp_path, **kwargs) -> Master:
    master = master_on(executor, generator, tmp_path, **kwargs)

    class Reports(threading.Condition):  # no thread: a wait is the executor's next report
        def wait(self, timeout=None):
            executor.wait(timeout)
            return True

    master.thread_cond = Reports()
    return master


def test_an_older_brackets_next_stage_does_not_wait_a_round(tmp_path):
    """Synchronous Hyperband (budgets 1..27, eta 3), 16 workers, 4 iterations of 4 s jobs
    whose results come in over 15 ms: bracket 0's 27 first jobs end at 4 s and 8 s. The first
    result at 8 s must not hand the workers of the 10 results still coming to the younger
    brackets: its 9 jobs at budget 3 start together, at once, and the run ends when the
    zero-overhead schedule ends (20 s: scripts/bench/scale.py --bound-only)."""
    executor = ReportingExecutor(Clock(), n_workers=16)
    master = reporting_master(executor, HyperBandIterGenerator(1, 27, 3), tmp_path)
    master.run(n_iterations=4)
    stage = [j.timestamps["started"] for j in executor.submitted
             if j.id[0] == 0 and j.kwargs["budget"] == 3.0]
    assert len(stage) == 9
    assert max(stage) - min(stage) < 0.1 and min(stage) < 8.1
    assert len(executor.submitted) == 69 and executor.clock.t < 20.1


@pytest.mark.parametrize("generator", [CustomIterGenerator([27], [4]),
                                       ASHAIterGenerator(1, 27, 3, max_configs=27)],
                         ids=["random search", "asha"])
def test_no_worker_is_held_without_a_barrier(tmp_path, generator):
    """Random search (one stage per iteration) and ASHA wait at no barrier: every wait of the
    master ends with a result (none waits a timeout out)."""
    executor = ReportingExecutor(Clock(), n_workers=16)
    reporting_master(executor, generator, tmp_path).run(n_iterations=8)
    assert executor.timeouts == 0 and len(executor.submitted) > 16


def _cut_journal(master: Master, results: int) -> None:
    """Keep the journal up to its ``results``-th result: the master "died" there."""
    lines = master.journal.path.read_text().splitlines(keepends=True)
    ends = [i for i, line in enumerate(lines) if json.loads(line)["t"] == "result"]
    master.journal.path.write_text("".join(lines[:ends[results - 1] + 1]))


def _runs(result) -> list:
    return sorted((r.config_id, r.budget, r.loss) for r in result.get_all_runs())


def test_a_journal_a_crash_left_empty_is_resumed_twice(tmp_path):
    """A master killed between creating its journal and writing the header leaves an empty
    file; resuming it writes the header first, so the run can be resumed again after the next
    crash (it was refused: "records but no header")."""
    journal = tmp_path / "run.jsonl"
    journal.write_bytes(b"")
    first = master_on(SimulatedExecutor(Clock()), HyperBandIterGenerator(1, 9, 3), tmp_path,
                      journal=journal, existing="resume")
    ran = _runs(first.run(n_iterations=1))
    first.shutdown()
    assert json.loads(journal.read_text().splitlines()[0])["t"] == "header"
    executor = SimulatedExecutor(Clock())
    again = master_on(executor, HyperBandIterGenerator(1, 9, 3), tmp_path, journal=journal,
                      existing="resume")
    assert _runs(again.run(n_iterations=1)) == ran and executor.submitted == []


def test_a_resumed_random_search_runs_what_the_uninterrupted_run_ran(tmp_path):
    """One worker, one job at a time: the replay sees the journal in the order it was written,
    and the configurations sampled after it continue the random stream where the journal left
    it (none repeats one the journal holds)."""
    full = master_on(SimulatedExecutor(Clock()), HyperBandIterGenerator(1, 9, 3), tmp_path,
                     journal=tmp_path / "full.jsonl").run(n_iterations=3)
    first = master_on(SimulatedExecutor(Clock()), HyperBandIterGenerator(1, 9, 3), tmp_path)
    first.run(n_iterations=3)
    first.journal.close()
    _cut_journal(first, 12)
    executor = SimulatedExecutor(Clock())
    resumed = master_on(executor, HyperBandIterGenerator(1, 9, 3), tmp_path, existing="resume")
    result = resumed.run(n_iterations=3)
    assert len(executor.submitted) == len(full.get_all_runs()) - 12
    assert _runs(result) == _runs(full)
    assert result.get_id2config_mapping() == full.get_id2config_mapping()


def test_a_resumed_bohb_run_does_not_ask_its_model_for_the_journal(tmp_path):
    """A journal of 12 results and the configurations of their iterations: the resumed BOHB is
    asked only for configurations the journal does not hold, and fits its model at most once
    per ask (not once per replayed result); the journal gets no line for what it held."""
    def bohb():
        space = ConfigurationSpace(seed=0, space=[Float("x", (0.0, 1.0))])
        return BOHB(space, seed=1, min_points_in_model=2, random_fraction=0.0)

    first = master_on(SimulatedExecutor(Clock()), HyperBandIterGenerator(1, 9, 3), tmp_path,
                      optimizer=bohb())
    previous = first.run(n_iterations=3)
    first.journal.close()
    _cut_journal(first, 12)
    journaled = [json.loads(line) for line in first.journal.path.read_text().splitlines()]
    configs = {tuple(r["id"]): r["config"] for r in journaled if r["t"] == "config"}
    optimizer, calls = bohb(), {"_suggest": 0, "_fit": 0}
    for name in calls:
        def counting(*args, _name=name, _method=getattr(optimizer, name)):
            calls[_name] += 1
            return _method(*args)
        setattr(optimizer, name, counting)
    executor = SimulatedExecutor(Clock())
    resumed = master_on(executor, HyperBandIterGenerator(1, 9, 3), tmp_path, existing="resume",
                        optimizer=optimizer)
    result = resumed.run(n_iterations=3)
    mapping = result.get_id2config_mapping()
    assert len(result.get_all_runs()) == len(previous.get_all_runs())
    assert len(executor.submitted) == len(previous.get_all_runs()) - 12
    assert all(mapping[cid]["config"] == config for cid, config in configs.items())
    assert calls["_suggest"] == len(mapping) - len(configs) > 0
    assert calls["_fit"] <= calls["_suggest"]
    lines = [json.loads(line) for line in first.journal.path.read_text().splitlines()]
    assert sum(r["t"] == "config" for r in lines) == len(mapping)


def test_the_simulated_executor_keeps_the_contract_a_crash_retried_once_runs_twice():
    """The executor contract's retry and durations rules (tests/test_executor_contract.py runs
    them on the real executors) hold for this test double too: it moves its jobs with the one
    lifecycle, so a crashing job with max_retries=1 runs exactly twice and both runs are timed."""
    executor = SimulatedExecutor(Clock(), fail={1})
    executor.retry = RetryPolicy(max_retries=1, retry_on={JobStatus.CRASHED})
    seen: list[Job] = []
    executor.bind(seen.append)
    crashed = executor.submit_job("a", config={"x": 0.5}, budget=2.0)
    fine = executor.submit_job("b", config={"x": 0.25}, budget=2.0)
    assert seen == [crashed, fine], "each job reported once"
    assert (crashed.status, crashed.attempt, crashed.result) == (JobStatus.CRASHED, 2, None)
    assert (fine.status, fine.attempt, fine.result["loss"]) == (JobStatus.SUCCESS, 1, 0.25)
    assert executor.clock.t == 3 * 0.05 * 2.0, "three runs of 0.1 s on one worker"
    assert executor.durations.estimate(2.0) == 0.1
