"""Runners: one contract suite run against every backend, then backend-specific behaviour.

To add a backend (e.g. "pyro"), append its name to ``BACKENDS`` and give ``runner_kwargs`` a
branch that supplies what it needs (a running dispatcher, ...). Every contract test then runs
against it; ``WORKER_PROCESS_BACKENDS`` lists the backends whose workers are separate processes
that a test may kill.
"""
from __future__ import annotations

import math
import os
import signal
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

import runner_helpers_targets as targets
from conftest import wait_until
from ultrarun.errors import (ConfigurationError, FirstRunCrashedException,
                             TargetAlgorithmAbortException, UltrarunError)
from ultrarun.job import JobStatus
from ultrarun.runners import (AbstractRunner, DaskParallelRunner, ProcessRunner, ScriptRunner,
                              SerialRunner, TargetFunctionRunner, ThreadRunner, TrialInfo,
                              TrialValue, make_runner, register_runner, runner_names)
from ultrarun.runners._script import parse_script_output
from ultrarun.job import parse_result as parse_target_result

BACKENDS = ["serial", "thread", "process", "dask", "pyro"]
WORKER_PROCESS_BACKENDS = {"process", "dask", "pyro"}
DEADLINE = 30.0


# ---------------------------------------------------------------------- fixtures
def runner_kwargs(backend: str, request: pytest.FixtureRequest) -> dict[str, Any]:
    """What each backend needs to run in the tests."""
    if backend == "dask":
        return {"dask_client": request.getfixturevalue("dask_client"), "patience": 20}
    if backend in ("thread", "process", "pyro"):
        return {"n_workers": 2}
    return {}


def _factory(request: pytest.FixtureRequest) -> Iterator[Callable[..., AbstractRunner]]:
    made: list[AbstractRunner] = []

    def factory(single_worker: AbstractRunner, **kwargs: Any) -> AbstractRunner:
        runner = make_runner(request.param, single_worker,
                             **{**runner_kwargs(request.param, request), **kwargs})
        made.append(runner)
        return runner

    factory.backend = request.param  # type: ignore[attr-defined]
    yield factory
    for runner in made:
        runner.close()


@pytest.fixture(params=BACKENDS)
def make(request: pytest.FixtureRequest) -> Iterator[Callable[..., AbstractRunner]]:
    """A factory ``make(single_worker, **kwargs)`` for the backend under test; closes them all."""
    yield from _factory(request)


@pytest.fixture(params=sorted(WORKER_PROCESS_BACKENDS))
def make_killable(request: pytest.FixtureRequest) -> Iterator[Callable[..., AbstractRunner]]:
    """The same, for the backends whose workers are separate processes a test may kill (in the
    others, trials run in the caller's process; the limit-child test covers kills there)."""
    yield from _factory(request)


@pytest.fixture(params=[b for b in BACKENDS if b != "serial"])
def make_async(request: pytest.FixtureRequest) -> Iterator[Callable[..., AbstractRunner]]:
    """The backends where a trial can still be pending after submit_trial returns."""
    yield from _factory(request)


def run_all(runner: AbstractRunner, trials: list[TrialInfo], deadline: float = DEADLINE,
            ) -> list[TrialValue]:
    """Submit ``trials``, collect every result (with a deadline), return values in input order."""
    for trial in trials:
        runner.submit_trial(trial)
    return collect(runner, trials, deadline)


def collect(runner: AbstractRunner, trials: list[TrialInfo], deadline: float = DEADLINE,
            ) -> list[TrialValue]:
    """Collect the results of submitted ``trials`` (with a deadline), in input order."""
    found: dict[int, TrialValue] = {}
    end = time.monotonic() + deadline
    while len(found) < len(trials):
        remaining = end - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"only {len(found)} of {len(trials)} trials finished in {deadline} s")
        runner.wait(remaining)
        for info, value in runner.iter_results():
            found[next(i for i, t in enumerate(trials) if t is info)] = value
    return [found[i] for i in range(len(trials))]


