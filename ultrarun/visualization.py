"""Plots of a run, in the spirit of ``hpbandster.visualization``: each takes a
``ultrarun.results.Result`` (or a list of runs) and returns ``(fig, ax)`` as HpBandSter's
do. What each shows, and how to show, save and close the figures: docs/report.md.
"""
from __future__ import annotations

import hashlib
import itertools
import math
from typing import TYPE_CHECKING, Any, Callable, Iterable

import numpy as np

from .results import Result, Run

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

RunsOrResult = Result | Iterable[Run]
FigAx = tuple["Figure", Any]

FIGSIZE = (8.0, 5.0)


def losses_over_time(result: RunsOrResult, get_loss_from_run_fn: Callable[[Run], float] = lambda r: r.loss,
                     cmap: Any = "tab10", show: bool = False) -> "FigAx":
    """Loss of every finished run over wall-clock time, per budget, with each budget's running best.

    Given a ``Result``, the incumbent trajectory (HpBandSter's ``get_incumbent_trajectory``) is
    drawn in black; failed runs are marked with red crosses along the top edge.

    Args:
        result (Result | list[Run]): A result, or (as HpBandSter's) a list of runs.
        get_loss_from_run_fn (Callable[[Run], float]): The value drawn for a run.
        cmap (Any): A matplotlib colormap (name) for the budgets.
        show (bool): Call ``plt.show()``.

    Returns:
        tuple: ``(fig, ax)``.
    """
    runs = _runs(result)
    fig, ax = _figure("Losses for different budgets over time")
    if not runs:
        return _no_data(fig, ax, show=show)
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
    return _over_time(fig, ax, "loss", show=show)


def concurrent_runs_over_time(result: RunsOrResult, num_points: int | None = None,
                              show: bool = False) -> "FigAx":
    """Number of runs in progress over time: how busy the workers were.

    Counted exactly from the start and finish events.

    Args:
        result (Result | list[Run]): A result, or (as HpBandSter's) a list of runs.
        num_points (int | None): Accepted for HpBandSter's signature (it sampled that many
            points) and not needed.
        show (bool): Call ``plt.show()``.

    Returns:
        tuple: ``(fig, ax)``.
    """
    runs = [r for r in _runs(result) if _has(r, "started") and _has(r, "finished")]
    fig, ax = _figure("Concurrent runs over time (worker utilisation)")
    if not runs:
        return _no_data(fig, ax, show=show)
    # Finishes sort before starts at the same instant, so back-to-back jobs do not count twice.
    events = sorted([(r.time_stamps["started"], 1) for r in runs]
                    + [(r.time_stamps["finished"], -1) for r in runs], key=lambda e: (e[0], e[1]))
    times = [events[0][0]] + [t for t, _ in events]
    counts = [0] + list(itertools.accumulate(delta for _, delta in events))
    ax.step(times, counts, where="post")
    ax.set_ylim(bottom=0)
    _integer_ticks(ax)
    return _over_time(fig, ax, "number of concurrent runs", legend=False, show=show)


def finished_runs_over_time(result: RunsOrResult, show: bool = False) -> "FigAx":
    """Cumulative number of finished runs (failed ones included) over time, one line per budget.

    Args:
        result (Result | list[Run]): A result, or (as HpBandSter's) a list of runs.
        show (bool): Call ``plt.show()``.

    Returns:
        tuple: ``(fig, ax)``.
    """
    runs = [r for r in _runs(result) if _has(r, "finished")]
    fig, ax = _figure("Finished runs over time")
    if not runs:
        return _no_data(fig, ax, show=show)
    for budget in _budgets(runs):
        times = sorted(r.time_stamps["finished"] for r in runs if r.budget == budget)
        ax.step([0.0] + times, np.arange(len(times) + 1), where="post",
                label=f"budget {budget:g} ({len(times)})")
    _integer_ticks(ax)
    return _over_time(fig, ax, "number of finished runs", show=show)


def correlation_across_budgets(result: RunsOrResult, show: bool = False) -> "FigAx":
    """Spearman rank correlation of the losses of the same configurations on pairs of budgets.

    Each cell shows rho and the number n of configurations on both budgets; grey cells have not
    enough data. How to read it: docs/report.md.

    Args:
        result (Result | list[Run]): A result, or (as HpBandSter's) a list of runs.
        show (bool): Call ``plt.show()``.

    Returns:
        tuple: ``(fig, ax)``.
    """
    runs = _runs(result)
    fig, ax = _figure("Rank correlation of the loss across budgets")
    budgets = _budgets(runs)
    if len(budgets) < 2:
        return _no_data(fig, ax, "needs runs on at least two budgets", show=show)
    size = len(budgets) - 1
    cells = [(budgets.index(low), budgets.index(high) - 1, rho, n) for low, high, rho, n
             in _rank_correlations(runs, itertools.combinations(budgets, 2))]
    rhos = np.full((size, size), np.nan)
    for row, col, value, _ in cells:
        rhos[row, col] = value
    image = ax.matshow(rhos, vmin=-1, vmax=1, cmap="RdBu_r")
    for row, col, value, n in cells:
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
    return _shown(fig, ax, show)


