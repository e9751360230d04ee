"""Budget schedules: the jobs they hand out, promotions, failures, barriers and ASHA."""
from __future__ import annotations

import itertools
import math
import random
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ConfigSpace import ConfigurationSpace

from ultrarun.errors import ConfigurationError, JobError
from ultrarun.iterations import (ASHA, AdaptiveIterGenerator, ASHAIterGenerator, ConfigStatus,
                                 CustomIterGenerator, budget_agreement, first_decided_stage,
                                 first_trusted_stage, promised_pairs,
                                 HyperBandIterGenerator, SuccessiveHalving,
                                 SuccessiveHalvingIterGenerator, bracket, hyperband_brackets,
                                 max_bracket_index)
from ultrarun.job import JobStatus
from ultrarun.optimizers import BOHB, RandomSearch


class CountingSampler:
    """Hands out {'x': 0}, {'x': 1}, ... so a test can choose losses by sampling order."""

    def __init__(self) -> None:
        self.counter = itertools.count()
        self.calls: list[tuple[float, int]] = []

    def __call__(self, budget: float, n: int) -> list[tuple[dict, dict]]:
        self.calls.append((budget, n))
        return [({"x": next(self.counter)}, {"model_based_pick": False}) for _ in range(n)]


def drive(iteration, loss=lambda config, budget: float(config["x"]), status=None):
    """Run an iteration like a master with unlimited workers; return the jobs in order."""
    jobs = []
    while not iteration.is_finished:
        batch = []
        while (run := iteration.get_next_run()) is not None:
            batch.append(run)
        assert batch, "an unfinished iteration must hand out work once every result is in"
        for config_id, config, budget in batch:
            jobs.append((config_id, budget))
            job_status = status(config) if status else JobStatus.SUCCESS
            value = None if job_status is not JobStatus.SUCCESS else loss(config, budget)
            iteration.register_result(config_id, budget, value, job_status)
    return jobs


# Li et al. 2018, Table 1 (R = 81, eta = 3): (n_i, r_i) per bracket s = 4..0
PAPER_TABLE_81 = [
    ([81, 27, 9, 3, 1], [1, 3, 9, 27, 81]),
    ([34, 11, 3, 1], [3, 9, 27, 81]),
    ([15, 5, 1], [9, 27, 81]),
    ([8, 2], [27, 81]),
    ([5], [81]),
]


def test_hyperband_brackets_reproduce_the_paper_table():
    got = [(list(b.num_configs), list(b.budgets)) for b in hyperband_brackets(1, 81, 3)]
    assert got == PAPER_TABLE_81


@pytest.mark.parametrize("min_budget, max_budget, eta, s_max", [
    (1, 27, 3, 3), (1, 9, 3, 2), (0.1, 10, 2, 6), (1, 81, 3, 4), (1, 1000, 10, 3),
    (0.1, 0.9, 3, 2), (1, 26.9, 3, 2), (1, 2, 2, 1), (0.5, 1, 2, 1),
])
def test_number_of_brackets_is_robust_to_float_error(min_budget, max_budget, eta, s_max):
    # math.log(1000) / math.log(10) == 2.9999999999999996 and log(27)/log(3) is 3.0000000000000004
    assert max_bracket_index(min_budget, max_budget, eta) == s_max


@pytest.mark.parametrize("min_budget, max_budget, eta", [
    (1, 27, 3), (1, 9, 3), (0.1, 10, 2), (1, 81, 3), (0.1, 0.9, 3), (3, 100, 4.5)])
def test_hyperband_jobs_match_the_formula(min_budget, max_budget, eta):
    generator = HyperBandIterGenerator(min_budget, max_budget, eta)
    s_max = generator.s_max
    for iteration in range(s_max + 2):  # one full cycle and the start of the next
        s = s_max - iteration % (s_max + 1)
        n0 = math.ceil((s_max + 1) / (s + 1) * eta ** s - 1e-9)
        expected_configs = [math.floor(n0 * eta ** -i + 1e-9) for i in range(s + 1)]
        expected_budgets = [max_budget * eta ** (i - s) for i in range(s + 1)]
        jobs = drive(generator.get_next_iteration(iteration, CountingSampler()))
        per_budget = Counter(budget for _, budget in jobs)
        assert sorted(per_budget) == pytest.approx(expected_budgets, rel=1e-9)
        assert [per_budget[b] for b in sorted(per_budget)] == expected_configs
        assert len(jobs) == generator.num_jobs(iteration) == sum(expected_configs)
        assert all(type(budget) is float for _, budget in jobs)
    assert generator.budgets[-1] == max_budget
    assert generator.budgets[0] == pytest.approx(max_budget / eta ** s_max)


