"""The master drives runner backends: the same Hyperband run on local processes and on Dask."""
from __future__ import annotations

import pytest

import runner_helpers_targets as targets
from ultrarun.benchmarks import branin_space
from ultrarun.frontends import HyperBand
from ultrarun.iterations import HyperBandIterGenerator
from ultrarun.job import JobStatus
from ultrarun.runners import DaskParallelRunner, ProcessRunner, TargetFunctionRunner

pytestmark = pytest.mark.slow


def hyperband_on(runner, tmp_path):
    master = HyperBand(branin_space(), run_id="runner", min_budget=1, max_budget=9, eta=3,
                       seed=0, executor=runner, working_directory=tmp_path, show_progress=False)
    try:
        return master, master.run(n_iterations=2, min_n_workers=1)
    finally:
        master.shutdown(shutdown_workers=True)


def check(master, result):
    gen = HyperBandIterGenerator(1, 9, 3)
    runs = result.get_all_runs()
    assert len(runs) == gen.num_jobs(0) + gen.num_jobs(1)
    assert all(r.status is JobStatus.SUCCESS for r in runs), [r.error_logs for r in runs]
    assert result.get_incumbent_id() is not None
    assert all(it.is_finished for it in master.iterations)


def test_master_drives_a_process_runner(tmp_path):
    runner = ProcessRunner(TargetFunctionRunner(targets.branin_target), n_workers=2)
    check(*hyperband_on(runner, tmp_path))


def test_master_drives_a_dask_runner(tmp_path, dask_client):
    runner = DaskParallelRunner(TargetFunctionRunner(targets.branin_target),
                                dask_client=dask_client)
    check(*hyperband_on(runner, tmp_path))


def test_master_on_a_pyro_runner_uses_its_dispatcher_with_the_true_costs(tmp_path):
    """No second adapter and no stand-in loss: the master's jobs go to the Pyro runner's
    dispatcher, and a crashing target is CRASHED, not a SUCCESS with a made-up loss."""
    from ultrarun.dispatcher import Dispatcher
    from ultrarun.executor import RetryPolicy
    from ultrarun.runners import PyroRunner

    runner = PyroRunner(TargetFunctionRunner(targets.branin_crashing_left), n_workers=2)
    master = HyperBand(branin_space(), run_id="pyro-runner", min_budget=1, max_budget=9, eta=3,
                       seed=0, executor=runner, working_directory=tmp_path, show_progress=False,
                       retry=RetryPolicy(max_retries=5))
    try:
        assert isinstance(master.executor, Dispatcher)
        assert master.executor.retry.max_retries == 5, "the master sets the retry policy"
        result = master.run(n_iterations=1, min_n_workers=2)
    finally:
        master.shutdown(shutdown_workers=True)
    runs = result.get_all_runs()
    by_id = result.get_id2config_mapping()
    crashed = [r for r in runs if by_id[r.config_id]["config"]["x1"] < 0]
    assert crashed and len(crashed) < len(runs), "some configurations crash, some do not"
    for run in runs:
        config = by_id[run.config_id]["config"]
        if config["x1"] < 0:  # the user's failure: reported as it is, once, never a loss
            assert run.status is JobStatus.CRASHED and run.loss is None
            assert "crash on purpose" in run.error_logs
        else:
            assert run.status is JobStatus.SUCCESS
            assert run.loss == pytest.approx(targets.branin_target(config, run.budget))
