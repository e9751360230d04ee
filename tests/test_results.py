"""Result, Run, the JSON-lines logger and loading logs back (ours and HpBandSter's)."""
from __future__ import annotations

import copy
import csv
import json
import math
import pickle

import ConfigSpace as CS
import numpy as np
import pytest

from conftest import TESTS
from ultrarun.errors import NoSuccessfulRunError, UltrarunError
from ultrarun.job import Job, JobStatus
from ultrarun.results import (ConfigRecord, Result, Run, extract_HBS_learning_curves, json_result_logger,
                              logged_results_to_HBS_result)

T0 = 1000.0  # absolute time of the first submission in the hand-built result

# (config_id, budget, loss or None, finished - T0): the trajectory test below is worked out by hand.
HAND_RUNS = [
    ((0, 0, 0), 1, 0.5, 1), ((0, 0, 1), 1, 0.3, 2), ((0, 0, 2), 1, None, 3),
    ((0, 0, 0), 3, 0.4, 4), ((0, 0, 1), 3, 0.45, 5), ((1, 0, 0), 3, 0.2, 8),
    ((0, 0, 0), 9, 0.35, 10), ((1, 0, 2), 1, 0.1, 11), ((1, 0, 1), 9, 0.6, 12),
]


def hand_result(HB_config: dict | None = None) -> Result:
    runs = [Run(cid, b, loss, None if loss is None else {"n": i},
                {"submitted": T0 + t - 1, "started": T0 + t - 0.5, "finished": T0 + t},
                None if loss is not None else "Traceback: boom")
            for i, (cid, b, loss, t) in enumerate(HAND_RUNS)]
    configs = {cid: ({"x": i / 10, "c": "a" if i % 2 else "b"}, {"model_based_pick": False})
               for i, cid in enumerate(dict.fromkeys(r.config_id for r in runs))}
    return Result.from_runs(runs, configs, HB_config)


def make_job(config_id, budget, status=JobStatus.SUCCESS, loss=None, info=None, exception=None,
             t=0.0, config=None) -> Job:
    result = {"loss": loss, "info": info if info is not None else {}} if status is JobStatus.SUCCESS else None
    return Job(id=config_id, kwargs={"config": config or {"x": 0.5}, "budget": budget, "working_directory": "."},
               status=status, result=result, exception=exception,
               timestamps={"submitted": T0 + t, "started": T0 + t + 0.25, "finished": T0 + t + 1})


@pytest.fixture
def logged(tmp_path):
    """A logged run with every final status, numpy values and non-finite numbers."""
    log = json_result_logger(tmp_path)
    log.new_config((0, 0, 0), {"x": 0.1, "c": "a"}, {"model_based_pick": True})
    log.new_config((0, 0, 1), {"x": np.float32(0.25), "c": "b"}, {"model_based_pick": False})
    log.new_config((0, 0, 2), {"x": 0.9, "c": "a"}, {})
    log.new_config((0, 0, 2), {"x": 123, "c": "ignored"}, {})  # second call for an id: ignored
    jobs = [
        make_job((0, 0, 0), 1, loss=0.5, info={"acc": np.float64(0.5), "curve": np.arange(3), "nan": math.nan},
                 t=0),
        make_job((0, 0, 1), 1, JobStatus.CRASHED, exception="Traceback (most recent call last):\nValueError: x", t=1),
        make_job((0, 0, 2), 1, JobStatus.TIMEOUT, exception="hard time limit of 1 s hit", t=2),
        make_job((0, 0, 0), 3, loss=0.25, info={"inf": math.inf}, t=3),
        make_job((0, 0, 2), 3, JobStatus.LOST, exception="worker lost 3 times", t=4),
        make_job((0, 0, 1), 3, JobStatus.MEMOUT, exception="memory limit", t=5),
    ]
    for job in jobs:
        log(job)
    return tmp_path, jobs