def test_smallest_budget_is_min_budget_exactly_despite_float_noise():
    assert 8.1 / 3 ** 4 == 0.09999999999999999
    assert bracket(4, 4, 8.1, 3, min_budget=0.1).budgets[0] == 0.1
    assert SuccessiveHalvingIterGenerator(0.1, 8.1, 3).budgets[0] == 0.1
    assert SuccessiveHalvingIterGenerator(0.03, 0.27, 3).budgets == [0.03, 0.09, 0.27]


def test_budgets_are_plain_floats_for_integer_arguments():
    generator = SuccessiveHalvingIterGenerator(1, 27, 3)
    assert generator.budgets == [1.0, 3.0, 9.0, 27.0]
    assert all(type(b) is float for b in generator.budgets)
    assert generator.num_configs(0) == [27, 9, 3, 1]


def test_successive_halving_generator_repeats_the_largest_bracket():
    generator = SuccessiveHalvingIterGenerator(1, 9, 3)
    assert generator.num_configs(0) == generator.num_configs(5) == [9, 3, 1]
    assert generator.num_jobs(3) == 13


def test_hyperband_cycles_from_most_to_least_aggressive():
    generator = HyperBandIterGenerator(1, 27, 3)
    assert [generator.num_configs(i)[0] for i in range(6)] == [27, 12, 6, 4, 27, 12]
    assert generator.num_brackets == 4
    iteration = generator.get_next_iteration(1, CountingSampler())
    assert isinstance(iteration, SuccessiveHalving) and iteration.budgets == [3.0, 9.0, 27.0]


def test_promotion_takes_the_best_configs():
    sampler = CountingSampler()
    iteration = SuccessiveHalving(0, [9, 3, 1], [1.0, 3.0, 9.0], sampler)
    # loss = -x: the last sampled are the best at every budget
    jobs = drive(iteration, loss=lambda config, budget: -config["x"])
    at = {b: sorted(cid[2] for cid, budget in jobs if budget == b) for b in (1.0, 3.0, 9.0)}
    assert at == {1.0: list(range(9)), 3.0: [6, 7, 8], 9.0: [8]}
    best = iteration.data[(0, 0, 8)]
    assert best.losses == {1.0: -8.0, 3.0: -8.0, 9.0: -8.0}
    assert best.status is ConfigStatus.COMPLETED
    assert sampler.calls == [(1.0, 1)] * 9, "configs are sampled lazily, one at a time"


def test_ties_are_broken_by_config_id():
    iteration = SuccessiveHalving(4, [9, 3], [1.0, 3.0], CountingSampler())
    jobs = drive(iteration, loss=lambda config, budget: 1.0)
    assert [cid for cid, budget in jobs if budget == 3.0] == [(4, 0, 0), (4, 0, 1), (4, 0, 2)]


def test_config_ids_are_hpbandster_tuples():
    iteration = SuccessiveHalving(7, [3, 1], [1.0, 3.0], CountingSampler())
    ids = [iteration.get_next_run()[0] for _ in range(3)]
    assert ids == [(7, 0, 0), (7, 0, 1), (7, 0, 2)]


def test_stage_barrier_blocks_until_every_result_is_in():
    iteration = SuccessiveHalving(0, [3, 1], [1.0, 3.0], CountingSampler())
    runs = [iteration.get_next_run() for _ in range(3)]
    assert not iteration.is_blocked or iteration.num_running == 3
    assert iteration.get_next_run() is None and iteration.is_blocked
    assert iteration.num_running == 3
    for config_id, config, budget in runs[:2]:
        iteration.register_result(config_id, budget, float(config["x"]))
    assert iteration.is_blocked and iteration.get_next_run() is None
    config_id, config, budget = runs[2]
    iteration.register_result(config_id, budget, -1.0)
    assert not iteration.is_blocked
    assert iteration.get_next_run() == ((0, 0, 2), {"x": 2}, 3.0)


