"""ultraopt's ways in, on ultrarun: the async_comm tutorial (a dispatcher fed by hand, then a
master with an optimizer and a Hyperband generator) and ``fmin``."""
from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import threading

import matplotlib.pyplot as plt
import pytest
from ConfigSpace import ConfigurationSpace, Float

from conftest import ROOT_DIR, TESTS, wait_until
from ultrarun.compat import ultraopt
from ultrarun.compat.ultraopt.async_comm.dispatcher import Dispatcher
from ultrarun.compat.ultraopt.async_comm.master import Master
from ultrarun.compat.ultraopt.async_comm.nameserver import NameServer
from ultrarun.compat.ultraopt.async_comm.worker import Worker
from ultrarun.compat.ultraopt.multi_fidelity import CustomIterGenerator, HyperBandIterGenerator
from ultrarun.compat.ultraopt.utils.progress import no_progress_callback
from ultrarun import optimizers as native_optimizers


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def space() -> ConfigurationSpace:
    cs = ConfigurationSpace(seed=1)
    cs.add([Float("x", (-5.0, 5.0)), Float("y", (0.0, 1.0))])
    return cs


def evaluator(config):  # ultraopt's evaluation functions take the config alone
    return (config["x"] - 1.0) ** 2 + config["y"]


def evaluator_with_budget(config, budget=1):
    return (config["x"] - 1.0) ** 2 + config["y"] + 1.0 / budget


class Recorder:
    def __init__(self):
        self.jobs = []
        self.cond = threading.Condition()

    def __call__(self, job):
        with self.cond:
            self.jobs.append(job)
            self.cond.notify_all()


def test_dispatcher_tutorial_pattern(tmp_path):
    """A name server, workers initialised with a one-argument function, and a dispatcher fed by
    hand with submit_job(id, config=, config_info=, budget=, working_directory=)."""
    opt = ultraopt.ETPEOptimizer()
    opt.initialize(space(), budgets=[1])
    ns = NameServer(run_id="tutorial", host="127.0.0.1", port=0)
    ns_host, ns_port = ns.start()
    workers = [Worker(run_id="tutorial", nameserver=ns_host, nameserver_port=ns_port, worker_id=i)
               for i in range(2)]
    for worker in workers:
        worker.initialize(evaluator)
        worker.run(background=True, concurrent_type="thread")
    results = Recorder()
    dispatcher = Dispatcher(results, run_id="tutorial", nameserver=ns_host,
                            nameserver_port=ns_port)
    thread = threading.Thread(target=dispatcher.run, daemon=True)
    thread.start()
    try:
        for i in range(6):
            config, info = opt.ask(budget=1)
            dispatcher.submit_job((0, 0, i), config=config, config_info=info, budget=1,
                                  working_directory=str(tmp_path))
        wait_until(lambda: len(results.jobs) == 6, timeout=30, message="6 results")
    finally:
        dispatcher.shutdown(shutdown_workers=True)
        thread.join(timeout=30)
        ns.shutdown()
    for job in results.jobs:
        assert job.exception is None, job.exception
        assert job.result["loss"] == pytest.approx(evaluator(job.kwargs["config"]))
        assert job.config_info == job.kwargs["config_info"]
        opt.new_result(job)
    assert len(opt.budget2obvs[1.0]["losses"]) == 6
    assert opt.get_available_max_budget() == 1.0


def test_master_with_etpe_hyperband_and_a_progress_context(tmp_path):
    generator = HyperBandIterGenerator(min_budget=1, max_budget=9, eta=3)
    assert generator.get_budgets() == [1.0, 3.0, 9.0]
    opt = ultraopt.ETPEOptimizer()
    opt.initialize(config_space=space(), budgets=generator.get_budgets())
    ns = NameServer(run_id="mf", host="127.0.0.1", port=0)
    ns_host, ns_port = ns.start()
    worker = Worker(run_id="mf", nameserver=ns_host, nameserver_port=ns_port, worker_id=0)
    worker.initialize(evaluator_with_budget)
    worker.run(background=True)
    ticks = []

    class Progress:
        postfix = None

        def __init__(self, initial, total):
            self.total = total

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            ticks.append(("closed", self.total))

        def update(self, n):
            ticks.append(n)

    master = Master(run_id="mf", optimizer=opt, iter_generator=generator,
                    progress_callback=Progress, checkpoint_file=None, checkpoint_freq=1,
                    nameserver=ns_host, nameserver_port=ns_port, working_directory=tmp_path)
    assert master.incumbent_performances[9.0] == math.inf  # unseen budgets are at inf
    try:
        result = master.run(n_iterations=3)
    finally:
        master.shutdown(shutdown_workers=True)
        ns.shutdown()
    runs = result.get_all_runs()
    assert len(runs) == 13 + 4 + 3  # ultraopt's (HpBandSter's) bracket sizes
    assert ticks == [1] * len(runs) + [("closed", 20)]
    assert sum(len(o["losses"]) for o in opt.budget2obvs.values()) == len(runs)
    assert master.incumbent_performances[9.0] == min(opt.budget2obvs[9.0]["losses"])
    fmin_result = ultraopt.FMinResult(opt)
    assert fmin_result.max_budget == 9.0 and fmin_result.best_loss < math.inf


