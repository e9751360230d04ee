"""The fixes HpBandSter users expect in ultrarun's own API: run ids, positional arguments that
fail loudly, HpBandSter's bracket sizes as an option, plots that behave like HpBandSter's, warm
starts in the Result, HpBandSter pickles, and DeepHyper's job attributes."""
from __future__ import annotations

import pickle
import sys

import matplotlib
import matplotlib.pyplot as plt
import pytest
from ConfigSpace import ConfigurationSpace

import ultrarun.compat.hpbandster as hpb
import ultrarun.compat.hpbandster.core.worker  # noqa: F401  (hpb.core.worker)
import ultrarun.compat.hpbandster.optimizers  # noqa: F401  (hpb.optimizers)
from ultrarun.compat.deephyper.evaluator import Evaluator  # DeepHyper's job attributes
from conftest import TESTS
from ultrarun import transport
from ultrarun.benchmarks import branin_space
from ultrarun.errors import ConfigurationError
from ultrarun.frontends import BOHB, HyperBand
from ultrarun.iterations import HyperBandIterGenerator
from ultrarun.nameserver import NameServer
from ultrarun.results import Result, Run, logged_results_to_HBS_result
from ultrarun.runners import TargetFunctionRunner, ThreadRunner
from ultrarun.worker import Worker
from ultrarun import visualization as vis

HPB074 = TESTS / "data" / "hpbandster-0.7.4"


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


# ------------------------------------------------------------------------------------- run ids
@pytest.mark.parametrize("run_id", ["exp.1", "job 12", "a%2E1", "ü-run", "42"])
def test_any_printable_run_id_is_escaped_in_names_and_read_back(run_id):
    name = transport.worker_name(run_id, "node1.cluster", 7, 0)
    assert name.count(".") == 5 and name.startswith(transport.worker_prefix(run_id))
    assert transport.parse_worker_name(name)["run_id"] == run_id
    assert transport.dispatcher_name(run_id).count(".") == 2


def test_run_ids_that_differ_stay_apart_in_names():
    assert transport.worker_prefix("a.1") != transport.worker_prefix("a%2E1")
    assert transport.worker_prefix("plain_id-2") == "ultrarun.plain_id-2.worker."  # unchanged


def test_a_run_with_a_dotted_spaced_run_id_runs(tmp_path):
    with NameServer("exp.1 b", working_directory=tmp_path) as ns:
        worker = Worker("exp.1 b", ns.host, ns.port, secret=ns.secret).initialize(
            lambda config, budget: config["x1"] + 5)
        worker.run(background=True)
        try:
            master = HyperBand(branin_space(), run_id="exp.1 b", min_budget=1, max_budget=3,
                               nameserver=ns.host, nameserver_port=ns.port, secret=ns.secret,
                               working_directory=tmp_path, show_progress=False, seed=1)
            try:
                result = master.run(n_iterations=1)
            finally:
                master.shutdown()
        finally:
            worker.shutdown()
    assert len(result.get_all_runs()) == 4 and result.get_incumbent_id() is not None


@pytest.mark.parametrize("run_id", ["", "a/b", "tab\there"])
def test_run_ids_that_cannot_name_files_are_refused_with_a_reason(run_id):
    with pytest.raises(ConfigurationError, match="printable text"):
        NameServer(run_id)


# ------------------------------------------------------------------- positional arguments
def test_worker_positional_host_fails_loudly():
    with pytest.raises(TypeError, match="positional"):
        Worker("r", "127.0.0.1", 9090, None)  # HpBandSter's 4th positional is logger
    compat = hpb.core.worker.Worker("r", "127.0.0.1", None, None, "127.0.0.2", 5)
    assert (compat.host, compat.worker_id, compat.nameserver_port) == ("127.0.0.2", 5, 9090)


def test_bohb_positional_budgets_fail_loudly_and_compat_reads_them_as_hpbandster():
    with pytest.raises(TypeError, match="positional"):
        BOHB(branin_space(), 3, 9, 243)
    compat = hpb.optimizers.BOHB(branin_space(), 3, 9, 243, run_id="pos")
    assert (compat.eta, compat.min_budget, compat.max_budget) == (3, 9, 243)
    assert compat.run_id == "pos" and list(compat.budgets) == [9.0, 27.0, 81.0, 243.0]
    compat.shutdown()


# ------------------------------------------------------------------------ bracket formula
def test_hpbandsters_bracket_formula_is_an_option_and_the_paper_the_default():
    paper, hpbandster = (HyperBandIterGenerator(9, 243, 3, bracket_formula=f)
                         for f in ("paper", "hpbandster"))
    assert sum(paper.num_jobs(i) for i in range(4)) == 69
    assert sum(hpbandster.num_jobs(i) for i in range(4)) == 65
    assert paper.num_configs(1) == [12, 4, 1] and hpbandster.num_configs(1) == [9, 3, 1]
    assert HyperBandIterGenerator(9, 243, 3).num_configs(1) == [12, 4, 1]
    with pytest.raises(ConfigurationError, match="bracket_formula"):
        HyperBandIterGenerator(1, 9, 3, bracket_formula="li")


# -------------------------------------------------------------------------------- plots
def small_result() -> Result:
    runs = [Run((0, 0, i), b, 1.0 / (i + 1) + 1 / b, {}, {"submitted": i, "started": i,
                                                         "finished": i + b})
            for i in range(4) for b in (1, 3)]
    configs = {(0, 0, i): ({"x": i}, {"model_based_pick": i % 2 == 1}) for i in range(4)}
    return Result.from_runs(runs, configs)