def test_crashed_jobs_do_not_stall_and_are_never_promoted():
    iteration = SuccessiveHalving(0, [9, 3, 1], [1.0, 3.0, 9.0], CountingSampler())
    crashing = {0, 1, 2, 3}  # the would-be best configs crash
    jobs = drive(iteration, status=lambda c: JobStatus.CRASHED if c["x"] in crashing
                 else JobStatus.SUCCESS)
    assert iteration.is_finished
    promoted = {cid[2] for cid, budget in jobs if budget == 3.0}
    assert promoted == {4, 5, 6}
    assert iteration.data[(0, 0, 0)].losses == {1.0: None}
    assert iteration.data[(0, 0, 0)].job_status == {1.0: JobStatus.CRASHED}


def test_none_loss_counts_as_failure_even_with_success_status():
    iteration = SuccessiveHalving(0, [3, 1], [1.0, 3.0], CountingSampler())
    jobs = drive(iteration, loss=lambda config, budget: None if config["x"] == 0 else config["x"])
    assert [cid for cid, budget in jobs if budget == 3.0] == [(0, 0, 1)]


def test_iteration_with_only_failures_finishes_early():
    iteration = SuccessiveHalving(0, [3, 1], [1.0, 3.0], CountingSampler())
    jobs = drive(iteration, status=lambda c: JobStatus.TIMEOUT)
    assert iteration.is_finished and len(jobs) == 3
    assert all(d.status is ConfigStatus.COMPLETED for d in iteration.data.values())


def test_fewer_successes_than_slots_promotes_only_successes():
    iteration = SuccessiveHalving(0, [9, 3, 1], [1.0, 3.0, 9.0], CountingSampler())
    jobs = drive(iteration, status=lambda c: JobStatus.SUCCESS if c["x"] in (3, 8)
                 else JobStatus.LOST)
    assert [cid[2] for cid, budget in jobs if budget == 3.0] == [3, 8]
    assert [cid[2] for cid, budget in jobs if budget == 9.0] == [3]


def test_wrong_results_are_refused():
    iteration = SuccessiveHalving(0, [3, 1], [1.0, 3.0], CountingSampler())
    config_id, config, budget = iteration.get_next_run()
    with pytest.raises(JobError, match="not part of iteration"):
        iteration.register_result((9, 9, 9), budget, 1.0)
    with pytest.raises(JobError, match="unexpected result"):
        iteration.register_result(config_id, 3.0, 1.0)
    with pytest.raises(JobError, match="final status"):
        iteration.register_result(config_id, budget, 1.0, JobStatus.RUNNING)
    iteration.register_result(config_id, budget, 1.0)
    with pytest.raises(JobError, match="unexpected result"):
        iteration.register_result(config_id, budget, 1.0)


def test_custom_generator_runs_the_given_schedule():
    generator = CustomIterGenerator(budgets=[2, 5, 10], num_configs=[6, 2, 1])
    assert generator.budgets == [2.0, 5.0, 10.0] and generator.num_jobs(0) == 9
    jobs = drive(generator.get_next_iteration(3, CountingSampler()))
    assert Counter(b for _, b in jobs) == {2.0: 6, 5.0: 2, 10.0: 1}
    assert jobs[0][0] == (3, 0, 0)


@pytest.mark.parametrize("make, message", [
    (lambda: HyperBandIterGenerator(1, 27, eta=1), r"eta is 1; it must be a number >= 2"),
    (lambda: SuccessiveHalvingIterGenerator(27, 1), r"0 < min_budget < max_budget"),
    (lambda: HyperBandIterGenerator(0, 27), r"0 < min_budget < max_budget"),
    (lambda: ASHAIterGenerator(1, float("inf")), r"max_budget is inf; it must be a finite"),
    (lambda: CustomIterGenerator([1, 3], [3, 9]), r"must not increase"),
    (lambda: CustomIterGenerator([1, 3], [3]), r"same number"),
    (lambda: CustomIterGenerator([3, 1], [3, 1]), r"strictly increase"),
    (lambda: CustomIterGenerator([1, 3], [3, 0]), r"positive integer number of configurations"),
    (lambda: ASHAIterGenerator(1, 9, max_configs=0), r"max_configs is 0; it must be a positive"),
    (lambda: SuccessiveHalving(0, [1], [1.0], sampler="nope"), r"sampler\(budget, n\)"),
])
def test_invalid_arguments_say_what_is_allowed(make, message):
    with pytest.raises(ConfigurationError, match=message):
        make()


