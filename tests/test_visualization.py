"""The four plots: right artists for known data, and no exception on awkward results."""
from __future__ import annotations

import io

import numpy as np
import pytest
import scipy.stats

from ultrarun.job import JobStatus
from ultrarun.results import Result, Run
from ultrarun.visualization import (concurrent_runs_over_time, correlation_across_budgets,
                                    finished_runs_over_time, losses_over_time, spearman)

PLOTS = [losses_over_time, concurrent_runs_over_time, finished_runs_over_time, correlation_across_budgets]


def run(config_id, budget, loss, started, finished, status=None):
    return Run(config_id, budget, loss, {}, {"submitted": started, "started": started, "finished": finished},
               None if loss is not None else "Traceback", status)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.fixture
def result():
    """Three budgets; losses on budget 3 and 9 rank the configs exactly as budget 1 does."""
    runs = [run((0, 0, i), 1, 0.1 * (i + 1), i, i + 1) for i in range(4)]
    runs += [run((0, 0, i), 3, 0.05 * (i + 1), 4 + i, 6 + i) for i in range(3)]
    runs += [run((0, 0, i), 9, 0.01 * (i + 1), 10 + i, 13 + i) for i in range(3)]
    runs += [run((0, 0, 4), 1, None, 0, 2), run((0, 0, 5), 9, None, 12, 20, JobStatus.TIMEOUT)]
    return Result.from_runs(runs)


def texts(fig):
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_losses_over_time_draws_budgets_incumbent_and_failures(result):
    ax = losses_over_time(result)[1]
    assert len(ax.collections) == 3  # one scatter per budget
    assert [len(c.get_offsets()) for c in ax.collections] == [4, 3, 3]
    labels = [line.get_label() for line in ax.lines]
    assert labels.count("incumbent") == 1 and "failed (2)" in labels
    assert len(ax.lines) == 3 + 2  # a running-best step per budget, the incumbent, the failures


def test_losses_spanning_decades_get_a_log_axis(result):
    assert losses_over_time(result)[1].get_yscale() == "linear"  # 0.01..0.4: within 2 decades
    wide = Result.from_runs([run((0, 0, i), 1, 10.0 ** i, i, i + 1) for i in range(-1, 3)])
    assert losses_over_time(wide)[1].get_yscale() == "log"


def test_concurrent_runs_counts_overlaps_exactly():
    runs = [run((0, 0, 0), 1, 0.1, 0, 2), run((0, 0, 1), 1, 0.2, 1, 3), run((0, 0, 2), 1, None, 2, 4)]
    (line,) = concurrent_runs_over_time(runs)[1].lines
    counts = list(line.get_ydata())
    assert max(counts) == 2 and counts[-1] == 0  # the run starting at 2 replaces the one ending at 2


def test_finished_runs_one_line_per_budget(result):
    lines = finished_runs_over_time(result)[1].lines
    assert [line.get_ydata()[-1] for line in lines] == [5, 3, 4]  # failed runs count as finished


def test_correlation_matrix(result):
    fig, _ = correlation_across_budgets(result)
    matrix = fig.axes[0].images[0].get_array()
    assert matrix.shape == (2, 2)
    assert matrix[0, 0] == pytest.approx(1) and matrix[0, 1] == pytest.approx(1) and matrix[1, 1] == pytest.approx(1)
    assert np.ma.is_masked(matrix[1, 0]) or np.isnan(matrix[1, 0])
    assert "rho = 1.00\nn = 3" in texts(fig)


def test_single_budget():
    single = Result.from_runs([run((0, 0, i), 1, i, i, i + 1) for i in range(3)])
    assert len(losses_over_time(single)[1].collections) == 1
    assert any("No data" in t for t in texts(correlation_across_budgets(single)[0]))


@pytest.mark.parametrize("plot", PLOTS)
def test_empty_result_gives_a_figure_that_says_so(plot):
    fig, _ = plot(Result([{}]))
    assert any("No data" in t for t in texts(fig))
    fig.savefig(io.BytesIO(), format="png")


@pytest.mark.parametrize("plot", PLOTS)
def test_only_crashed_runs_and_plain_run_lists(plot):
    crashed = [run((0, 0, 0), 1, None, 0, 1), run((0, 0, 1), 3, None, 1, 2)]
    buffer = io.BytesIO()
    plot(crashed)[0].savefig(buffer, format="png")
    assert buffer.getvalue().startswith(b"\x89PNG")


def test_spearman_matches_scipy_with_ties():
    pairs = [(1, 2), (2, 2), (2, 5), (4, 1), (7, 9), (7, 3)]
    assert spearman(pairs) == pytest.approx(scipy.stats.spearmanr(pairs).statistic)
    assert np.isnan(spearman(pairs[:2])) and np.isnan(spearman([(1, 1), (2, 1), (3, 1)]))