def performance_histogram_model_vs_random(result: RunsOrResult, id2conf: dict | None = None,
                                          show: bool = False) -> "FigAx":
    """Histograms of the losses of model-based picks (left) and random picks (right), a row per
    budget: how much the model helped.

    A configuration counts as model-based when its ``config_info['model_based_pick']`` is true
    (BOHB's samplers set it).

    Args:
        result (Result | list[Run]): A result, or (as HpBandSter's) a list of runs.
        id2conf (dict | None): ``result.get_id2config_mapping()``; needed with a list of runs.
        show (bool): Call ``plt.show()``.

    Returns:
        tuple: ``(fig, axes)`` with ``axes[row] = (model, random)``.
    """
    runs = _runs(result)
    if id2conf is None:
        if not isinstance(result, Result):
            raise TypeError("performance_histogram_model_vs_random needs id2conf "
                            "(result.get_id2config_mapping()) when given a list of runs")
        id2conf = result.get_id2config_mapping()
    budgets = _budgets([r for r in runs if r.loss is not None])
    if not budgets:
        return _no_data(*_figure("Loss of model-based vs random configurations"), show=show)
    fig, axes = _figure("Loss of model-based (left) vs random (right) configurations",
                        len(budgets), 2, sharey="row", sharex="row")
    for row, budget in enumerate(budgets):
        picks: dict[bool, list[float]] = {True: [], False: []}
        for r in runs:
            if r.budget == budget and r.loss is not None and math.isfinite(r.loss):
                info = id2conf.get(r.config_id, {}).get("config_info")
                picks[bool(isinstance(info, dict) and info.get("model_based_pick"))].append(r.loss)
        for col, (ax, model_based) in enumerate(zip(axes[row], (True, False))):
            losses = picks[model_based]
            ax.hist(losses, label=f"budget {budget:g}\nn = {len(losses)}")
            ax.legend(fontsize="small")
            if col == 0:
                ax.set_ylabel("frequency")
            if row == len(budgets) - 1:
                ax.set_xlabel("loss")
    return _shown(fig, axes, show)


def default_tool_tips(result: Result, learning_curves: dict, include_run_info: bool = False
                      ) -> dict[Any, str]:
    """HpBandSter's tool-tip texts for ``interactive_HBS_plot``.

    Per configuration its id, the duration of its longest successful run, its config and
    config_info, and its losses.

    Args:
        result (Result): The run's result.
        learning_curves (dict): ``result.get_learning_curves()``.
        include_run_info (bool): Add each run's ``info``.

    Returns:
        dict: ``{config_id: text}``.
    """
    id2conf = result.get_id2config_mapping()
    tips = {}
    for config_id in learning_curves:
        runs = [r for r in result.get_runs_by_id(config_id)]
        while runs and runs[-1].loss is None:  # the longest run that has a loss
            runs.pop()
        if not runs:
            continue
        longest = runs[-1]
        lines = [f"id: {config_id}",
                 f"duration (sec): {longest.time_stamps['finished'] - longest.time_stamps['started']:f}"]
        entry = id2conf.get(config_id, {})
        lines += [f"{k}={v}" for k, v in sorted(entry.get("config", {}).items())]
        info = entry.get("config_info")
        if isinstance(info, dict):
            lines += [f"{k}={v}" for k, v in sorted(info.items())]
        lines.append(f"losses: {[r.loss for r in runs]}")
        if include_run_info:
            lines.append(f"longest run info: {longest.info}")
        tips[config_id] = "\n".join(lines)
    return tips