def test_round_trip_keeps_runs_configs_and_statuses(logged):
    directory, jobs = logged
    result = logged_results_to_HBS_result(directory)
    assert set(result.data) == {(0, 0, 0), (0, 0, 1), (0, 0, 2)}
    id2conf = result.get_id2config_mapping()
    assert id2conf[(0, 0, 1)] == {"config": {"x": 0.25, "c": "b"}, "config_info": {"model_based_pick": False}}
    assert id2conf[(0, 0, 2)]["config"] == {"x": 0.9, "c": "a"}
    runs = {(r.config_id, r.budget): r for r in result.get_all_runs()}
    assert len(runs) == len(jobs)
    for job in jobs:
        run = runs[(job.id, job.kwargs["budget"])]
        assert run.status is job.status
        assert run.error_logs == job.exception
        assert run.loss == (job.result["loss"] if job.result else None)
        assert run.time_stamps["finished"] - run.time_stamps["submitted"] == pytest.approx(1)
    assert runs[((0, 0, 0), 1)].info == {"acc": 0.5, "curve": [0, 1, 2], "nan": None}
    assert runs[((0, 0, 0), 3)].info == {"inf": None}
    assert runs[((0, 0, 0), 1)].time_stamps["submitted"] == 0  # relative to the first submission
    assert "ValueError" in runs[((0, 0, 1), 1)].error_logs
    assert result.HB_config["budgets"] == [1, 3] and result.HB_config["time_ref"] == T0
    assert result.get_incumbent_id() == (0, 0, 0)


def test_files_are_strict_json_in_hpbandster_shape(logged):
    directory, jobs = logged

    def strict(text):
        return json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON {c}"))

    config_lines = [strict(line) for line in (directory / "configs.json").read_text().splitlines()]
    assert [line[0] for line in config_lines] == [[0, 0, 0], [0, 0, 1], [0, 0, 2]]
    assert all(len(line) == 3 for line in config_lines)
    result_lines = (directory / "results.json").read_text().splitlines()
    assert len(result_lines) == len(jobs)
    for text in result_lines:  # how HpBandSter's own reader unpacks a line
        config_id, budget, time_stamps, result, exception = strict(text)
        assert isinstance(config_id, list) and set(time_stamps) == {"submitted", "started", "finished"}
        assert (result is None) == (exception is not None)
    statuses = [strict(line)[2]["status"] for line in (directory / "statuses.json").read_text().splitlines()]
    assert statuses == [job.status.name for job in jobs]


def test_logs_written_by_hpbandster_load(tmp_path):
    configs = [[[0, 0, 0], {"x": 1}, {"model_based_pick": False}], [[0, 0, 1], {"x": 2}],
               [[0, 0, 2], {"x": 3}, {}]]
    ts = {"submitted": 50.0, "started": 51.0, "finished": 52.0}
    results = [[[0, 0, 0], 1.0, ts, {"loss": 0.3, "info": {}}, None],
               [[0, 0, 1], 1.0, ts, None, "Traceback ... RuntimeError"],
               [[0, 0, 0], 3.0, ts, {"loss": 0.2, "info": {"a": 1}}, None],
               [[0, 0, 2], 3.0, ts, None, None]]
    (tmp_path / "configs.json").write_text("".join(json.dumps(c) + "\n" for c in configs))
    (tmp_path / "results.json").write_text("".join(json.dumps(r) + "\n" for r in results))
    result = logged_results_to_HBS_result(tmp_path)
    assert result.get_id2config_mapping()[(0, 0, 1)]["config_info"] == "N/A"  # as HpBandSter
    assert result.get_id2config_mapping()[(0, 0, 0)]["config_info"] == {"model_based_pick": False}
    statuses = {(r.config_id, r.budget): r.status for r in result.get_all_runs()}
    assert statuses == {((0, 0, 0), 1.0): JobStatus.SUCCESS, ((0, 0, 1), 1.0): JobStatus.CRASHED,
                        ((0, 0, 0), 3.0): JobStatus.SUCCESS, ((0, 0, 2), 3.0): JobStatus.CRASHED}
    assert result.get_runs_by_id((0, 0, 1))[0].error_logs == "Traceback ... RuntimeError"
    assert result.HB_config == {"budgets": [1.0, 3.0], "eta": 3.0, "min_budget": 1.0, "max_budget": 3.0,
                                "max_SH_iter": 2, "time_ref": 50.0}
    assert result.get_incumbent_id() == (0, 0, 0)