# -- ASHA --------------------------------------------------------------------------------------
def test_asha_promotes_as_soon_as_a_config_is_in_the_top_third():
    iteration = ASHAIterGenerator(1, 9, eta=3).get_next_iteration(0, CountingSampler())
    assert iteration.budgets == [1.0, 3.0, 9.0]
    runs = [iteration.get_next_run() for _ in range(3)]
    assert [r[2] for r in runs] == [1.0, 1.0, 1.0]
    iteration.register_result(runs[0][0], 1.0, 5.0)
    iteration.register_result(runs[1][0], 1.0, 2.0)
    assert iteration.get_next_run()[2] == 1.0, "2 results: top 1/3 is empty, so sample anew"
    iteration.register_result(runs[2][0], 1.0, 9.0)
    config_id, config, budget = iteration.get_next_run()
    assert (config_id, budget) == (runs[1][0], 3.0), "the best of 3 goes up at once"
    assert iteration.get_next_run()[2] == 1.0, "already promoted: not promoted twice"


def test_asha_checks_the_highest_rung_first():
    iteration = ASHA(0, [1.0, 3.0, 9.0], CountingSampler(), eta=3)
    low = [iteration.get_next_run() for _ in range(9)]
    for i, (cid, _, budget) in enumerate(low):
        iteration.register_result(cid, budget, float(i))
    promoted = [iteration.get_next_run() for _ in range(3)]
    assert [(cid[2], budget) for cid, _, budget in promoted] == [(0, 3.0), (1, 3.0), (2, 3.0)]
    for cid, _, budget in promoted:
        iteration.register_result(cid, budget, float(cid[2]))
    # rung 1 now has 3 results, so its best moves up before anything else happens at rung 0
    assert iteration.get_next_run()[0::2] == ((0, 0, 0), 9.0)


def _paper_promotion(results, promoted, eta):
    """ASHA's rule from scratch (Li et al. 2020, Algorithm 2): the best configuration not yet
    promoted among the top floor(n / eta) of a rung's n results, highest rung first."""
    for rung in range(len(results) - 2, -1, -1):
        ranked = sorted((loss, cid) for cid, loss in results[rung].items())
        top = ranked[:math.floor(len(ranked) / eta)]
        waiting = [cid for loss, cid in top if math.isfinite(loss) and cid not in promoted[rung]]
        if waiting:
            return waiting[0], rung
    return None


@pytest.mark.parametrize("eta", [2, 3, 4])
def test_asha_promotes_exactly_by_the_papers_rule(eta):
    """Ties (losses 0-4) and failures included, results in random order, 8 workers."""
    budgets = [1.0, 3.0, 9.0, 27.0]
    for seed in range(20):
        rng = random.Random(seed)
        iteration = ASHA(0, budgets, CountingSampler(), eta=eta)
        results = [{} for _ in budgets]
        promoted = [set() for _ in budgets]
        running = []
        for _ in range(300):
            expected = _paper_promotion(results, promoted, eta)
            config_id, _, budget = iteration.get_next_run()
            if expected is None:
                assert budget == budgets[0]
            else:
                assert (config_id, budget) == (expected[0], budgets[expected[1] + 1])
                promoted[expected[1]].add(config_id)
            running.append((config_id, budget))
            if len(running) >= 8:
                config_id, budget = running.pop(rng.randrange(len(running)))
                loss = rng.choice([None, float(rng.randrange(5)), rng.random()])
                iteration.register_result(config_id, budget, loss, JobStatus.SUCCESS
                                          if loss is not None else JobStatus.CRASHED)
                results[budgets.index(budget)][config_id] = math.inf if loss is None else loss
        assert sum(map(len, promoted)) > 20