# ---------------------------------------------------------------------- contract suite
def test_results_match_inputs(make: Callable[..., AbstractRunner]) -> None:
    runner = make(TargetFunctionRunner(targets.quadratic))
    trials = [TrialInfo({"x": i / 10, "n": i % 3}, seed=i) for i in range(8)]
    values = run_all(runner, trials)
    for trial, value in zip(trials, values):
        assert value.status is JobStatus.SUCCESS
        assert value.cost == pytest.approx((trial.config["x"] - 0.5) ** 2 + trial.config["n"])
        assert value.endtime >= value.starttime > 0 and value.time >= 0 and value.cpu_time >= 0
    assert not runner.is_running()
    assert list(runner.iter_results()) == []
    assert runner.count_available_workers() == runner.num_workers >= 1


def test_result_formats(make: Callable[..., AbstractRunner]) -> None:
    tuple_value, = run_all(make(TargetFunctionRunner(targets.with_info)), [TrialInfo({"x": 2})])
    assert tuple_value.cost == 2.0
    assert tuple_value.additional_info["score"] == 0.5
    assert type(tuple_value.additional_info["score"]) is float  # numpy became plain data
    dict_value, = run_all(make(TargetFunctionRunner(targets.as_dict)), [TrialInfo({"x": 3})])
    assert (dict_value.cost, dict_value.additional_info) == (3.0, {"twice": 6})
    multi, = run_all(make(TargetFunctionRunner(targets.multi_objective)), [TrialInfo({"x": 0.25})])
    assert multi.cost == [0.25, 0.75]


def test_exception_is_crashed_with_traceback(make: Callable[..., AbstractRunner]) -> None:
    runner = make(TargetFunctionRunner(targets.raises))
    value, = run_all(runner, [TrialInfo({"x": 7})])
    assert value.status is JobStatus.CRASHED
    assert math.isinf(value.cost)
    assert "ValueError: bad x=7" in value.additional_info["traceback"]
    assert "raises" in value.additional_info["traceback"]  # the target's frame is in it


def test_a_crashing_trial_retried_once_runs_exactly_twice(make: Callable[..., AbstractRunner],
                                                         tmp_path: Path) -> None:
    """``max_retries=1, retry_on={CRASHED}``: the retry policy is applied in one place, so a
    trial that always crashes runs twice on every backend (the Pyro runner once applied it in
    its dispatcher and again in the runner: 4 runs)."""
    tally = tmp_path / "tally"
    runner = make(TargetFunctionRunner(targets.counts_and_raises), max_retries=1,
                  retry_on={JobStatus.CRASHED})
    value, = run_all(runner, [TrialInfo({"x": 1, "tally": str(tally)})])
    assert value.status is JobStatus.CRASHED
    assert len(tally.read_text().splitlines()) == 2
    assert value.additional_info.get("attempts") == 2


def test_a_failed_trial_s_info_arrives_as_data_whatever_its_text(
        make: Callable[..., AbstractRunner]) -> None:
    """A failed trial's info travels as data, never inside its error's text: an error whose
    text looks like anything (the Pyro runner once appended the info to the text and split
    it off again, so this text broke it) arrives whole, with its info."""
    text = "\n--- the trial's additional_info: {not json"
    value, = run_all(make(TargetFunctionRunner(targets.raises)), [TrialInfo({"x": text})])
    assert value.status is JobStatus.CRASHED
    assert text.strip() in value.additional_info["error"]
    assert text in value.additional_info["traceback"]


def test_nan_cost_is_crashed(make: Callable[..., AbstractRunner]) -> None:
    value, = run_all(make(TargetFunctionRunner(targets.returns_nan)), [TrialInfo({"x": 1})])
    assert value.status is JobStatus.CRASHED
    assert "nan" in value.additional_info["error"]
    assert "traceback" in value.additional_info


def test_abort_is_raised_to_the_caller(make: Callable[..., AbstractRunner]) -> None:
    runner = make(TargetFunctionRunner(targets.aborts))
    with pytest.raises(TargetAlgorithmAbortException, match="stop everything"):
        run_all(runner, [TrialInfo({"x": 1})])
    assert not runner.is_running()