def interactive_HBS_plot(learning_curves: dict, tool_tip_strings: dict | None = None,
                         log_y: bool = False, log_x: bool = False, reset_times: bool = False,
                         color_map: str = "Set3", colors_floats: Iterable[float] | None = None,
                         title: str = "", show: bool = True) -> tuple:
    """Every learning curve (``result.get_learning_curves()``) as a line, to explore by hand.

    Check boxes on the left show or hide the curves of each iteration (warm-start data is
    iteration -1); "None"/"All" hide or show them all. Hovering over a curve shows its tool tip,
    and a click pins it until clicked again. Keep the returned widgets referenced, or they stop
    answering.

    Args:
        learning_curves (dict): ``{config_id: curves}``, from ``result.get_learning_curves()``.
        tool_tip_strings (dict | None): ``{config_id: text}``, e.g. from ``default_tool_tips``
            (None: the id).
        log_y (bool): A log loss axis.
        log_x (bool): A log budget axis.
        reset_times (bool): Accepted for HpBandSter's signature.
        color_map (str): A matplotlib colormap name for the iterations.
        colors_floats (Iterable[float] | None): A colour value in [0, 1] per iteration.
        title (str): The figure's title.
        show (bool): Call ``plt.show()``.

    Returns:
        tuple: ``(fig, ax, check_buttons, none_button, all_button)``, as HpBandSter's.
    """
    from matplotlib.widgets import Button, CheckButtons

    plt = _pyplot()
    curves = [(config_id, curve) for config_id, lcs in learning_curves.items() for curve in lcs
              if len(curve)]
    fig, ax = _figure(title)
    fig.set_layout_engine(None)
    fig.subplots_adjust(left=0.22)
    cmap = plt.get_cmap(color_map)
    if colors_floats is None:  # a colour per configuration, the same in every call
        colors = [_stable_fraction(config_id) for config_id, _ in curves]
    else:
        colors = list(colors_floats)
    iterations = sorted({_iteration(config_id) for config_id, _ in curves})
    labels = ["warmstart data" if i == -1 else str(i) for i in iterations]
    by_iteration: dict[Any, list[Any]] = {i: [] for i in iterations}
    lines: dict[Any, Any] = {}
    for index, (config_id, curve) in enumerate(curves):
        xs, ys = (np.asarray(column, dtype=float) for column in zip(*curve))
        if reset_times:
            xs = xs - xs[0]
        (line,) = ax.plot(xs, ys, marker="o", color=cmap(colors[index % len(colors)]),
                          picker=True, pickradius=5)
        lines[line] = config_id
        by_iteration[_iteration(config_id)].append(line)
    if log_y:
        ax.set_yscale("log")
    if log_x:
        ax.set_xscale("log")
    if not curves:
        ax.text(0.5, 0.5, "No data: no learning curves", ha="center", va="center",
                transform=ax.transAxes)

    def tip(line: Any) -> str:
        return (tool_tip_strings or {}).get(lines[line], str(lines[line]))

    def annotate(line: Any, **bbox: Any) -> Any:
        x, y = line.get_xdata()[-1], line.get_ydata()[-1]
        return ax.annotate(tip(line), xy=(x, y), xytext=(20, 20), textcoords="offset points",
                           bbox=dict(boxstyle="round", fc="w", **bbox),
                           arrowprops=dict(arrowstyle="->"))

    hover = ax.annotate("", xy=(0, 0), xytext=(20, 20), textcoords="offset points",
                        bbox=dict(boxstyle="round", fc="w"), arrowprops=dict(arrowstyle="->"))
    hover.set_visible(False)
    pinned: dict[Any, Any] = {}

    def on_move(event: Any) -> None:
        if event.inaxes is not ax:
            return
        under = [line for line in lines if line.get_visible() and line.contains(event)[0]]
        if under:
            hover.xy = (under[0].get_xdata()[-1], under[0].get_ydata()[-1])
            hover.set_text(tip(under[0]))
            hover.set_visible(True)
        elif hover.get_visible():
            hover.set_visible(False)
        fig.canvas.draw_idle()

    def on_pick(event: Any) -> None:
        line = event.artist
        if line not in lines:
            return
        if line in pinned:
            pinned.pop(line).remove()
        else:
            pinned[line] = annotate(line, linewidth=3)
            pinned[line].draggable()
        fig.canvas.draw_idle()

    check = CheckButtons(fig.add_axes((0.02, 0.12, 0.12, 0.78)), labels, [True] * len(labels))

    def toggle(label: str | None) -> None:
        index = labels.index(label)
        for line in by_iteration[iterations[index]]:
            line.set_visible(check.get_status()[index])
        fig.canvas.draw_idle()

    def set_all(visible: bool) -> None:
        for i, status in enumerate(check.get_status()):
            if status != visible:
                check.set_active(i)  # calls toggle

    check.on_clicked(toggle)
    none_button = Button(fig.add_axes((0.02, 0.02, 0.06, 0.07)), "None")
    all_button = Button(fig.add_axes((0.08, 0.02, 0.06, 0.07)), "All")
    none_button.on_clicked(lambda event: set_all(False))
    all_button.on_clicked(lambda event: set_all(True))
    fig.canvas.mpl_connect("motion_notify_event", on_move)
    fig.canvas.mpl_connect("pick_event", on_pick)
    if show:
        plt.show()
    return fig, ax, check, none_button, all_button