def test_asha_never_blocks_while_it_may_grow():
    rng = random.Random(0)
    iteration = ASHA(0, [1.0, 3.0, 9.0, 27.0], CountingSampler(), eta=3)
    running = [iteration.get_next_run() for _ in range(8)]  # 8 busy workers
    top = 0
    for _ in range(400):
        finished = running.pop(rng.randrange(len(running)))
        iteration.register_result(finished[0], finished[2], rng.random())
        run = iteration.get_next_run()
        assert run is not None and not iteration.is_blocked
        running.append(run)
        top += run[2] == 27.0
    assert top > 0, "configs reach the top rung while new ones keep being sampled"


def test_asha_with_a_config_limit_finishes_and_never_promotes_failures():
    iteration = ASHAIterGenerator(1, 9, 3, max_configs=9).get_next_iteration(2, CountingSampler())
    jobs = drive(iteration, status=lambda c: JobStatus.CRASHED if c["x"] == 0
                 else JobStatus.SUCCESS)
    assert iteration.is_finished and iteration.get_next_run() is None
    assert Counter(b for _, b in jobs) == {1.0: 9, 3.0: 3, 9.0: 1}
    assert (2, 0, 0) not in {cid for cid, b in jobs if b > 1.0}
    assert all(cid[:2] == (2, 0) for cid, _ in jobs)


def test_asha_blocks_at_its_limit_until_running_jobs_report():
    iteration = ASHA(0, [1.0, 3.0], CountingSampler(), eta=3, max_configs=2)
    runs = [iteration.get_next_run(), iteration.get_next_run()]
    assert iteration.get_next_run() is None and iteration.is_blocked
    for cid, _, budget in runs:
        iteration.register_result(cid, budget, 1.0)
    assert iteration.is_finished  # 2 results: floor(2/3) = 0 promotions


def test_runs_that_do_not_fit_the_time_left_are_held_back():
    iteration = ASHA(0, [1.0, 3.0, 9.0], CountingSampler(), eta=3)
    low = [iteration.get_next_run() for _ in range(9)]
    for i, (cid, _, budget) in enumerate(low):
        iteration.register_result(cid, budget, float(i))
    only_small = lambda budget: budget <= 1.0  # noqa: E731
    assert iteration.get_next_run(only_small)[2] == 1.0, "no promotion to 3: sample at rung 0"
    assert iteration.get_next_run(lambda budget: False) is None
    assert not iteration.is_finished, "nothing fits now, but the iteration is not over"
    assert iteration.get_next_run()[0::2] == ((0, 0, 0), 3.0), "the held-back promotion is next"

    bracket = SuccessiveHalving(1, [3, 1], [1.0, 3.0], CountingSampler())
    assert bracket.get_next_run(lambda budget: budget > 1.0) is None
    assert bracket.get_next_run(lambda budget: True)[2] == 1.0


def test_asha_job_limit():
    generator = ASHAIterGenerator(1, 9, 3, max_jobs=20)
    assert generator.num_jobs(0) == 20
    assert len(drive(generator.get_next_iteration(0, CountingSampler()))) == 20


def test_an_optimizer_is_a_sampler():
    space = ConfigurationSpace({"lr": (1e-4, 1.0)})
    optimizer = RandomSearch(space, seed=1)
    iteration = HyperBandIterGenerator(1, 9, 3).get_next_iteration(0, optimizer.ask)

    def tell(config, budget):
        loss = abs(config["lr"] - 0.1)
        optimizer.tell(config, loss, budget)
        return loss
    jobs = drive(iteration, loss=tell)
    assert len(jobs) == 13 and optimizer.num_pending == 0
    assert all(d.config_info == {"model_based_pick": False} for d in iteration.data.values())


def test_asha_with_bohb_uses_the_model():
    space = ConfigurationSpace({"lr": (1e-4, 1.0), "wd": (1e-4, 1.0)})
    optimizer = BOHB(space, seed=0)
    iteration = ASHAIterGenerator(1, 9, 3, max_configs=40).get_next_iteration(0, optimizer.ask)

    def tell(config, budget):
        loss = (config["lr"] - 0.1) ** 2 + config["wd"] / budget
        optimizer.mark_running(config, budget)  # a no-op for configs it asked for itself
        optimizer.tell(config, loss, budget)
        return loss
    running = []
    while not iteration.is_finished:  # 4 workers; the oldest job finishes first
        while len(running) < 4 and (run := iteration.get_next_run()) is not None:
            running.append(run)
        config_id, config, budget = running.pop(0)
        iteration.register_result(config_id, budget, tell(config, budget))
    assert optimizer.num_pending == 0
    picks = [d.config_info["model_based_pick"] for d in iteration.data.values()]
    assert len(picks) == 40 and sum(picks) >= 10


