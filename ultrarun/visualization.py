"""Plots of a run, in the spirit of ``hpbandster.visualization``.

Every function takes a :class:`~ultrarun.results.Result` (or, as in HpBandSter, a list of runs)
and returns a matplotlib ``Figure`` (HpBandSter returned ``(fig, ax)``; the axes are
``fig.axes[0]``). Figures are built without pyplot, so nothing depends on a display or on global
state; ``fig.savefig(...)`` renders with Agg. An empty result gives a figure that says so.

matplotlib is imported only when a plot is made (``pip install ultrarun[plot]``).
"""
from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING, Any, Callable, Iterable

import numpy as np

from .results import Result, Run

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

RunsOrResult = Result | Iterable[Run]

FIGSIZE = (8.0, 5.0)


def losses_over_time(result: RunsOrResult, get_loss_from_run_fn: Callable[[Run], float] = lambda r: r.loss,
                     cmap: Any = "tab10") -> "Figure":
    """Loss of every finished run over wall-clock time, per budget, with each budget's running best.

    Given a ``Result``, the incumbent trajectory (HpBandSter's ``get_incumbent_trajectory``) is
    drawn in black; failed runs are marked with red crosses along the top edge.
    """
    runs = _runs(result)
    fig, ax = _figure("Losses for different budgets over time")
    if not runs:
        return _no_data(fig, ax)
    colors = _colormap(cmap)
    for i, budget in enumerate(_budgets(runs)):
        points = sorted((r.time_stamps["finished"], get_loss_from_run_fn(r))
                        for r in runs if r.budget == budget and r.loss is not None)
        if not points:
            continue
        times, losses = np.array(points).T
        ax.scatter(times, losses, color=colors(i % colors.N), label=f"budget {budget:g}", s=16)
        ax.step(times, np.minimum.accumulate(losses), where="post", color=colors(i % colors.N), alpha=0.6)
    if isinstance(result, Result):
        trajectory = result.get_incumbent_trajectory()
        if trajectory["times_finished"]:
            ax.step(trajectory["times_finished"], trajectory["losses"], where="post", color="black",
                    linewidth=2, label="incumbent")
    failed = [r.time_stamps["finished"] for r in runs if r.loss is None]
    if failed:
        ax.plot(failed, [0.98] * len(failed), "x", color="red", transform=ax.get_xaxis_transform(),
                label=f"failed ({len(failed)})")
    finite = [get_loss_from_run_fn(r) for r in runs if r.loss is not None]
    if finite and min(finite) > 0 and max(finite) / min(finite) > 100:
        ax.set_yscale("log")  # early losses would otherwise squash the incumbent to a flat line
    return _over_time(fig, ax, "loss")


def concurrent_runs_over_time(result: RunsOrResult) -> "Figure":
    """Number of runs in progress over time: how busy the workers were.

    Counted exactly from the start and finish events (HpBandSter sampled 512 points).
    """
    runs = [r for r in _runs(result) if _has(r, "started") and _has(r, "finished")]
    fig, ax = _figure("Concurrent runs over time (worker utilisation)")
    if not runs:
        return _no_data(fig, ax)
    # Finishes sort before starts at the same instant, so back-to-back jobs do not count twice.
    events = sorted([(r.time_stamps["started"], 1) for r in runs]
                    + [(r.time_stamps["finished"], -1) for r in runs], key=lambda e: (e[0], e[1]))
    times = [events[0][0]] + [t for t, _ in events]
    counts = [0] + list(itertools.accumulate(delta for _, delta in events))
    ax.step(times, counts, where="post")
    ax.set_ylim(bottom=0)
    _integer_ticks(ax)
    return _over_time(fig, ax, "number of concurrent runs", legend=False)


def finished_runs_over_time(result: RunsOrResult) -> "Figure":
    """Cumulative number of finished runs (failed ones included) over time, one line per budget."""
    runs = [r for r in _runs(result) if _has(r, "finished")]
    fig, ax = _figure("Finished runs over time")
    if not runs:
        return _no_data(fig, ax)
    for budget in _budgets(runs):
        times = sorted(r.time_stamps["finished"] for r in runs if r.budget == budget)
        ax.step([0.0] + times, np.arange(len(times) + 1), where="post",
                label=f"budget {budget:g} ({len(times)})")
    _integer_ticks(ax)
    return _over_time(fig, ax, "number of finished runs")


