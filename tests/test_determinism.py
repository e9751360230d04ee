"""Deterministic mode: a seeded run on several workers samples the same configurations again.

Workers here take a random (unseeded) few milliseconds per job, so results come back in a
different order every run; ``Master(..., deterministic=True)`` must not let that show.
"""
from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ultrarun.benchmarks import BraninWorker, branin_space
from ultrarun.frontends import BOHB, TPE
from ultrarun.local import LocalCluster

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


class JitterWorker(BraninWorker):
    """Branin after 0-15 ms of sleep drawn from the OS's entropy: the order of results varies."""

    def compute(self, config_id, config, budget, working_directory, **kwargs):
        time.sleep(random.SystemRandom().uniform(0.0, 0.015))
        return super().compute(config_id, config, budget, working_directory, **kwargs)


@pytest.fixture(scope="module")
def jitter_cluster(tmp_path_factory):
    cluster = LocalCluster(n_workers=4, worker_class=JitterWorker,
                           worker_kwargs={"max_budget": 9.0},
                           working_directory=tmp_path_factory.mktemp("jitter"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.shutdown()


def sampled(front, cluster, tmp_path, **kwargs):
    """The configurations a run sampled, by config id, and their config_info."""
    master = front(branin_space(), run_id=cluster.run_id, nameserver=cluster.nameserver.host,
                   nameserver_port=cluster.nameserver_port, secret=cluster.secret,
                   working_directory=tmp_path, min_budget=1, max_budget=9, eta=3, seed=7,
                   show_progress=False, **kwargs)
    try:
        result = master.run(n_iterations=3, min_n_workers=4)
    finally:
        master.shutdown(shutdown_workers=False)
    return {cid: (d["config"], d["config_info"]) for cid, d in
            result.get_id2config_mapping().items()}


@pytest.mark.parametrize("front, kwargs", [(TPE, {"n_startup_trials": 5}), (BOHB, {})])
def test_deterministic_runs_on_four_workers_sample_the_same_configurations(
        front, kwargs, jitter_cluster, tmp_path):
    first = sampled(front, jitter_cluster, tmp_path / "a", deterministic=True, **kwargs)
    second = sampled(front, jitter_cluster, tmp_path / "b", deterministic=True, **kwargs)
    assert sum(info["model_based_pick"] for _, info in first.values()) >= 5, \
        "the model picked some of them (else the test proves nothing)"
    assert first == second


def test_demo_with_the_same_seed_reproduces_its_configurations(tmp_path):
    """Issue 14, item 10: ``ultrarun demo --seed 0`` twice gives the same run."""
    def configs(out: Path) -> list:
        proc = subprocess.run([sys.executable, "-m", "ultrarun", "demo", "--n-workers", "3",
                               "--n-iterations", "1", "--seed", "0", "--output", str(out)],
                              capture_output=True, text=True, timeout=240, cwd=ROOT,
                              env={**os.environ, "MPLBACKEND": "Agg"})
        assert proc.returncode == 0, proc.stderr
        return [json.loads(line) for line in (out / "configs.json").read_text().splitlines()]

    first = configs(tmp_path / "a")
    assert len(first) == 27, "one successive-halving bracket of 1..27 (TPE's default schedule)"
    assert sum(info["model_based_pick"] for _, _, info in first) >= 10
    assert first == configs(tmp_path / "b")