# -- adaptive successive halving: start higher where small budgets mislead ------------------
def agreeing(config, budget):
    """Every budget ranks configurations alike."""
    return float(config["x"]) + 1.0 / budget


def misleading_below(trusted):
    """Below ``trusted`` the ranking is reversed (a large learning rate wins early and overfits
    late); from ``trusted`` up, every budget ranks alike."""
    def loss(config, budget):
        x = config["x"]
        return float(-x if budget < trusted else x) + 1.0 / budget
    return loss


def run_adaptive(loss, iterations, **kwargs):
    generator = AdaptiveIterGenerator(1, 27, 3, **kwargs)
    sampler = CountingSampler()
    starts = []
    for i in range(iterations):
        iteration = generator.get_next_iteration(i, sampler)
        starts.append(iteration.budgets[0])
        drive(iteration, loss)
    return generator, starts


def test_adaptive_keeps_successive_halving_while_budgets_agree():
    generator, starts = run_adaptive(agreeing, 6)
    assert starts == [1.0] * 6
    assert all(rho == pytest.approx(1.0) for _, _, rho, _ in generator.agreement())
    assert generator.bracket(6) == SuccessiveHalvingIterGenerator(1, 27, 3).bracket(6)


@pytest.mark.parametrize("trusted, start", [(3.0, 3.0), (9.0, 9.0), (27.0, 27.0)])
def test_adaptive_starts_above_the_budgets_that_rank_unlike_the_next(trusted, start):
    """The first iterations run successive halving from budget 1; once enough configurations
    show a budget ranking them unlike the next budget, new iterations start above it, as
    Hyperband's bracket for that budget; the iterations already made keep their bracket."""
    generator, starts = run_adaptive(misleading_below(trusted), 12)
    assert starts[0] == 1.0 and starts[-1] == start, starts
    assert starts == sorted(starts)  # never back to a budget found misleading
    first = starts.index(start)
    assert generator.bracket(first) == hyperband_brackets(1, 27, 3)[[1.0, 3.0, 9.0, 27.0]
                                                                    .index(start)]
    assert generator.bracket(0).budgets[0] == 1.0
    assert generator.num_jobs(12) == generator.bracket(first).num_jobs


def test_adaptive_learns_from_iterations_still_running():
    """Many workers run several brackets at once: the pairs of a bracket not finished yet
    count, so the next bracket already starts higher."""
    generator, sampler = AdaptiveIterGenerator(1, 27, 3), CountingSampler()
    loss = misleading_below(3.0)
    first = generator.get_next_iteration(0, sampler)
    for _ in range(2):  # budgets 1 and 3 done, 9 and 27 still to run
        batch = []
        while (run := first.get_next_run()) is not None:
            batch.append(run)
        for config_id, config, budget in batch:
            first.register_result(config_id, budget, loss(config, budget))
    assert not first.is_finished and generator.agreement()[0][3] == 9
    second = generator.get_next_iteration(1, sampler)
    assert second.get_next_run()[2] == 3.0 and second.budgets[0] == 3.0


def hand_out(iteration, n=math.inf):
    """Start up to ``n`` runs of ``iteration`` (as free workers would); return them."""
    runs = []
    while len(runs) < n and (run := iteration.get_next_run()) is not None:
        runs.append(run)
    return runs


