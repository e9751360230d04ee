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
                       seed=0, runner=runner, working_directory=tmp_path, show_progress=False)
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