def _iteration(config_id: Any) -> Any:
    return config_id[0] if isinstance(config_id, tuple) and config_id else 0


def _stable_fraction(config_id: Any) -> float:
    """A number in [0, 1) that depends only on ``config_id`` (not on Python's hash seed)."""
    digest = hashlib.sha1(repr(config_id).encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2 ** 32


def _rank_correlations(runs: Iterable[Run], budget_pairs: Iterable[tuple[float, float]]
                       ) -> list[tuple[float, float, float, int]]:
    """``(budget, other budget, rho, n)`` per pair: the ``spearman`` rho of the finite losses
    of the n configurations run on both budgets."""
    by_config: dict[Any, dict[float, float]] = {}
    for r in runs:
        if r.loss is not None and math.isfinite(r.loss):
            by_config.setdefault(r.config_id, {})[r.budget] = r.loss
    out = []
    for low, high in budget_pairs:
        pairs = [(losses[low], losses[high]) for losses in by_config.values()
                 if low in losses and high in losses]
        out.append((low, high, spearman(pairs), len(pairs)))
    return out


def spearman(pairs: list[tuple[float, float]]) -> float:
    """Spearman's rho (average ranks for ties).

    Args:
        pairs (list[tuple[float, float]]): The paired values.

    Returns:
        float: rho; NaN for fewer than 3 pairs or a constant side.
    """
    if len(pairs) < 3:
        return math.nan
    a, b = (_ranks(np.asarray(column, dtype=float)) for column in zip(*pairs))
    if a.std() == 0 or b.std() == 0:
        return math.nan
    return float(np.corrcoef(a, b)[0, 1])


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties sharing their average rank (as scipy.stats.rankdata)."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)  # a group of k ties takes ranks end-k+1 .. end: their mean
    return (ends - (counts - 1) / 2.0)[inverse.reshape(-1)]


def _runs(result: RunsOrResult) -> list[Run]:
    return result.get_all_runs() if isinstance(result, Result) else list(result)


def _budgets(runs: list[Run]) -> list[float]:
    return sorted({r.budget for r in runs})


def _has(run: Run, key: str) -> bool:
    return run.time_stamps.get(key) is not None


def _pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError("ultrarun's plots need matplotlib: pip install 'ultrarun[plot]'") from exc
    return plt


def _figure(title: str, nrows: int = 1, ncols: int = 1, **subplot_kw: Any) -> tuple["Figure", Any]:
    """A figure registered with pyplot (so ``plt.show()`` shows it) and its axes."""
    fig, ax = _pyplot().subplots(nrows, ncols, figsize=FIGSIZE, layout="constrained",
                                 squeeze=nrows * ncols == 1, **subplot_kw)
    if nrows * ncols == 1:
        ax.set_title(title)
    else:
        fig.suptitle(title)
    return fig, ax


def close(fig: "Figure") -> None:
    """Close a figure these functions made (pyplot keeps every figure until it is closed).

    Args:
        fig (Figure): The figure.
    """
    _pyplot().close(fig)


def _shown(fig: "Figure", ax: Any, show: bool) -> "FigAx":
    if show:
        _pyplot().show()
    return fig, ax


def _over_time(fig: "Figure", ax: "Axes", ylabel: str, legend: bool = True,
               show: bool = False) -> "FigAx":
    """Common finish of the plots over wall-clock time."""
    ax.set_xlabel("wall clock time [s]")
    ax.set_ylabel(ylabel)
    if legend:
        ax.legend(loc="best", fontsize="small")
    return _shown(fig, ax, show)


def _integer_ticks(ax: "Axes") -> None:
    """Counts: no tick at 0.5 runs."""
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))


def _no_data(fig: "Figure", ax: "Axes", why: str = "no finished runs yet",
             show: bool = False) -> "FigAx":
    ax.text(0.5, 0.5, f"No data: {why}", ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()
    return _shown(fig, ax, show)


def _colormap(cmap: Any) -> Any:
    """A colormap from its name, or the colormap itself (HpBandSter passed one)."""
    import matplotlib

    return matplotlib.colormaps[cmap] if isinstance(cmap, str) else cmap


__all__ = ["losses_over_time", "concurrent_runs_over_time", "finished_runs_over_time",
           "correlation_across_budgets", "performance_histogram_model_vs_random",
           "interactive_HBS_plot", "default_tool_tips", "spearman", "close"]
