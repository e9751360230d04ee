"""The master's progress: total and ETA when the schedule fixes them, the best loss labelled with
its budget, a bar on a terminal and log lines elsewhere."""
from __future__ import annotations

import io
import logging

import runner_helpers_targets as targets
from ultrarun.benchmarks import branin_space
from ultrarun.frontends import HyperBand
from ultrarun.iterations import HyperBandIterGenerator
from ultrarun.progress import Progress
from ultrarun.runners import TargetFunctionRunner, ThreadRunner


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_bar_has_a_total_an_eta_and_the_best_loss_of_the_largest_budget():
    clock, out = Clock(), io.StringIO()
    progress = Progress("exp1", total=10, bar=True, file=out, clock=clock)
    best = {}
    for i, (budget, loss) in enumerate([(1.0, 0.2), (1.0, 0.1), (3.0, 0.5), (3.0, 0.4)]):
        clock.now += 2.0
        best[budget] = min(loss, best.get(budget, loss))
        progress.update(running=1, failed=0, best_per_budget=best)
    progress.close()
    shown = out.getvalue().replace("\r", "\n").splitlines()[-1]
    assert "4/10" in shown
    assert "best@3=0.4" in shown and "best=" not in shown, "the budget-1 loss 0.1 is not shown"
    # 4 jobs in 8 s: 6 more take 12 s
    assert progress.line() == "run exp1: 4/10 jobs, 1 running, 0 failed, best 0.4 on budget 3, ETA 12s"


def test_without_a_terminal_it_logs_a_line_every_interval_and_at_the_end(caplog):
    clock = Clock()
    progress = Progress("exp1", total=None, time_left=100.0, bar=False, interval=30.0, clock=clock)
    with caplog.at_level(logging.INFO, logger="ultrarun.progress"):
        for _ in range(7):
            clock.now += 10.0
            progress.update(running=2, failed=1, best_per_budget={27.0: 0.25, 1.0: 0.01})
        progress.close()
        progress.close()
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "run exp1: 3 jobs, 2 running, 1 failed, best 0.25 on budget 27, ETA 1m10s",  # at 30 s
        "run exp1: 6 jobs, 2 running, 1 failed, best 0.25 on budget 27, ETA 40s",  # at 60 s
        "run exp1: 7 jobs, 2 running, 1 failed, best 0.25 on budget 27; took 1m10s",
    ]


def test_a_master_not_on_a_terminal_logs_its_progress_with_the_total(tmp_path, caplog):
    runner = ThreadRunner(TargetFunctionRunner(targets.branin_target), n_workers=2)
    master = HyperBand(branin_space(), run_id="prog", min_budget=1, max_budget=9, seed=0,
                       executor=runner, working_directory=tmp_path)
    try:
        with caplog.at_level(logging.INFO, logger="ultrarun.master"):
            master.run(n_iterations=2)
    finally:
        master.shutdown(shutdown_workers=True)
    total = HyperBandIterGenerator(1, 9).num_jobs(0) + HyperBandIterGenerator(1, 9).num_jobs(1)
    last = [r.getMessage() for r in caplog.records if r.getMessage().startswith("run prog:")][-1]
    assert last.startswith(f"run prog: {total}/{total} jobs, 0 running, 0 failed, best ")
    assert " on budget 9; took " in last