def test_logger_refuses_existing_files_unless_told_to_resume_or_overwrite(logged):
    directory, _ = logged
    before = (directory / "results.json").read_text()
    with pytest.raises(FileExistsError, match="resume=True.*overwrite=True"):
        json_result_logger(directory).open()
    assert (directory / "results.json").read_text() == before  # untouched
    resumed = json_result_logger(directory)
    resumed.open("resume")
    assert (directory / "results.json").read_text() == before  # appended to, later
    assert resumed.config_ids, "configurations logged before are known"
    json_result_logger(directory, overwrite=True).open()
    assert (directory / "results.json").read_text() == ""


def test_crash_while_logging_loses_nothing_written_before(tmp_path):
    log = json_result_logger(tmp_path)
    log.new_config((0, 0, 0), {"x": 1}, {})
    log(make_job((0, 0, 0), 1, loss=0.4))
    log(make_job((0, 0, 1), 1, loss=0.3, t=1))  # config never announced: logged on the fly
    live = logged_results_to_HBS_result(tmp_path)  # the logger is still "open"
    assert len(live.get_all_runs()) == 2
    with open(tmp_path / "results.json", "a") as fh:  # the master dies in the middle of a line
        fh.write('[[0, 0, 2], 1, {"submitted": 10')
    with open(tmp_path / "statuses.json", "a") as fh:
        fh.write("[[0, 0")
    after = logged_results_to_HBS_result(tmp_path)
    assert [(r.config_id, r.loss) for r in after.get_all_runs()] == [((0, 0, 0), 0.4), ((0, 0, 1), 0.3)]


def test_logger_completes_job_without_final_status_or_timestamps(tmp_path):
    log = json_result_logger(tmp_path)
    job = Job(id=(0, 0, 0), kwargs={"config": {"x": 1}, "budget": 1}, result={"loss": 1.0, "info": {}},
              timestamps={"submitted": 5.0})
    log(job)  # HpBandSter-style job: no status, only a submission time
    run = logged_results_to_HBS_result(tmp_path).get_all_runs()[0]
    assert run.status is JobStatus.SUCCESS and run.loss == 1.0
    assert set(run.time_stamps) == {"submitted", "started", "finished"}


def test_incumbent_and_trajectory_match_hpbandster():
    result = hand_result()
    assert result.get_incumbent_id() == (0, 0, 0)  # best on budget 9, although (1,0,2) is lower on 1
    assert result.get_incumbents_per_budget() == {1: ((1, 0, 2), 0.1), 3: ((1, 0, 0), 0.2), 9: ((0, 0, 0), 0.35)}
    assert result.num_iterations() == 2
    assert result.get_incumbent_trajectory() == {
        "config_ids": [(0, 0, 0), (0, 0, 1), (0, 0, 0), (1, 0, 0), (0, 0, 0), (0, 0, 0)],
        "times_finished": [1, 2, 4, 8, 10, 12], "budgets": [1, 1, 3, 3, 9, 9],
        "losses": [0.5, 0.3, 0.4, 0.2, 0.35, 0.35]}


