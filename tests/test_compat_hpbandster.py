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
               HOME=str(tmp_path / "home"),  # the per-user secret and journals
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


def journals(env: dict) -> list[Path]:
    """Journals left in the current directory and in the per-user journal directory."""
    private = Path(env["HOME"]) / ".ultrarun" / "journals"
    return list(Path.cwd().glob("*.journal.jsonl")) + list(private.glob("*"))


@pytest.mark.parametrize("mode", MODES)
def test_examples_commons_and_a_space_written_for_configspace_0_4(mode, tmp_path, env):
    """HpBandSter's example 1 imports MyWorker from hpbandster.examples.commons; its example
    workers write string defaults, ``q=``, unbounded normals; categoricals mix ints and floats
    and the worker json.dumps its config. Each converted hyperparameter warns once; compute
    gets plain values, a choice as listed; no journal is left behind."""
    proc = subprocess.Popen(command("commons_legacy_space", mode, tmp_path, "--workdir",
                                    str(tmp_path / "work")),
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 0, err[-3000:]
    out = json.loads(out.strip().splitlines()[-1])
    assert out["example1"] == 40 + 13  # two of HpBandSter's brackets for budgets 9..243
    assert out["failed"] == 0 and out["runs"] == 17 and out["written"] == out["configs"]
    assert out["types"] == ["bool", "float", "int", "str"]  # no numpy scalar reached compute
    assert out["choices"] == [[1, "int"], [2.5, "float"]]
    warned = re.findall(r"LegacySpaceWarning: (\w+) '(\w+)' was written for ConfigSpace 0.4 "
                        r"and converted: (.*)", err)
    assert sorted(name for _, name, _ in warned) == ["dropout", "lr", "shift", "units"]
    said = {name: what for _, name, what in warned}
    assert "'1e-2' (a string) read as 0.01" in said["lr"] and "q=8 dropped" in said["units"]
    assert "bounded to [-4, 4]" in said["shift"]
    assert journals(env) == []


def test_configspace_0_4_arguments_convert_and_valid_ones_pass_unchanged():
    import warnings

    import ConfigSpace.hyperparameters as CSH

    from ultrarun.compat.configspace import LegacySpaceWarning, accept_legacy_spaces

    accept_legacy_spaces()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plain = CSH.UniformFloatHyperparameter("a", 0, 1, default_value=0.2)
        assert plain.default_value == 0.2 and not caught
        positional = CSH.UniformFloatHyperparameter("b", 0, 1, "0.5", 0.1, False)  # 0.4's order
        assert positional.default_value == 0.5
        log_normal = CSH.NormalFloatHyperparameter("c", 0, 1, log=True)
        assert log_normal.lower > 0 and log_normal.upper > 1
    assert [w.category for w in caught] == [LegacySpaceWarning] * 2
    with pytest.raises(ValueError, match="'abc' is not a number"):
        CSH.UniformFloatHyperparameter("d", 0, 1, default_value="abc")
    with pytest.raises(ValueError):  # what 1.x refuses for other reasons it still refuses
        CSH.UniformFloatHyperparameter("e", 2, 1)


@pytest.mark.parametrize("mode", MODES)
def test_hpbandster_sklearn_sets_the_seed_attribute_of_the_space(mode, tmp_path, env):
    out = run(command("sklearn_style", mode, tmp_path), env)
    assert out["runs"] == 17 and out["failed"] == 0 and out["seed"] == 3
    assert 1e-3 <= out["best_C"] <= 1e2


@pytest.mark.parametrize("mode", MODES)
def test_ray_tunes_bohb_calls_get_config_with_no_budget(mode, tmp_path, env):
    out = run(command("tune_bohb", mode, tmp_path), env)
    assert out == {"suggested": 36, "distinct": 36}


def test_ray_tunes_own_tunebohb_runs_on_the_alias(tmp_path, env):
    probe = subprocess.run([sys.executable, "-c", "import ray.tune"], capture_output=True,
                           text=True, timeout=TIMEOUT)
    if probe.returncode != 0:
        pytest.skip("ray[tune] is not installed: " + probe.stderr.strip().splitlines()[-1])
    out = run(command("tune_bohb", "install", tmp_path, "--ray"), env)
    assert out == {"suggested": 36, "distinct": 36}


def test_worker_timeout_counts_from_the_last_job_as_in_hpbandster(nameserver, monkeypatch,
                                                                  tmp_path):
    """A worker started long before its master waits for it; once its jobs are done it shuts
    down ``timeout`` later."""
    import ConfigSpace as CS

    import ultrarun.compat
    from ultrarun.compat.hpbandster.core.worker import Worker
    from ultrarun.compat.hpbandster.optimizers import RandomSearch

    class MyWorker(Worker):
        def compute(self, config, budget, **kwargs):
            return {"loss": config["x"], "info": {}}

    monkeypatch.setattr(ultrarun.compat, "JOURNAL_DIR", str(tmp_path / "journals"), raising=False)
    worker = MyWorker(nameserver.run_id, nameserver=nameserver.host,
                      nameserver_port=nameserver.port, timeout=0.2)
    worker.run(background=True)
    try:
        # ten timeouts pass without a master: the worker is still there
        assert not worker._rt.stopped.wait(2.0), "the worker quit before its first job"
        space = CS.ConfigurationSpace()
        space.add(CS.UniformFloatHyperparameter("x", lower=0, upper=1))
        master = RandomSearch(space, run_id=nameserver.run_id, nameserver=nameserver.host,
                              nameserver_port=nameserver.port, min_budget=1, max_budget=1)
        try:
            result = master.run(n_iterations=1)
        finally:
            master.shutdown(shutdown_workers=False)
        assert len(result.get_all_runs()) == 1
        assert worker._rt.stopped.wait(30), "the worker did not end after its last job"
        assert "idle for 0.2s" in worker._rt.reason
    finally:
        worker.shutdown()


def test_two_runs_with_one_run_id_in_one_directory_keep_separate_journals(nameserver,
                                                                         monkeypatch, tmp_path):
    """HpBandSter writes no journal; the drop-in keeps one per run, out of the current
    directory, removed at shutdown."""
    import ConfigSpace as CS

    import ultrarun.compat
    from ultrarun.compat.hpbandster.optimizers import BOHB

    monkeypatch.setattr(ultrarun.compat, "JOURNAL_DIR", str(tmp_path / "journals"), raising=False)
    space = CS.ConfigurationSpace()
    space.add(CS.UniformFloatHyperparameter("x", lower=0, upper=1))
    masters = [BOHB(space, run_id="same", nameserver=nameserver.host,
                    nameserver_port=nameserver.port, min_budget=1, max_budget=3)
               for _ in range(2)]
    paths = [m.journal.path for m in masters]
    try:
        assert paths[0] != paths[1]
        assert all(p.parent == tmp_path / "journals" for p in paths)
        assert not list(Path.cwd().glob("*.journal.jsonl"))
    finally:
        for m in masters:
            m.shutdown()
    assert not any(p.exists() for p in paths)