PLOTS = [vis.losses_over_time, vis.concurrent_runs_over_time, vis.finished_runs_over_time,
         vis.correlation_across_budgets]


@pytest.mark.parametrize("plot", PLOTS)
def test_plots_return_fig_and_ax_registered_with_pyplot(plot, monkeypatch):
    shown = []
    monkeypatch.setattr(plt, "show", lambda *a, **k: shown.append(True))
    fig, ax = plot(small_result())
    assert isinstance(fig, matplotlib.figure.Figure) and ax in fig.axes
    assert fig.number in plt.get_fignums()  # plt.show() shows it
    assert not shown
    plot(small_result(), show=True)
    assert shown == [True]


def test_performance_histogram_model_vs_random():
    result = small_result()
    fig, axes = vis.performance_histogram_model_vs_random(result.get_all_runs(),
                                                          result.get_id2config_mapping())
    assert axes.shape == (2, 2)  # a row per budget: model-based, random
    counts = [[sum(p.get_height() for p in ax.patches) for ax in row] for row in axes]
    assert counts == [[2, 2], [2, 2]]


def test_interactive_plot_draws_every_curve_and_toggles_iterations():
    result = small_result()
    lcs = result.get_learning_curves()
    tips = vis.default_tool_tips(result, lcs)
    assert "x=0" in tips[(0, 0, 0)] and "losses:" in tips[(0, 0, 0)]
    fig, ax, check, none_button, all_button = vis.interactive_HBS_plot(lcs, tips, show=False)
    curves = [line for line in ax.get_lines() if line.get_picker()]
    assert len(curves) == 4
    check.set_active(0)  # hide iteration 0
    assert not any(line.get_visible() for line in curves)
    check.set_active(0)
    assert all(line.get_visible() for line in curves)


# -------------------------------------------------------------------------------- warm start
def quadratic(config, budget):
    return (config["x"] - 0.3) ** 2 + 1 / budget


def test_warm_start_runs_appear_as_iteration_minus_one(tmp_path):
    previous = logged_results_to_HBS_result(HPB074 / "run")  # x in [0, 1], kind in {a, b}
    space = ConfigurationSpace({"x": (0.0, 1.0), "kind": ["a", "b"]})
    runner = ThreadRunner(TargetFunctionRunner(quadratic), n_workers=2)
    master = HyperBand(space, run_id="warm", min_budget=1, max_budget=3, eta=3, seed=0,
                       executor=runner, working_directory=tmp_path, show_progress=False,
                       previous_result=previous)
    try:
        result = master.run(n_iterations=1)
    finally:
        master.shutdown()
    old = [r for r in result.get_all_runs() if r.config_id[0] == -1]
    assert len(old) == len(previous.get_all_runs()) == 17
    assert max(r.time_stamps["finished"] for r in old) == 0.0
    assert sorted({r.config_id for r in old}) == [(-1, 0, i) for i in range(12)]
    new = [r for r in result.get_all_runs() if r.config_id[0] >= 0]
    assert len(new) == 4 and min(r.time_stamps["submitted"] for r in new) >= 0
    configs = result.get_id2config_mapping()
    assert {configs[r.config_id]["config"]["kind"] for r in old} <= {"a", "b"}


# -------------------------------------------------------------------------------- pickles
def test_a_result_pickled_by_hpbandster_loads():
    expected = __import__("json").loads((HPB074 / "expected.json").read_text())
    with open(HPB074 / "result.pkl", "rb") as fh:
        result = hpb.load(fh)
    inc = result.get_incumbent_id()
    assert list(inc) == expected["incumbent"] and len(result.get_all_runs()) == expected["runs"]
    assert result.get_runs_by_id(inc)[-1].loss == expected["incumbent_loss"]
    assert result.HB_config["budgets"] == [1.0, 3.0, 9.0]
    again = pickle.loads(pickle.dumps(result))  # and it pickles again under ultrarun's names
    assert again.get_incumbent_id() == inc


def test_after_install_plain_pickle_loads_hpbandster_pickles(monkeypatch):
    monkeypatch.syspath_prepend(str(HPB074))
    hpb.install()
    try:
        with open(HPB074 / "result.pkl", "rb") as fh:
            assert len(pickle.load(fh).get_all_runs()) == 17
        with open(HPB074 / "worker.pkl", "rb") as fh:
            worker = pickle.load(fh)  # a worker subclass pickled by HpBandSter 0.7.4
        assert isinstance(worker, hpb.core.worker.Worker) and worker.offset == 0.25
        assert (worker.run_id, worker.nameserver_port, worker.timeout) == ("hpb074", 9999, 60)
        assert str(worker.worker_id) == "3"
        out = worker.compute(config_id=(0, 0, 0), config={"x": 0.3, "kind": "a"}, budget=1,
                             working_directory=".")
        assert out["loss"] == pytest.approx(1.25)
    finally:
        hpb.uninstall()
        sys.modules.pop("pickled_worker", None)
    assert "hpbandster" not in sys.modules


# -------------------------------------------------------------------------------- evaluator
def test_evaluator_jobs_have_deephyper_attributes_and_serial_takes_num_workers():
    evaluator = Evaluator.create(lambda args: args["x"] * 2, method="serial",
                                 method_kwargs={"num_workers": 3})
    try:
        assert evaluator.num_workers == 3
        evaluator.submit([{"x": 1.5}])
        (job,) = evaluator.gather("ALL")
    finally:
        evaluator.close()
    assert job.args == {"x": 1.5}
    assert job.output == 3.0  # a plain evaluator's job: what the run function returned
    assert job.metadata["timestamp_submit"] <= job.metadata["timestamp_gather"]