def correlation_across_budgets(result: RunsOrResult) -> "Figure":
    """Spearman rank correlation of the losses of the same configurations on pairs of budgets.

    A high correlation means small budgets rank configurations as the large ones do, which is what
    successive halving relies on. Cells show rho and the number of configurations n; cells with
    fewer than 3 pairs, or constant losses, are grey and say "not enough data" (rho = 0 is white).
    """
    runs = _runs(result)
    fig, ax = _figure("Rank correlation of the loss across budgets")
    budgets = _budgets(runs)
    if len(budgets) < 2:
        return _no_data(fig, ax, "needs runs on at least two budgets")
    by_config: dict[Any, dict[float, float]] = {}
    for r in runs:
        if r.loss is not None and math.isfinite(r.loss):
            by_config.setdefault(r.config_id, {})[r.budget] = r.loss
    size = len(budgets) - 1
    rhos = np.full((size, size), np.nan)
    counts = {}
    for i, j in itertools.combinations(range(len(budgets)), 2):
        pairs = [(losses[budgets[i]], losses[budgets[j]]) for losses in by_config.values()
                 if budgets[i] in losses and budgets[j] in losses]
        rhos[i, j - 1] = spearman(pairs)
        counts[i, j - 1] = len(pairs)
    image = ax.matshow(rhos, vmin=-1, vmax=1, cmap="RdBu_r")
    for (row, col), n in counts.items():
        value = rhos[row, col]
        rho = "not enough data\n" if math.isnan(value) else f"rho = {value:.2f}\n"
        if math.isnan(value):  # grey and hatched: not the white of rho = 0
            from matplotlib.patches import Rectangle

            ax.add_patch(Rectangle((col - 0.5, row - 0.5), 1, 1, facecolor="0.85",
                                   edgecolor="0.6", hatch="//", linewidth=0))
        color = "white" if abs(value) > 0.6 else "black"  # readable on the dark ends of the map
        ax.text(col, row, f"{rho}n = {n}", ha="center", va="center", fontsize="small", color=color)
    ax.xaxis.set_ticks_position("bottom")
    fig.colorbar(image, ax=ax, label="Spearman rho")
    ax.set_yticks(range(size), [f"{b:g}" for b in budgets[:-1]])
    ax.set_xticks(range(size), [f"{b:g}" for b in budgets[1:]])
    ax.set_ylabel("budget")
    ax.set_xlabel("budget")
    return fig


def spearman(pairs: list[tuple[float, float]]) -> float:
    """Spearman's rho (average ranks for ties); NaN for fewer than 3 pairs or a constant side."""
    if len(pairs) < 3:
        return math.nan
    a, b = (_ranks(np.asarray(column, dtype=float)) for column in zip(*pairs))
    if a.std() == 0 or b.std() == 0:
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties sharing their average rank (as scipy.stats.rankdata)."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    for value in np.unique(values):
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def _runs(result: RunsOrResult) -> list[Run]:
    return result.get_all_runs() if isinstance(result, Result) else list(result)


def _budgets(runs: list[Run]) -> list[float]:
    return sorted({r.budget for r in runs})


def _has(run: Run, key: str) -> bool:
    return run.time_stamps.get(key) is not None


def _figure(title: str) -> tuple["Figure", "Axes"]:
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError("ultrarun's plots need matplotlib: pip install 'ultrarun[plot]'") from exc
    fig = Figure(figsize=FIGSIZE, layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title)
    return fig, ax


def _over_time(fig: "Figure", ax: "Axes", ylabel: str, legend: bool = True) -> "Figure":
    """Common finish of the plots over wall-clock time."""
    ax.set_xlabel("wall clock time [s]")
    ax.set_ylabel(ylabel)
    if legend:
        ax.legend(loc="best", fontsize="small")
    return fig


def _integer_ticks(ax: "Axes") -> None:
    """Counts: no tick at 0.5 runs."""
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))


def _no_data(fig: "Figure", ax: "Axes", why: str = "no finished runs yet") -> "Figure":
    ax.text(0.5, 0.5, f"No data: {why}", ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()
    return fig


def _colormap(cmap: Any) -> Any:
    """A colormap from its name, or the colormap itself (HpBandSter passed one)."""
    import matplotlib

    return matplotlib.colormaps[cmap] if isinstance(cmap, str) else cmap


__all__ = ["losses_over_time", "concurrent_runs_over_time", "finished_runs_over_time",
           "correlation_across_budgets", "spearman"]