@pytest.mark.parametrize("loss", [agreeing, misleading_below(3.0)], ids=["agree", "mislead"])
def test_adaptive_opens_no_bracket_on_a_budget_whose_verdict_is_in_flight(loss):
    """With several workers, a bracket that starts while the first one's promotions (the pairs
    that will judge budget 1) are in flight starts one budget higher; once the verdict is in,
    brackets start where it says: at budget 1 again where the budgets agree."""
    generator, sampler = AdaptiveIterGenerator(1, 27, 3), CountingSampler()
    first = generator.get_next_iteration(0, sampler)
    runs = hand_out(first)  # 27 jobs at budget 1 running, nothing in
    assert first.is_blocked and {budget for _, _, budget in runs} == {1.0}
    assert generator.bracket(1).budgets[0] == 3.0  # 9 pairs promised, 0 in
    second = generator.get_next_iteration(1, sampler)
    assert hand_out(second, 1)[0][2] == 3.0 and second.num_configs == [12, 4, 1]
    for config_id, config, budget in runs:
        first.register_result(config_id, budget, loss(config, budget))
    promoted = hand_out(first)
    assert generator.bracket(2).budgets[0] == 3.0  # still in flight
    for config_id, config, budget in promoted:
        first.register_result(config_id, budget, loss(config, budget))
    assert generator.agreement()[0][3] == 9
    verdict = 1.0 if loss is agreeing else 3.0
    third = generator.get_next_iteration(2, sampler)
    assert hand_out(third, 1)[0][2] == verdict


def test_one_worker_never_hops():
    """Run one after the other (one worker), brackets never wait for a verdict: where the
    budgets agree every one is successive halving from budget 1."""
    _, starts = run_adaptive(agreeing, 4)
    assert starts == [1.0] * 4


def test_promised_pairs_and_first_decided_stage():
    """The pairs a started bracket will add are its configurations at the next budget not in
    yet; a stage is skipped while its verdict waits for them."""
    iteration = SuccessiveHalving(0, [9, 3, 1], [1.0, 3.0, 9.0], CountingSampler())
    assert promised_pairs([iteration], [1.0, 3.0, 9.0]) == [0, 0]  # not started
    runs = hand_out(iteration)
    assert promised_pairs([iteration], [1.0, 3.0, 9.0]) == [3, 1]
    for config_id, config, budget in runs:
        iteration.register_result(config_id, budget, float(config["x"]))
    config_id, config, budget = hand_out(iteration)[0]
    iteration.register_result(config_id, budget, 1.0)
    assert promised_pairs([iteration], [1.0, 3.0, 9.0]) == [2, 1]
    assert promised_pairs([iteration], [0.5, 1.0, 3.0, 9.0]) == [0, 2, 1]
    agreement = [(1.0, 3.0, 0.9, 1), (3.0, 9.0, math.nan, 0)]
    assert first_decided_stage(0, agreement, [2, 1], min_pairs=3) == 1
    assert first_decided_stage(0, agreement, [2, 1], min_pairs=4) == 0
    assert first_decided_stage(0, agreement, [2, 2], min_pairs=2) == 2
    assert first_decided_stage(1, agreement, [9, 0], min_pairs=3) == 1
    assert first_decided_stage(2, agreement, [9, 9]) == 2
    assert first_decided_stage(0, [(1.0, 3.0, 0.9, 8)], [5]) == 0  # decided: 8 in


def test_first_trusted_stage_needs_enough_pairs_and_a_low_rho():
    nan = math.nan
    assert first_trusted_stage([]) == 0
    assert first_trusted_stage([(1, 3, -0.9, 7), (3, 9, 1.0, 30), (9, 27, 1.0, 9)]) == 0
    assert first_trusted_stage([(1, 3, -0.9, 8), (3, 9, 1.0, 30), (9, 27, 1.0, 9)]) == 1
    assert first_trusted_stage([(1, 3, 0.2, 50), (3, 9, 0.9, 30), (9, 27, 0.1, 9)]) == 3
    assert first_trusted_stage([(1, 3, nan, 50), (3, 9, 0.49, 30)], threshold=0.5) == 2
    assert first_trusted_stage([(1, 3, 0.49, 50)], threshold=0.4, min_pairs=3) == 0


def test_budget_agreement_pairs_losses_of_the_same_configurations():
    """Failed runs are left out; rho is NaN where fewer than 3 configurations ran at both."""
    iteration = SuccessiveHalving(0, [9, 3, 1], [1.0, 3.0, 9.0], CountingSampler())
    drive(iteration, lambda c, b: None if c["x"] == 0 else float(c["x"] * b),
          status=lambda c: JobStatus.CRASHED if c["x"] == 0 else JobStatus.SUCCESS)
    (low, high, rho, n), (_, _, rho2, n2) = budget_agreement([iteration], [1.0, 3.0, 9.0])
    assert (low, high, n, n2) == (1.0, 3.0, 3, 1) and rho == pytest.approx(1.0)
    assert math.isnan(rho2)