def test_etpe_is_a_model_based_optimizer():
    """ETPE is ultrarun's multivariate TPE, and it picks from its model once it has points."""
    opt = ultraopt.ETPEOptimizer()
    opt.initialize(space(), budgets=[1], random_state=3)
    assert type(opt.native) is native_optimizers.TPE
    for _ in range(30):
        config, _ = opt.ask()
        opt.tell(config, evaluator(config))
    picks = [opt.ask()[1] for _ in range(10)]
    assert any(info.get("model_based_pick") for info in picks)


def test_fmin_serial_and_its_plots():
    result = ultraopt.fmin(evaluator, space(), optimizer="ETPE", n_iterations=40,
                           random_state=0, show_progressbar=False)
    assert result.best_loss < 1.0 and set(result.best_config) == {"x", "y"}
    assert result.budget2info[1.0]["num_configs"] == 40
    assert "best loss" in str(result)
    fig, axes = plt.subplots(2, 2)
    result.plot_convergence(ax=axes[0, 0])
    result.plot_convergence_over_time(ax=axes[0, 1])
    result.plot_concurrent_over_time(ax=axes[1, 0])
    result.plot_finished_over_time(ax=axes[1, 1])
    assert all(ax.get_lines() for ax in axes.flat)


def test_fmin_multi_fidelity_with_async_workers_and_initial_points():
    generator = CustomIterGenerator([4, 2, 1], [1, 3, 9])
    result = ultraopt.fmin(evaluator_with_budget, space(), optimizer="Random", n_iterations=2,
                           n_jobs=2, multi_fidelity_iter_generator=generator,
                           initial_points=[{"x": 1.0, "y": 0.0}], show_progressbar=False)
    assert [result.budget2info[b]["num_configs"] for b in (1.0, 3.0, 9.0)] == [8, 4, 2]
    assert {"x": 1.0, "y": 0.0} in result.budget2obvs[1.0]["configs"]
    assert result.best_loss == pytest.approx(1 / 9)  # the initial point goes all the way up
    ax = result.plot_correlation_across_budgets()
    assert ax.get_title()


def test_fmin_refuses_unknown_optimizers_with_the_choices():
    with pytest.raises(ValueError, match="ETPE"):
        ultraopt.fmin(evaluator, space(), optimizer="Forest", n_iterations=1)


def test_master_needs_an_initialized_optimizer():
    with pytest.raises(ValueError, match="initialize"):
        Master("x", ultraopt.RandomOptimizer(), HyperBandIterGenerator(1, 9, 3),
               progress_callback=no_progress_callback)


# ------------------------------------------------- ultraopt's README and tutorials, as scripts
SCRIPTS = TESTS / "data" / "compat_scripts"