@pytest.mark.parametrize("kwargs, ids, times, losses", [
    ({"bigger_is_better": False}, [(0, 0, 0), (0, 0, 1), (1, 0, 0), (1, 0, 0)], [1, 2, 8, 12], [0.5, 0.3, 0.2, 0.2]),
    ({"bigger_is_better": False, "non_decreasing_budget": False},
     [(0, 0, 0), (0, 0, 1), (1, 0, 0), (1, 0, 2), (1, 0, 2)], [1, 2, 8, 11, 12], [0.5, 0.3, 0.2, 0.1, 0.1]),
    ({"non_decreasing_budget": False},  # a budget-9 run after a budget-1 incumbent wins on budget
     [(0, 0, 0), (0, 0, 1), (0, 0, 0), (1, 0, 0), (0, 0, 0), (1, 0, 2), (1, 0, 1)],
     [1, 2, 4, 8, 10, 11, 12], [0.5, 0.3, 0.4, 0.2, 0.35, 0.1, 0.6]),
    ({"all_budgets": False}, [(0, 0, 0), (0, 0, 0)], [10, 12], [0.35, 0.35]),
])
def test_trajectory_flags(kwargs, ids, times, losses):
    trajectory = hand_result().get_incumbent_trajectory(**kwargs)
    assert (trajectory["config_ids"], trajectory["times_finished"], trajectory["losses"]) == (ids, times, losses)


def test_no_incumbent_when_nothing_reached_the_max_budget():
    result = hand_result({"budgets": [1, 3, 9, 27], "min_budget": 1, "max_budget": 27})
    assert result.get_incumbent_id() is None
    assert result.get_incumbent_trajectory(all_budgets=False)["config_ids"] == []
    assert list(result.get_incumbents_per_budget()) == [1, 3, 9]


def test_empty_result_answers_without_errors():
    result = Result([{}])
    assert result.get_incumbent_id() is None
    assert result.get_incumbent_trajectory()["losses"] == []
    assert result.get_all_runs() == [] and result.num_iterations() == 0
    assert result.HB_config["budgets"] == [] and result.HB_config["max_budget"] is None


def test_runs_learning_curves_and_mapping():
    result = hand_result()
    runs = result.get_runs_by_id((0, 0, 0))
    assert [r.budget for r in runs] == [1, 3, 9] and runs[-1]["loss"] == 0.35
    assert [r.budget for r in result.get_all_runs(only_largest_budget=True)] == [9, 3, 1, 3, 1, 9]
    crashed = result.get_runs_by_id((0, 0, 2))[0]
    assert crashed.status is JobStatus.CRASHED and crashed.error_logs == "Traceback: boom"
    curves = result.get_learning_curves(config_ids=[(0, 0, 0), (0, 0, 2)])
    assert curves == {(0, 0, 0): [[(1, 0.5), (3, 0.4), (9, 0.35)]], (0, 0, 2): [[]]}
    assert extract_HBS_learning_curves(runs) == curves[(0, 0, 0)]
    assert result[(0, 0, 0)].config_info == {"model_based_pick": False}


def test_constructor_copies_hpbandster_style_iteration_data():
    datum = ConfigRecord(config={"x": 1}, config_info={}, results={1: {"loss": 0.1, "info": {}}},
                  time_stamps={1: {"submitted": 10.0, "started": 11.0, "finished": 12.0}}, exceptions={1: None})
    before = copy.deepcopy(datum)
    result = Result([{(0, 0, 0): datum}], {"time_ref": 5.0, "budgets": np.array([1.0, 3.0]), "max_budget": 3.0})
    assert datum == before  # HpBandSter changed the caller's time stamps in place; we do not
    run = result.get_all_runs()[0]
    assert run.time_stamps == {"submitted": 5.0, "started": 6.0, "finished": 7.0}
    assert run.status is JobStatus.SUCCESS and result.HB_config["budgets"] == [1.0, 3.0]
    assert result.get_incumbent_id() is None


def test_from_jobs_in_memory():
    jobs = [make_job((0, 0, 0), 1, loss=0.2), make_job((0, 0, 1), 1, JobStatus.TIMEOUT, exception="t", t=2),
            make_job((0, 0, 2), 1, loss=0.1, t=3)]
    configs = {(0, 0, 0): {"x": 0.5}, (0, 0, 1): ConfigRecord(config={"x": 0.7}, config_info={"model_based_pick": True})}
    result = Result.from_runs([Run.from_job(j) for j in jobs[:2]] + jobs[2:], configs, {"time_ref": T0 - 10})
    runs = result.get_all_runs()
    assert [r.status for r in runs] == [JobStatus.SUCCESS, JobStatus.TIMEOUT, JobStatus.SUCCESS]
    assert runs[0].time_stamps["submitted"] == 10 and runs[1].error_logs == "t"
    id2conf = result.get_id2config_mapping()
    assert id2conf[(0, 0, 1)] == {"config": {"x": 0.7}, "config_info": {"model_based_pick": True}}
    assert id2conf[(0, 0, 2)]["config"] == {}


