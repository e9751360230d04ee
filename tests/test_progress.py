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


def test_log_lines_a_batch_job_gets_by_default_are_written_once():
    """``minimize`` makes its own start-up lines visible, then the master all of ultrarun's:
    each master line was written twice in about half the runs (which logger got the handler
    first depended on a set's order)."""
    import subprocess
    import sys
    code = """
import logging
from ultrarun import progress
top = logging.getLogger("ultrarun")
for i in range(40):
    progress.ensure_logging(logging.getLogger(f"ultrarun.local{i}"), all_of_ultrarun=False)
    master = logging.getLogger(f"ultrarun.master{i}")
    progress.ensure_logging(master)
    master.info("line %d", i)
    for logger, handler in list(progress._installed.items()):
        logger.removeHandler(handler)
    progress._installed.clear()
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    lines = [line for line in out.stderr.splitlines() if " line " in line]
    assert out.returncode == 0, out.stderr
    assert [line.rsplit(" ", 1)[1] for line in lines] == [str(i) for i in range(40)]
