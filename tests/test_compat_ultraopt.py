"""ultraopt's ways in, on ultrarun: the async_comm tutorial (a dispatcher fed by hand, then a
master with an optimizer and a Hyperband generator) and ``fmin``."""
from __future__ import annotations

import math
import threading

import matplotlib.pyplot as plt
import pytest
from ConfigSpace import ConfigurationSpace, Float

from conftest import wait_until
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