def test_csv_export_parses_back(tmp_path):
    result = hand_result()
    path = result.to_csv(tmp_path / "runs.csv")
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(HAND_RUNS)
    assert {"config_id", "budget", "loss", "status", "submitted", "started", "finished", "config.x",
            "config.c"} <= set(rows[0])
    by_key = {(tuple(json.loads(r["config_id"])), float(r["budget"])): r for r in rows}
    crashed = by_key[((0, 0, 2), 1.0)]
    assert crashed["status"] == "CRASHED" and crashed["loss"] == ""
    best = by_key[((1, 0, 2), 1.0)]
    assert float(best["loss"]) == 0.1 and float(best["finished"]) == 11.0 and best["status"] == "SUCCESS"


def test_pandas_dataframe():
    df_x, df_y = hand_result().get_pandas_dataframe(budgets=[1, 9])
    assert list(df_y["loss"]) == [0.5, 0.35, 0.3, 0.1, 0.6]  # crashed run left out
    assert list(df_x.columns) == ["x", "c", "budget"] and list(df_x["budget"]) == [1, 9, 1, 1, 9]
    df_x, df_y = hand_result().get_pandas_dataframe(budgets=[3], loss_fn=lambda r: -r.loss)
    assert "budget" not in df_x.columns and list(df_y["loss"]) == [-0.4, -0.45, -0.2]


def test_fanova_data_leaves_the_callers_space_alone():
    space = CS.ConfigurationSpace()
    space.add(CS.UniformFloatHyperparameter("x", 0.0, 1.0), CS.CategoricalHyperparameter("c", ["a", "b"]))
    X, y, with_budget = hand_result().get_fANOVA_data(space)
    assert "budget" not in space and "budget" in with_budget
    assert X.shape == (8, 3) and list(y) == [0.5, 0.4, 0.35, 0.3, 0.45, 0.2, 0.1, 0.6]
    names = list(with_budget.keys())
    assert set(X[:, names.index("c")]) <= {0.0, 1.0} and X[0, names.index("budget")] == 1.0
    X, y, same = hand_result().get_fANOVA_data(space, budgets=[1], failed_loss=1.0)
    assert X.shape == (4, 2) and list(y) == [0.5, 0.3, 1.0, 0.1]


def test_a_result_pickled_by_ultrarun_0_1_0_loads_and_pickles_under_public_names():
    """Before results.py became a package its pickles named ``ultrarun.results.Datum``."""
    with open(TESTS / "data" / "ultrarun-0.1.0" / "result.pkl", "rb") as fh:
        result = pickle.load(fh)
    assert result.get_incumbent_id() == (0, 0, 0)
    assert [r.status for r in result.get_runs_by_id((0, 0, 1))] == [JobStatus.TIMEOUT]
    assert result.get_id2config_mapping()[(0, 0, 1)]["config"] == {"x": 0.9}
    data = pickle.dumps(result)
    assert b"ultrarun.results._" not in data, "a private module path breaks when code moves"
    assert pickle.loads(data).get_all_runs() == result.get_all_runs()


# --- best_config: the answer an Optuna user looks for (best_params / best_value) ----------------
def test_best_config_is_the_best_on_the_largest_budget_with_its_loss_and_budget():
    result = hand_result({"budgets": [1, 3, 9, 27], "min_budget": 1, "max_budget": 27})
    best = result.best_config()
    # nothing reached 27; on budget 9 (0, 0, 0) has 0.35 and (1, 0, 1) 0.6. The 0.1 of (1, 0, 2)
    # on budget 1 is not comparable and does not win
    assert (best.config_id, best.loss, best.budget) == ((0, 0, 0), 0.35, 9)
    assert best.config == result.get_id2config_mapping()[(0, 0, 0)]["config"]
    assert best.info == {"n": 6}
    best.config["x"] = "changed"  # a copy: the result is left alone
    assert result.best_config().config["x"] == 0.0