@pytest.mark.parametrize("kwargs, message", [
    ({"threshold": 1.5}, r"threshold is 1.5; it must be a rank correlation between -1 and 1"),
    ({"min_pairs": 2}, r"min_pairs is 2; it must be an integer >= 3"),
])
def test_adaptive_arguments_say_what_is_allowed(kwargs, message):
    with pytest.raises(ConfigurationError, match=message):
        AdaptiveIterGenerator(1, 27, 3, **kwargs)


def test_adaptive_records_its_bracket_and_a_resumed_iteration_takes_the_recorded_one():
    """The first configuration's config_info says where its bracket starts; an iteration that
    takes the journal's configurations (``decided``) takes that bracket, whatever the evidence
    says now; a budget that is not one of the run's is refused with a clear error."""
    generator, sampler = AdaptiveIterGenerator(1, 27, 3), CountingSampler()
    first = generator.get_next_iteration(0, sampler)
    config_id, _, _ = hand_out(first, 1)[0]
    assert first.data[config_id].config_info == {"model_based_pick": False, "bracket_start": 1.0}
    resumed = AdaptiveIterGenerator(1, 27, 3).get_next_iteration(0, sampler)
    resumed.decided = {(0, 0, 0): ({"x": 7}, {"bracket_start": 9.0})}
    assert hand_out(resumed, 1) == [((0, 0, 0), {"x": 7}, 9.0)]
    assert resumed.num_configs == [6, 2]
    for bad in (2.0, "9", None, True):
        broken = AdaptiveIterGenerator(1, 27, 3).get_next_iteration(0, sampler)
        broken.decided = {(0, 0, 0): ({"x": 7}, {"bracket_start": bad})}
        with pytest.raises(ConfigurationError, match=r"started at budget .* not one of this run's"):
            broken.get_next_run()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(workers=st.integers(1, 12), seed=st.integers(0, 2**32 - 1),
       order=st.lists(st.integers(0, 11), min_size=300, max_size=300),
       fail=st.floats(0.0, 0.3))
def test_adaptive_with_any_number_of_workers_and_any_order_of_results(workers, seed, order,
                                                                       fail):
    """Workers take runs while they can (a new bracket when every open one waits), results
    come back in any order, some fail: every bracket starts where the evidence and the pairs
    in flight say at the moment it samples (one worker: where the evidence alone says, it never
    hops), records it, runs a Hyperband bracket to its end, and nothing is lost."""
    generator, rng = AdaptiveIterGenerator(1, 27, 3, min_pairs=4), random.Random(seed)
    losses: dict = {}
    brackets: list = []

    def sampler(budget, n):
        if not brackets[-1].data:  # the newest bracket's first configuration
            agreement = generator.agreement()
            trusted = first_trusted_stage(agreement, min_pairs=4)
            promised = promised_pairs(brackets, generator.budgets)
            expected = first_decided_stage(trusted, agreement, promised, min_pairs=4)
            assert budget == generator.budgets[expected]
            assert workers > 1 or expected == trusted
        return [({"x": rng.random()}, {})]

    running, handed = [], 0
    while True:
        while len(running) < workers:
            run = next((r for it in brackets if not it.is_finished
                        if (r := it.get_next_run()) is not None), None)
            if run is None:
                if len(brackets) == 6:
                    break
                brackets.append(generator.get_next_iteration(len(brackets), sampler))
                run = brackets[-1].get_next_run()
            running.append(run)
            handed += 1
        if not running:
            break
        config_id, config, budget = running.pop(order[handed % len(order)] % len(running))
        loss = losses.setdefault((config["x"], budget), rng.random())
        status = JobStatus.CRASHED if rng.random() < fail else JobStatus.SUCCESS
        brackets[config_id[0]].register_result(config_id, budget, loss, status)
    assert all(it.is_finished and it.num_running == 0 for it in brackets)
    for i, it in enumerate(brackets):
        assert generator.bracket(i) == hyperband_brackets(1, 27, 3)[generator.budgets.index(
            it.budgets[0])]
        assert {d.config_info["bracket_start"] for d in it.data.values()} == {it.budgets[0]}