def test_first_run_crashed_is_opt_in(make: Callable[..., AbstractRunner]) -> None:
    runner = make(TargetFunctionRunner(targets.raises), abort_on_first_run_crash=True)
    with pytest.raises(FirstRunCrashedException, match="bad x=1"):
        run_all(runner, [TrialInfo({"x": 1})])


def test_walltime_limit_is_timeout_and_backend_stays_usable(make: Callable[..., AbstractRunner]) -> None:
    runner = make(TargetFunctionRunner(targets.sleeps, walltime_limit=1.0))
    slow, fast = run_all(runner, [TrialInfo({"sleep": 20}), TrialInfo({"sleep": 0.01, "x": 4})])
    assert slow.status is JobStatus.TIMEOUT
    assert slow.time < 10
    assert fast.status is JobStatus.SUCCESS and fast.cost == 4.0
    again, = run_all(runner, [TrialInfo({"sleep": 0.01, "x": 5})])
    assert again.status is JobStatus.SUCCESS and again.cost == 5.0


def test_memory_limit_is_memout_and_backend_stays_usable(make: Callable[..., AbstractRunner]) -> None:
    runner = make(TargetFunctionRunner(targets.allocates, memory_limit=400))
    big, small = run_all(runner, [TrialInfo({"mb": 2000}), TrialInfo({"mb": 1})])
    assert big.status is JobStatus.MEMOUT
    assert "MemoryError" in big.additional_info["error"]
    assert small.status is JobStatus.SUCCESS and small.cost == 1024 * 1024


def test_killed_limit_child_is_crashed(make: Callable[..., AbstractRunner]) -> None:
    """The target's own process dies by a signal: the user's failure, reported, not retried."""
    runner = make(TargetFunctionRunner(targets.kills_itself, walltime_limit=20))
    value, = run_all(runner, [TrialInfo({})])
    assert value.status is JobStatus.CRASHED
    assert value.additional_info["signal"] == "SIGKILL"
    ok, = run_all(make(TargetFunctionRunner(targets.quadratic, walltime_limit=20)),
                  [TrialInfo({"x": 0.5})])
    assert ok.status is JobStatus.SUCCESS


def test_killed_worker_process_is_retried(make_killable: Callable[..., AbstractRunner],
                                          tmp_path: Path) -> None:
    """A pool/Dask/Pyro worker killed during a trial is infrastructure: the trial runs again."""
    make = make_killable
    runner = make(TargetFunctionRunner(targets.wait_for_kill))
    runner.submit_trial(trial := TrialInfo({"dir": str(tmp_path)}))
    pid_file = tmp_path / "pid1"
    wait_until(pid_file.exists, timeout=DEADLINE, message=f"{pid_file} to appear")
    os.kill(int(pid_file.read_text()), signal.SIGKILL)
    value, = collect(runner, [trial])
    assert value.status is JobStatus.SUCCESS
    assert value.cost == 2.0  # the second attempt finished it
    again, = run_all(runner, [TrialInfo({"dir": str(tmp_path)})])
    assert again.status is JobStatus.SUCCESS


def test_worker_that_always_dies_is_lost(make_killable: Callable[..., AbstractRunner]) -> None:
    make = make_killable
    # one retry keeps it short (the default, 3, restarts a Pyro worker four times)
    runner = make(TargetFunctionRunner(targets.kills_itself), max_retries=1)
    value, = run_all(runner, [TrialInfo({})], deadline=60)
    assert value.status is JobStatus.LOST
    assert value.additional_info["error"]
    ok, = run_all(make(TargetFunctionRunner(targets.quadratic)), [TrialInfo({"x": 0.5})])
    assert ok.status is JobStatus.SUCCESS


def test_cancel_pending(make_async: Callable[..., AbstractRunner]) -> None:
    runner = make_async(TargetFunctionRunner(targets.sleeps))
    trials = [TrialInfo({"sleep": 1.0}) for _ in range(3)]
    for trial in trials:
        runner.submit_trial(trial)
    runner.cancel_pending()
    assert not runner.is_running()
    statuses = {id(info): value.status for info, value in runner.iter_results()}
    assert [statuses[id(t)] for t in trials] == [JobStatus.CANCELLED] * 3
    ok, = run_all(runner, [TrialInfo({"sleep": 0.0, "x": 1})])
    assert ok.status is JobStatus.SUCCESS