def test_best_config_agrees_with_the_hpbandster_incumbent_when_there_is_one():
    result = hand_result()  # max_budget inferred: 9
    best = result.best_config()
    assert best.config_id == result.get_incumbent_id()
    assert best.config == result.get_id2config_mapping()[result.get_incumbent_id()]["config"]


def test_best_config_of_a_run_where_nothing_finished_names_the_failures(logged):
    directory, _ = logged
    failed = [r for r in logged_results_to_HBS_result(directory).get_all_runs() if r.loss is None]
    result = Result.from_runs(failed, {})
    with pytest.raises(NoSuccessfulRunError) as error:
        result.best_config()
    text = str(error.value)
    assert "no run finished with a loss" in text and "4 runs failed" in text
    assert "CRASHED: 1" in text and "TIMEOUT: 1" in text and "LOST: 1" in text
    assert "ValueError: x" in text and "hard time limit of 1 s hit" in text
    assert isinstance(error.value, UltrarunError)
    with pytest.raises(NoSuccessfulRunError, match="no run finished yet: the result holds no runs"):
        Result([{}]).best_config()


# ------------------------------------------ logs complete after any crash (issue 21, finding 5)
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from collections import Counter  # noqa: E402

from conftest import wait_until  # noqa: E402


def _master(directory, *args):
    return subprocess.Popen([sys.executable, str(TESTS / "master_process.py"), str(directory),
                             *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow
@pytest.mark.parametrize("block_in", ["results.json", "statuses.json"])
def test_a_master_killed_between_the_journal_and_the_logs_resumes_with_complete_logs(
        tmp_path, block_in):
    """A real master is SIGKILLed after its 5th result is journaled, before that result's
    results line (or its status line) is logged. The resumed run writes every journaled result
    the logs lack, once: each file then holds every job of the run exactly once, with the loss
    the target returned (it used to replay the result and never log it)."""
    first = _master(tmp_path, "--block-in", block_in, "--at", "5")
    try:
        wait_until(lambda: (tmp_path / "blocked").exists() or first.poll() is not None,
                   timeout=60, message="the master to block in its result logger")
        assert first.poll() is None, first.stdout.read()
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    journal = _lines(next(tmp_path.glob("*.journal.jsonl")))
    journaled = [(tuple(r["id"]), r["budget"]) for r in journal if r["t"] == "result"]
    assert len(journaled) == 5
    logged = [(tuple(line[0]), line[1]) for line in _lines(tmp_path / "logs" / block_in)]
    assert len(logged) == 4 and set(logged) < set(journaled), "the crash kept one from the log"

    second = _master(tmp_path, "--resume")
    out, _ = second.communicate(timeout=120)
    assert second.returncode == 0, out

    jobs = 9 + 3 + 1  # Hyperband, budgets 1, 3, 9: one iteration
    results = _lines(tmp_path / "logs" / "results.json")
    statuses = _lines(tmp_path / "logs" / "statuses.json")
    configs = _lines(tmp_path / "logs" / "configs.json")
    for lines in (results, statuses):
        keys = Counter((tuple(line[0]), line[1]) for line in lines)
        assert len(keys) == jobs and set(keys.values()) == {1}, keys
    assert Counter(tuple(line[0]) for line in configs) == Counter(
        {tuple(line[0]): 1 for line in configs}) and len(configs) == 9
    config_of = {tuple(line[0]): line[1] for line in configs}
    sys.path.insert(0, str(TESTS))
    try:
        from master_process import loss
    finally:
        sys.path.remove(str(TESTS))
    for config_id, budget, _, result, _ in results:
        assert result["loss"] == loss(config_of[tuple(config_id)], budget)
    loaded = logged_results_to_HBS_result(tmp_path / "logs")
    assert len(loaded.get_all_runs()) == jobs


def test_complete_logs_a_job_only_where_the_logs_lack_it(tmp_path):
    """The logs' own keys decide: (config_id, budget) in results.json and statuses.json."""
    log = json_result_logger(tmp_path)
    log.new_config((0, 0, 0), {"x": 1}, {})
    log(make_job((0, 0, 0), 1, loss=0.4))
    with open(tmp_path / "results.json", "a") as fh:  # logged before a crash, without status
        fh.write(json.dumps([[0, 0, 1], 1.0, {}, {"loss": 0.3, "info": {}}, None]) + "\n")
    resumed = json_result_logger(tmp_path)
    resumed.open("resume")
    for job in (make_job((0, 0, 0), 1, loss=0.4), make_job((0, 0, 1), 1, loss=0.3),
                make_job((0, 0, 2), 1, loss=0.2), make_job((0, 0, 2), 1, loss=0.2)):
        resumed.complete(job)
    assert [tuple(line[0]) for line in _lines(tmp_path / "results.json")] == [
        (0, 0, 0), (0, 0, 1), (0, 0, 2)]
    assert [tuple(line[0]) for line in _lines(tmp_path / "statuses.json")] == [
        (0, 0, 0), (0, 0, 1), (0, 0, 2)]
    assert [tuple(line[0]) for line in _lines(tmp_path / "configs.json")] == [
        (0, 0, 0), (0, 0, 1), (0, 0, 2)]


# ------------------------------------------------ fuzzing the journal reader (issue 21, fuzzing)
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from ultrarun._files import read_json_lines  # noqa: E402
from ultrarun.errors import UltrarunError  # noqa: E402
from ultrarun.journal import Journal  # noqa: E402

_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
              st.text(max_size=6)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(max_size=3), inner, max_size=3)),
    max_leaves=8)
