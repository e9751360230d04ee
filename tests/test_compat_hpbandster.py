"""HpBandSter's scripts on ultrarun: each scenario runs with only its imports changed, and once
more unchanged through ``python -m ultrarun.compat.hpbandster`` (which installs the alias)."""
from __future__ import annotations

import json
import os
import pickle
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT_DIR, TESTS

SCRIPTS = TESTS / "data" / "compat_scripts"
HPB074 = TESTS / "data" / "hpbandster-0.7.4"
MODES = ("imports", "install")
TIMEOUT = 120

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def with_imports_changed(script: Path, tmp_path: Path) -> Path:
    """The script with ``hpbandster`` changed to ``ultrarun.compat.hpbandster`` in its imports
    and nothing else."""
    text = re.sub(r"^(\s*(?:from|import)\s+)hpbandster\b", r"\1ultrarun.compat.hpbandster",
                  script.read_text(), flags=re.MULTILINE)
    assert "ultrarun.compat.hpbandster" in text
    changed = tmp_path / f"changed_{script.name}"
    changed.write_text(text)
    return changed


def command(name: str, mode: str, tmp_path: Path, *args: str) -> list[str]:
    script = SCRIPTS / f"hpbandster_{name}.py"
    if mode == "imports":
        return [sys.executable, str(with_imports_changed(script, tmp_path)), *args]
    return [sys.executable, "-m", "ultrarun.compat.hpbandster", str(script), *args]


@pytest.fixture
def env(tmp_path):
    env = dict(os.environ, PYRO_NS_PORT=str(free_port()), MPLBACKEND="Agg",
               PYTHONPATH=os.pathsep.join([str(ROOT_DIR), os.environ.get("PYTHONPATH", "")]))
    return env


def finish(proc: subprocess.Popen) -> dict:
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    finally:
        proc.kill()
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def run(cmd: list[str], env: dict) -> dict:
    return finish(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True))


def stop(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.mark.parametrize("mode", MODES)
def test_local_sequential_on_pyros_default_port_with_hpbandsters_brackets(mode, tmp_path, env):
    out = run(command("local_sequential", mode, tmp_path), env)
    assert out["port"] == int(env["PYRO_NS_PORT"])  # port=None: PYRO_NS_PORT (else 9090)
    assert out["runs"] == 65  # HpBandSter's bracket sizes; the paper's formula gives 69
    assert out["budgets"] == [1.0, 3.0, 9.0, 27.0] and out["eta"] == 3
    assert abs(out["incumbent"]["x"] - 0.3) < 0.3


@pytest.mark.parametrize("mode", MODES)
def test_local_parallel_threads(mode, tmp_path, env):
    out = run(command("local_parallel_threads", mode, tmp_path), env)
    assert out["runs"] == 13 + 4 and out["overlapping"]  # both workers computed at once


@pytest.mark.parametrize("mode", MODES)
def test_local_parallel_processes(mode, tmp_path, env):
    workers = [subprocess.Popen(command("local_parallel_processes", mode, tmp_path, "--worker"),
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
               for _ in range(2)]
    try:
        out = run(command("local_parallel_processes", mode, tmp_path), env)
        assert out == {"runs": 17, "failed": 0}
        for worker in workers:  # shutdown_workers=True ends them
            assert worker.wait(timeout=30) == 0
    finally:
        stop(workers)


@pytest.mark.parametrize("mode", MODES)
def test_cluster_with_a_shared_directory_and_nic_name(mode, tmp_path, env):
    shared = tmp_path / "shared"
    args = ["--run_id", "cluster.job 42", "--nic_name", "lo", "--shared_directory", str(shared)]
    worker = subprocess.Popen(command("cluster", mode, tmp_path, *args, "--worker"), env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        out = run(command("cluster", mode, tmp_path, *args), env)
        assert out == {"runs": 17, "worker_pids": 2}
        assert worker.wait(timeout=30) == 0
    finally:
        stop([worker])
    with open(shared / "results.pkl", "rb") as fh:
        result = pickle.load(fh)
    assert len(result.get_all_runs()) == 17 and result.get_incumbent_id() is not None
    assert not list(shared.glob("ultrarun_run_*.json"))  # the credentials file is gone


@pytest.mark.parametrize("mode", MODES)
def test_analysis_of_logs_written_by_hpbandster_0_7_4(mode, tmp_path, env):
    expected = json.loads((HPB074 / "expected.json").read_text())
    out = run(command("analysis", mode, tmp_path, "--log_dir", str(HPB074 / "run")), env)
    assert out["runs"] == expected["runs"] and out["configs"] == expected["configs"]
    assert out["incumbent"] == expected["incumbent"]
    assert out["incumbent_loss"] == expected["incumbent_loss"]
    assert out["failed"] == expected["failed"] == 1
    assert out["pairs"] and out["interactive"] == 5 and out["open_figures"] == 6
    assert out["trajectory_end"] <= expected["incumbent_loss"]


@pytest.mark.parametrize("mode", MODES)
def test_analysis_of_a_run_logged_by_the_drop_in(mode, tmp_path, env):
    logs = tmp_path / "logs"
    made = run(command("local_sequential", mode, tmp_path, "--max_budget", "9",
                       "--n_iterations", "2", "--log_dir", str(logs)), env)
    out = run(command("analysis", mode, tmp_path, "--log_dir", str(logs)), env)
    assert out["runs"] == made["runs"] == 17 and out["incumbent_config"] == made["incumbent"]
    assert out["failed"] == 0 and out["open_figures"] == 6


@pytest.mark.parametrize("mode", MODES)
def test_warm_start_shows_the_earlier_runs_as_iteration_minus_one(mode, tmp_path, env):
    shared = tmp_path / "shared"
    out = run(command("warm_start", mode, tmp_path, "--shared_directory", str(shared),
                      "--previous_run_dir", str(HPB074 / "run")), env)
    assert out["previous"] == out["warm"] == 17 and out["warm_failed"] == 1
    assert out["runs"] == 17 + 4  # budgets 3..9: one bracket of 3 + 1 new runs
    assert out["last_warm_finished"] == 0.0  # shifted to end when the new run starts
    assert out["logged_new"] == 4  # the logger records only this run's jobs


@pytest.mark.parametrize("mode", MODES)
def test_custom_config_generator_and_master(mode, tmp_path, env):
    out = run(command("custom_generator", mode, tmp_path), env)
    assert out["runs"] == 3 * 13 and out["configs"] == 3 * 9
    assert out["proposed"] == 27 and out["told"] == 39  # new_result saw every job
    assert out["model_picks"] == 27 - 5 and out["eta"] == 3
    assert abs(out["incumbent_x"] - 1.0) < 0.5


def test_unchanged_script_fails_without_the_alias(tmp_path, env):
    """The alias is what makes the unchanged run work (hpbandster is not installed here)."""
    proc = subprocess.run([sys.executable, str(SCRIPTS / "hpbandster_custom_generator.py")],
                          env=env, capture_output=True, text=True, timeout=TIMEOUT)
    assert proc.returncode != 0 and "No module named 'hpbandster'" in proc.stderr