def run_script(name, tmp_path, *args):
    """An ultraopt-style script with ``ultraopt`` changed to ``ultrarun.compat.ultraopt`` in its
    imports and nothing else, run in ``tmp_path``; its last line of output, as JSON."""
    text = re.sub(r"^(\s*(?:from|import)\s+)ultraopt\b", r"\1ultrarun.compat.ultraopt",
                  (SCRIPTS / f"ultraopt_{name}.py").read_text(), flags=re.MULTILINE)
    script = tmp_path / f"changed_{name}.py"
    script.write_text(text)
    env = dict(os.environ, MPLBACKEND="Agg", HOME=str(tmp_path / "home"),
               PYTHONPATH=os.pathsep.join([str(ROOT_DIR), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, str(script), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_readme_hdl_fmin_hyperband_table_and_plots(tmp_path):
    out = run_script("readme", tmp_path)
    assert out["first"]["n_estimators"] in (10, 20, 30, 40, 50)  # int_quniform keeps its grid
    assert "classifier:__choice__" in out["hp_names"]
    assert out["table"] == ["1/4", "1/2", "1", "1/2", "1", "1"]  # the README's table
    assert out["counts"] == [4, 2, 1, 2, 1, 3]
    assert out["num_configs"] == {"0.25": 4, "0.5": 4, "1.0": 5}
    assert out["best_choice"] in ("RandomForestClassifier", "KNeighborsClassifier")
    assert out["graph_edges"] == 10 and out["axes_drawn"] == 4
    assert not list(tmp_path.glob("*.journal.jsonl"))
    assert not list((tmp_path / "home" / ".ultrarun" / "journals").glob("*"))


def test_tutorial_04_optimizer_by_hand(tmp_path):
    out = run_script("tutorial_04", tmp_path)
    assert out["told"]["ETPEOptimizer"]["n"] == out["told"]["RandomOptimizer"]["n"] == 25
    assert out["told"]["ETPEOptimizer"]["best"] <= 0.1  # the initial point is told first
    assert out["offset_grid"]


@pytest.mark.slow
@pytest.mark.parametrize("strategy", ["Serial", "MapReduce"])
def test_tutorial_07_checkpoint_interrupt_and_warm_start(strategy, tmp_path):
    out = run_script("tutorial_07", tmp_path, strategy)
    assert out["type"] == "ETPEOptimizer"  # joblib.load gives the optimizer, as in ultraopt
    assert out["checkpointed"] == 30 and out["backup"] == 29
    assert out["continued"] == out["resumed"] == 40 and out["improved"]


@pytest.mark.slow
def test_tutorial_08_async_master_checkpoints_the_optimizer(tmp_path):
    out = run_script("tutorial_08", tmp_path)
    assert out["runs"] == 13 and out["port_free"]
    assert out["saved"] == {"25.0": 4, "50.0": 4, "100.0": 5}


def test_hdl_conditions_activate_forbidden_and_layering():
    from ultrarun.compat.ultraopt.hdl import hdl2cs, layering_config

    hdl = {"a": {"_type": "choice", "_value": ["x", "y", "z"]},
           "b": {"_type": "int_uniform", "_value": [1, 5]},
           "c": {"_type": "loguniform", "_value": [1e-3, 1.0], "_default": 0.01},
           "__activate": {"a": {"x": ["b"], "y": ["b", "c"], "z": []}},
           "__forbidden": [{"a": "x", "b": [4, 5]}],
           "group": {"d": 3, "e": {"_type": "ordinal", "_value": [1, 2, 4]}}}
    cs = hdl2cs(hdl)
    assert set(cs.keys()) == {"a", "b", "c", "group:d", "group:e"}
    cs.seed(0)
    for config in cs.sample_configuration(30):
        layered = layering_config(config)
        assert ("b" in layered) == (layered["a"] in ("x", "y"))
        assert ("c" in layered) == (layered["a"] == "y")
        assert not (layered["a"] == "x" and layered["b"] >= 4)
        assert layered["group"]["d"] == 3 and type(layered["group"]["e"]) is int
    encoded = {"m:__choice__": "knn", "m:knn:p": "2:int", "m:knn:w": "True:bool", "s": "a:b"}
    assert layering_config(encoded) == {"m": {"knn": {"p": 2, "w": True}}, "s": "a:b"}


def test_hdl_refuses_unknown_types_with_the_choices():
    from ultrarun.compat.ultraopt.hdl import hdl2cs

    with pytest.raises(ValueError, match="int_uniform"):
        hdl2cs({"a": {"_type": "normal", "_value": [0, 1]}})


def test_get_a_free_port_skips_a_taken_one():
    import socket

    from ultrarun.compat.ultraopt.utils.net import get_a_free_port

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert get_a_free_port(port, "127.0.0.1") != port


def test_fmin_serial_writes_a_joblib_checkpoint_and_warm_starts_from_its_path(tmp_path):
    import joblib

    path = tmp_path / "checkpoint.pkl"
    first = ultraopt.fmin(evaluator, space(), n_iterations=12, checkpoint_file=str(path),
                          checkpoint_freq=5, show_progressbar=False)
    saved = joblib.load(path)
    assert len(saved.budget2obvs[1.0]["losses"]) == 12  # the last write is at the end
    assert len(joblib.load(f"{path}.bak").budget2obvs[1.0]["losses"]) == 10
    again = ultraopt.fmin(evaluator, space(), n_iterations=3, previous_result=str(path),
                          show_progressbar=False)
    assert again.budget2info[1.0]["num_configs"] == 15
    assert again.best_loss <= first.best_loss