def test_close_is_idempotent_and_final(make: Callable[..., AbstractRunner]) -> None:
    with make(TargetFunctionRunner(targets.quadratic)) as runner:
        run_all(runner, [TrialInfo({"x": 1})])
    runner.close()
    with pytest.raises(UltrarunError, match="closed"):
        runner.submit_trial(TrialInfo({"x": 1}))


# ---------------------------------------------------------------------- single-worker details
def test_trial_fields_are_passed_by_signature() -> None:
    seen: list[tuple[Any, ...]] = []

    def target(config: Any, seed: int, budget: float) -> float:
        seen.append((seed, budget))
        return 0.0

    runner = TargetFunctionRunner(target)
    runner.run_trial(TrialInfo({"x": 1}, seed=3, budget=9.0, instance="i"))
    assert seen == [(3, 9.0)]


def test_target_cannot_change_the_callers_config() -> None:
    config = {"x": 1}
    TargetFunctionRunner(lambda c: c.update(x=2) or 0.0).run_trial(TrialInfo(config))
    assert config == {"x": 1}


@pytest.mark.parametrize("rval, cost, info", [
    (1, 1, {}), ([1, 2], [1, 2], {}), ({"cost": 3, "info": {"a": 1}}, 3, {"a": 1}),
    ({"loss": 4}, 4, {}), ((5.0, {"b": 2}), 5.0, {"b": 2}), ({"objective": 6}, 6, {}),
])
def test_parse_target_result(rval: Any, cost: Any, info: dict[str, Any]) -> None:
    assert parse_target_result(rval) == (cost, info)


def test_parse_named_objectives() -> None:
    assert parse_target_result({"acc": 1, "time": 2}, ["time", "acc"]) == ([2, 1], {})
    value = TargetFunctionRunner(lambda c: {"acc": 1}).run_trial(TrialInfo({}))[1]
    assert value.status is JobStatus.CRASHED and "objectives" in value.additional_info["error"]


@pytest.mark.parametrize("make_bad", [
    lambda: TargetFunctionRunner(42),
    lambda: TargetFunctionRunner(targets.noop, walltime_limit=-1),
    lambda: TargetFunctionRunner(targets.noop, memory_limit=0),
    lambda: TargetFunctionRunner(targets.noop, required_arguments=["cutoff"]),
    lambda: TargetFunctionRunner(targets.noop, max_retries=-1),
    lambda: ThreadRunner(TargetFunctionRunner(targets.noop), n_workers=0),
    lambda: ProcessRunner(TargetFunctionRunner(targets.noop), mp_context="nope"),
    lambda: SerialRunner(TargetFunctionRunner(targets.noop), n_workers=2),
    lambda: SerialRunner(targets.noop),
    lambda: DaskParallelRunner(TargetFunctionRunner(targets.noop), patience=-1),
    lambda: make_runner("nope", TargetFunctionRunner(targets.noop)),
])
def test_invalid_arguments_are_configuration_errors(make_bad: Callable[[], Any]) -> None:
    with pytest.raises(ConfigurationError):
        make_bad()


def test_register_runner_hook() -> None:
    register_runner("test-serial", SerialRunner)
    try:
        runner = make_runner("test-serial", TargetFunctionRunner(targets.quadratic))
        assert runner.run_trial(TrialInfo({"x": 0.5}))[1].cost == 0.0
    finally:
        from ultrarun.runners import _registry

        del _registry._RUNNERS["test-serial"]
    assert "test-serial" not in runner_names()


# ---------------------------------------------------------------------- script runner
SCRIPT = textwrap.dedent("""
    import json, sys, time
    args = dict(a[2:].split("=", 1) for a in sys.argv[1:])
    mode = args.get("mode", "json")
    if mode == "sleep":
        time.sleep(30)
    if mode == "fail":
        print("broken", file=sys.stderr)
        sys.exit(3)
    if mode == "memory":
        block = bytearray(2000 * 1024 * 1024)
    print("some log line")
    if mode == "kv":
        print(f"cost={float(args['x']) * 2}")
    else:
        print(json.dumps({"cost": float(args["x"]), "info": {"seed": args.get("seed")}}))
""")