_RECORD = st.fixed_dictionaries({"t": st.sampled_from(["result", "config", "header", "x"])},
                                optional={"id": _JSON, "budget": _JSON, "status": st.one_of(
                                    st.sampled_from(["SUCCESS", "LOST"]), _JSON),
                                          "config": _JSON, "info": _JSON})
_LINE = st.one_of(
    st.binary(max_size=40),  # torn, not UTF-8, anything
    _JSON.map(lambda v: json.dumps(v).encode()),
    _RECORD.map(lambda v: json.dumps(v).encode()),
    st.integers(4000, 6000).map(lambda n: b"1" * n),  # an int past the decimal limit
    st.integers(900, 3000).map(lambda n: b"[" * n + b"]" * n),  # deeper than the stack
    st.sampled_from([b"NaN", b'{"t": "result", "id": [0, 0, 1], "budget": Infinity}',
                     b'"\xff\xfe"', b"1,2", b"[3", b"4]", "\u2028".encode()]))


def _same_json(value):
    text = json.dumps(value)
    assert json.dumps(json.loads(text)) == text


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.data_too_large])
@given(lines=st.lists(_LINE, max_size=8), chunk=st.integers(1, 4))
def test_the_journal_reader_gives_json_values_or_a_clear_error(tmp_path_factory, lines, chunk):
    """Whatever a journal file holds: read_json_lines gives JSON values (skipping what is not
    JSON, never raising); Journal.read gives its records or a clear UltrarunError."""
    path = tmp_path_factory.mktemp("fuzz") / "journal.jsonl"
    path.write_bytes(b"\n".join(lines))
    read = list(read_json_lines(path, chunk=chunk))
    assert [n for n, _ in read] == sorted({n for n, _ in read})
    for _, value in read:
        _same_json(value)
    try:
        header, configs, results = Journal(path).read()
    except UltrarunError as exc:
        assert f"{path}:" in str(exc)
        return
    for record in [header, *results.values()]:
        _same_json(record)
    assert all(type(key) is tuple for key in configs)
