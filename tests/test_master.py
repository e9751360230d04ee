"""The master end to end: real worker processes, Hyperband, ASHA, deadlines, warm starts, resume."""
from __future__ import annotations

import json
import logging
import time

import pytest
from ConfigSpace import Categorical, ConfigurationSpace, Float

from ultrarun.benchmarks import BraninWorker, branin_space
from ultrarun.dispatcher import dispatcher_for
from ultrarun.errors import ConfigurationError
from ultrarun.frontends import BOHB, HyperBand, RandomSearch, minimize
from ultrarun.iterations import AdaptiveIterGenerator, HyperBandIterGenerator
from ultrarun.job import JobStatus
from ultrarun.local import LocalCluster
from ultrarun.master import Master
from ultrarun.optimizers import RandomSearch as RandomSampler
from ultrarun.results import logged_results_to_HBS_result, json_result_logger
from conftest import SchedulingLag
from workers_for_tests import TestWorker

pytestmark = pytest.mark.slow


def quadratic(config, budget):
    """Module level, so worker processes can import it."""
    return (config["x"] - 0.3) ** 2 + 1.0 / budget


@pytest.fixture(scope="module")
def branin_cluster(tmp_path_factory):
    """Two Branin worker processes shared by the tests of this module."""
    cluster = LocalCluster(n_workers=2, worker_class=BraninWorker,
                           worker_kwargs={"max_budget": 9.0},
                           working_directory=tmp_path_factory.mktemp("branin"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.shutdown()


def on_pyro(cluster):
    """The cluster's Pyro dispatcher, for a Master built from parts."""
    return dispatcher_for(cluster.run_id, nameserver=cluster.nameserver.host,
                          nameserver_port=cluster.nameserver_port, secret=cluster.secret)


def front(cls, cluster, tmp_path, **kwargs):
    kwargs.setdefault("min_budget", 1)
    kwargs.setdefault("max_budget", 9)
    return cls(branin_space(), run_id=cluster.run_id, nameserver=cluster.nameserver.host,
               nameserver_port=cluster.nameserver_port, secret=cluster.secret,
               working_directory=tmp_path, ping_interval=1, **kwargs)


def test_hyperband_run_matches_the_schedule_and_finds_an_incumbent(branin_cluster, tmp_path):
    master = front(HyperBand, branin_cluster, tmp_path, eta=3, seed=1,
                   result_logger=json_result_logger(tmp_path / "logs"))
    try:
        result = master.run(n_iterations=3, min_n_workers=2)
    finally:
        master.shutdown(shutdown_workers=False)
    gen = HyperBandIterGenerator(1, 9, 3)
    runs = result.get_all_runs()
    assert len(runs) == sum(gen.num_jobs(i) for i in range(3)) == 9 + 3 + 1 + 5 + 1 + 3
    assert sorted({r.budget for r in runs}) == [1.0, 3.0, 9.0]
    assert all(r.status is JobStatus.SUCCESS for r in runs)
    incumbent = result.get_incumbent_id()
    assert incumbent is not None
    best = min(r.loss for r in runs if r.budget == 9.0)
    assert [r.loss for r in result.get_runs_by_id(incumbent) if r.budget == 9.0] == [best]
    assert master.incumbent_performances[9.0] == best
    # Everything was logged as it arrived, and loads back.
    logged = logged_results_to_HBS_result(tmp_path / "logs")
    assert len(logged.get_all_runs()) == len(runs)
    # Budgets and configs reached the workers as plain values and promotions kept the best.
    for it in master.iterations:
        for cid, datum in it.data.items():
            assert all(type(v) is float for v in datum.config.values())


def test_asha_keeps_going_without_barriers(branin_cluster, tmp_path):
    master = front(BOHB, branin_cluster, tmp_path, eta=3, seed=2, asha=True)
    try:
        result = master.run(n_iterations=2, min_n_workers=2)
    finally:
        master.shutdown()
    runs = result.get_all_runs()
    assert len(result.get_id2config_mapping()) == 2 * 9  # max_configs per ASHA iteration
    assert {r.budget for r in runs} >= {1.0, 3.0}
    assert result.get_incumbents_per_budget()[1.0][1] == min(r.loss for r in runs if r.budget == 1.0)


def test_time_left_stops_launching_and_returns_what_finished(tmp_path):
    with LocalCluster(n_workers=2, worker_class=TestWorker, working_directory=tmp_path) as cluster:
        space = ConfigurationSpace(seed=0, space=[Float("sleep", (0.2, 0.3))])
        master = Master(cluster.run_id, RandomSampler(space, seed=0),
                        HyperBandIterGenerator(1, 27, 3), on_pyro(cluster),
                        working_directory=tmp_path, time_left_for_this_task=1.5)
        t0 = time.monotonic()
        try:
            result = master.run(n_iterations=10, min_n_workers=2)
        finally:
            master.shutdown(shutdown_workers=True)
        elapsed = time.monotonic() - t0
    runs = result.get_all_runs()
    assert 2 <= len(runs) < 46
    assert elapsed < 1.5 + 3.0, f"run took {elapsed:.1f}s for a 1.5s budget"
    assert master.num_running_jobs == 0


def sleep_per_budget(config, budget):
    """50 ms per unit of budget: a job at budget 9 takes 0.45 s."""
    time.sleep(0.05 * budget)
    return config["x"] / budget


def test_asha_until_the_time_is_up_starts_no_job_that_would_end_after_it(tmp_path):
    """Real workers, a 2 s run: the master submits no job that it expects to end after the
    deadline. What it expects is what jobs at that budget took here (at least their 50 ms per
    budget unit of sleep, however loaded the machine), so every job is submitted at least its
    nominal length before the deadline. The exact deadline arithmetic is checked on a fake clock
    in test_master_unit.py::test_time_left_holds_back_a_job_that_would_end_after_the_deadline."""
    with SchedulingLag() as lag:
        result = minimize(sleep_per_budget,
                          ConfigurationSpace(seed=0, space=[Float("x", (0.0, 1.0))]),
                          min_budget=1, max_budget=9, n_workers=2, method="hyperband",
                          asha=True, seed=0, n_iterations=None, time_left_for_this_task=2.0,
                          result_directory=tmp_path)
    runs = result.get_all_runs()
    assert {r.budget for r in runs} == {1.0, 3.0, 9.0}, "promotions up to the top rung happen"
    # seconds after the run began; a job with no duration known yet at its budget may start
    # once (the first of each budget), so only jobs after it are held to the rule
    late = [(r.time_stamps["submitted"] + 0.05 * r.budget, r.budget)
            for r in sorted(runs, key=lambda r: r.time_stamps["submitted"])]
    firsts = {b: min(i for i, (_, budget) in enumerate(late) if budget == b) for b in (1, 3, 9)}
    rest = [end for i, (end, _) in enumerate(late) if i not in firsts.values()]
    # between the decision and the submission's time stamp: a few ms, plus what the machine's
    # load delayed the master's thread by (measured in this run)
    assert max(rest) <= 2.0 + 0.01 + lag.lag, \
        f"a job expected to end at {max(rest):.2f} s was started (lag {lag.lag:.3f} s)"
    assert max(r.time_stamps["submitted"] for r in runs) > 2.0 - 2 * 0.45, \
        "the workers were kept busy until close to the deadline"


def test_n_iterations_none_needs_a_time_limit(branin_cluster, tmp_path):
    master = front(HyperBand, branin_cluster, tmp_path, asha=True)
    try:
        with pytest.raises(ConfigurationError, match="time_left_for_this_task"):
            master.run(n_iterations=None)
    finally:
        master.shutdown()


def test_crashed_jobs_do_not_stall_an_iteration_and_are_reported(tmp_path, caplog):
    """Crashes never stall an iteration; at the default log level the first crash of its kind
    is a warning with its reason, and the run ends with a count."""
    caplog.set_level(logging.WARNING, logger="ultrarun.master")
    with LocalCluster(n_workers=2, worker_class=TestWorker, working_directory=tmp_path) as cluster:
        space = ConfigurationSpace(seed=0, space=[Float("x", (0.0, 1.0)),
                                                  Categorical("mode", ["crash", "fine"])])
        master = Master(cluster.run_id, RandomSampler(space, seed=0),
                        HyperBandIterGenerator(1, 9, 3), on_pyro(cluster),
                        working_directory=tmp_path)
        try:
            result = master.run(n_iterations=1, min_n_workers=1)
        finally:
            master.shutdown(shutdown_workers=True)
    runs = result.get_all_runs()
    crashed = [r for r in runs if r.status is JobStatus.CRASHED]
    assert crashed and all("crash on purpose" in r.error_logs for r in crashed)
    assert master.iterations[0].is_finished
    assert all(r.status is JobStatus.SUCCESS for r in runs if r.budget > 1.0)
    firsts = [r for r in caplog.records if "the first CRASHED ValueError" in r.getMessage()]
    assert len(firsts) == 1 and "ValueError: crash on purpose" in firsts[0].getMessage()
    assert f"{len(crashed)} of {len(runs)} jobs failed: CRASHED ValueError x{len(crashed)}" \
        in caplog.text


def test_a_second_run_in_the_same_place_is_refused_unless_resumed_or_overwritten(
        branin_cluster, tmp_path):
    """One rule for the journal and the result logs: an earlier run's files are refused with a
    message saying what to do; resume continues that run, overwrite starts over."""
    def run(**kwargs):
        master = front(HyperBand, branin_cluster, tmp_path, seed=1,
                       result_logger=json_result_logger(tmp_path / "logs"), **kwargs)
        try:
            return master.run(n_iterations=1, min_n_workers=2)
        finally:
            master.shutdown()

    first = run()
    journal = next(tmp_path.glob("*.journal.jsonl")).read_text()
    results = (tmp_path / "logs" / "results.json").read_text()
    with pytest.raises(ConfigurationError, match="resume=True, start over with overwrite=True"):
        run()
    assert next(tmp_path.glob("*.journal.jsonl")).read_text() == journal, "nothing touched"
    assert (tmp_path / "logs" / "results.json").read_text() == results
    resumed = run(resume=True)
    assert len(resumed.get_all_runs()) == len(first.get_all_runs())
    assert (tmp_path / "logs" / "results.json").read_text() == results, "nothing ran again"
    again = run(overwrite=True)
    assert len(again.get_all_runs()) == len(first.get_all_runs())
    assert len((tmp_path / "logs" / "results.json").read_text().splitlines()) == len(
        first.get_all_runs())


def test_warm_start_tells_the_optimizer_the_previous_result(branin_cluster, tmp_path):
    first = front(BOHB, branin_cluster, tmp_path / "a", seed=3, min_points_in_model=3)
    try:
        previous = first.run(n_iterations=1, min_n_workers=2)
    finally:
        first.shutdown()
    second = front(BOHB, branin_cluster, tmp_path / "b", seed=4, min_points_in_model=3,
                   previous_result=previous)
    try:
        result = second.run(n_iterations=1, min_n_workers=2)
    finally:
        second.shutdown()
    infos = [d["config_info"] for d in result.get_id2config_mapping().values()]
    assert any(info.get("model_based_pick") for info in infos), \
        "with the previous result, BOHB should sample from its model at once"
    assert set(second.incumbent_performances) >= set(first.incumbent_performances)


def test_resume_from_the_journal_reruns_only_unfinished_jobs(branin_cluster, tmp_path):
    journal = tmp_path / "journal.jsonl"
    first = front(HyperBand, branin_cluster, tmp_path, seed=5, checkpoint_file=journal)
    try:
        full = first.run(n_iterations=1, min_n_workers=2)
    finally:
        first.shutdown()
    lines = journal.read_text().splitlines()
    results = [i for i, line in enumerate(lines) if json.loads(line)["t"] == "result"]
    keep = results[5]  # the master "died" after 6 results
    journal.write_text("\n".join(lines[:keep + 1]) + "\n")
    restart = time.time()
    second = front(HyperBand, branin_cluster, tmp_path, seed=5, checkpoint_file=journal,
                   resume=True)
    try:
        resumed = second.run(n_iterations=1, min_n_workers=2)
    finally:
        second.shutdown()
    runs = resumed.get_all_runs()
    assert len(runs) == len(full.get_all_runs()) == 13
    rerun = [j for j in second.jobs if j.timestamps["submitted"] >= restart]
    assert len(rerun) == 13 - 6, "only the jobs without a journaled result run again"
    first_configs = full.get_id2config_mapping()
    replayed = {tuple(j.id) for j in second.jobs if j.timestamps["submitted"] < restart}
    assert len(replayed) >= 1
    for cid in replayed:
        assert resumed.get_id2config_mapping()[cid]["config"] == first_configs[cid]["config"]


def test_minimize_runs_a_plain_function_on_local_processes(tmp_path):
    space = ConfigurationSpace(seed=0, space=[Float("x", (0.0, 1.0))])
    result = minimize(quadratic, space, min_budget=1, max_budget=9, n_workers=2, n_iterations=2,
                      method="hyperband", seed=0, result_directory=tmp_path)
    runs = result.get_all_runs()
    assert len(runs) == 13 + 5 + 1 and all(r.status is JobStatus.SUCCESS for r in runs)
    best = result.get_incumbents_per_budget()[9.0][1]
    assert best < 0.2 + 1 / 9
    assert (tmp_path / "results.json").exists()
    with pytest.raises(ConfigurationError, match="method must be one of"):
        minimize(quadratic, space, 1, 9, method="grid")


def test_random_search_front_evaluates_at_the_largest_budget(branin_cluster, tmp_path):
    master = front(RandomSearch, branin_cluster, tmp_path, seed=0)
    try:
        result = master.run(n_iterations=2, min_n_workers=1)
    finally:
        master.shutdown()
    assert {r.budget for r in result.get_all_runs()} == {9.0}
    assert len(result.get_all_runs()) == 2 * 3


def test_master_validates_its_arguments():
    space = branin_space()
    with pytest.raises(ConfigurationError, match="job_queue_sizes"):
        HyperBand(space, run_id="x", job_queue_sizes=(2, 1))
    with pytest.raises(ConfigurationError, match="optimizer must be"):
        Master("x", object(), HyperBandIterGenerator(1, 9))


def test_resume_refuses_a_journal_written_by_another_run(branin_cluster, tmp_path):
    journal = tmp_path / "journal.jsonl"
    first = front(RandomSearch, branin_cluster, tmp_path, seed=0, checkpoint_file=journal)
    try:
        first.run(n_iterations=1, min_n_workers=1)
    finally:
        first.shutdown()
    other = front(RandomSearch, branin_cluster, tmp_path, seed=1, checkpoint_file=journal,
                  resume=True)
    try:
        with pytest.raises(ConfigurationError, match="seed: journal 0, now 1"):
            other.run(n_iterations=1, min_n_workers=1)
    finally:
        other.shutdown()


def misleading(config, budget):
    """Budget 1 ranks x backwards; from budget 3 up every budget ranks it alike."""
    return (-1.0 if budget < 3 else 1.0) * config["x"] + 1.0 / budget


@pytest.mark.parametrize("loss", [misleading, quadratic], ids=["misleading", "agreeing"])
def test_a_resumed_adaptive_run_with_several_workers_runs_the_same_brackets(tmp_path, loss):
    """Four workers run several brackets at once, each chosen on the evidence of its time; the
    resumed run replays the journal at once (so the evidence comes sooner) and still runs the
    brackets the first run ran, the journal's jobs and no other."""
    space = ConfigurationSpace(seed=0, space=[Float("x", (0.0, 1.0))])
    journal = tmp_path / "journal.jsonl"

    def run(cluster, **kwargs):
        executor = dispatcher_for(cluster.run_id, nameserver=cluster.nameserver.host,
                                  nameserver_port=cluster.nameserver_port,
                                  secret=cluster.secret, ping_interval=1)
        master = Master(cluster.run_id, RandomSampler(space, seed=2),
                        AdaptiveIterGenerator(1, 9, 3, min_pairs=3), executor, journal=journal,
                        working_directory=tmp_path, **kwargs)
        try:
            result = master.run(n_iterations=5, min_n_workers=4, min_n_workers_timeout=60)
        finally:
            master.shutdown()
        brackets = [tuple(it.budgets) for it in master.iterations]
        return brackets, sorted((r.config_id, r.budget) for r in result.get_all_runs())

    with LocalCluster(n_workers=4, eval_func=loss, working_directory=tmp_path) as cluster:
        brackets, runs = run(cluster)
        restart = time.time()
        resumed, resumed_runs = run(cluster, existing="resume")
    assert resumed == brackets and resumed_runs == runs
    assert len(set(brackets)) > 1, "with several workers a bracket starts above budget 1"
    configs = [json.loads(line) for line in journal.read_text().splitlines()]
    assert all(r["t"] != "result" or r["timestamps"]["submitted"] < restart for r in configs), \
        "the resumed run ran no job again"