@pytest.fixture
def script(tmp_path: Path) -> list[str]:
    path = tmp_path / "target.py"
    path.write_text(SCRIPT)
    return [sys.executable, str(path)]


def test_script_runner_reads_results(script: list[str]) -> None:
    runner = ScriptRunner(script)
    value = runner.run_trial(TrialInfo({"x": 1.5}, seed=4))[1]
    assert (value.status, value.cost, value.additional_info) == (JobStatus.SUCCESS, 1.5, {"seed": "4"})
    assert runner.run_trial(TrialInfo({"x": 2, "mode": "kv"}))[1].cost == 4.0


def test_script_runner_failures(script: list[str]) -> None:
    """A 1 s limit ends a script that sleeps 30 s (TIMEOUT, cut before its sleep ends); the
    other failures run under a limit no start-up on a loaded machine reaches."""
    slow = ScriptRunner(script, walltime_limit=1.0).run_trial(
        TrialInfo({"x": 1, "mode": "sleep"}))[1]
    assert slow.status is JobStatus.TIMEOUT and slow.time < 30
    runner = ScriptRunner(script, walltime_limit=120.0, memory_limit=500)
    failed = runner.run_trial(TrialInfo({"x": 1, "mode": "fail"}))[1]
    assert failed.status is JobStatus.CRASHED
    assert failed.additional_info["returncode"] == 3 and "broken" in failed.additional_info["stderr"]
    memout = runner.run_trial(TrialInfo({"x": 1, "mode": "memory"}))[1]
    assert memout.status is JobStatus.MEMOUT
    assert runner.run_trial(TrialInfo({"x": 1}))[1].status is JobStatus.SUCCESS


def test_parse_script_output() -> None:
    assert parse_script_output('x\n{"loss": [1, 2]}\nbye') == ([1, 2], {})
    with pytest.raises(Exception, match="no result line"):
        parse_script_output("nothing here")


# ---------------------------------------------------------------------- backend specifics
def test_process_runner_replaces_a_worker_killed_while_idle() -> None:
    with ProcessRunner(TargetFunctionRunner(targets.quadratic), n_workers=1) as runner:
        assert runner.run_trial(TrialInfo({"x": 0.5}), timeout=DEADLINE)[1].cost == 0.0
        pid, = runner.worker_pids()
        os.kill(pid, signal.SIGKILL)
        value = runner.run_trial(TrialInfo({"x": 1.5}), timeout=DEADLINE)[1]
        assert value.status is JobStatus.SUCCESS and value.cost == 1.0
        assert runner.worker_pids() != [pid]


def test_process_runner_starts_nothing_before_first_submit() -> None:
    runner = ProcessRunner(TargetFunctionRunner(targets.quadratic), n_workers=2)
    assert runner.worker_pids() == []
    runner.close()


def test_dask_runner_leaves_a_users_client_open(dask_client: Any) -> None:
    runner = DaskParallelRunner(TargetFunctionRunner(targets.quadratic), dask_client=dask_client)
    assert runner.num_workers == sum(dask_client.nthreads().values())
    runner.close()
    assert dask_client.status == "running"


def test_dask_runner_reports_missing_workers_as_lost() -> None:
    import distributed

    with distributed.LocalCluster(n_workers=0, processes=False,  # in-process: no sockets
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        runner = DaskParallelRunner(TargetFunctionRunner(targets.quadratic), patience=0.3,
                                    dask_client=client)
        value = runner.run_trial(TrialInfo({"x": 1}), timeout=DEADLINE)[1]
        assert value.status is JobStatus.LOST and "patience" in value.additional_info["error"]
        runner.close()


def test_dask_runner_creates_and_closes_its_own_cluster() -> None:
    runner = DaskParallelRunner(TargetFunctionRunner(targets.quadratic), n_workers=1)
    try:
        client = runner.client
        assert runner.run_trial(TrialInfo({"x": 0.5}), timeout=DEADLINE)[1].cost == 0.0
    finally:
        runner.close()
    assert client.status == "closed"
    runner.close()
