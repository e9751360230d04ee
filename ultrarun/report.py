"""A static HTML report of a run (``ultrarun report DIR``, ``write_report``): figures with
captions, a summary and the best configurations. What it shows and how to read it: docs/report.md.
"""
from __future__ import annotations

import html
import json
import logging
import math
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable

from . import visualization
from ._files import read_json_lines, write_atomic
from .results import (CONFIGS_FILE, STATUSES_FILE, Result, Run, logged_results_to_HBS_result,
                      read_configspace, status_counts)

logger = logging.getLogger(__name__)

DEFAULT_SUBDIR = "report"
#: A watched page reloads itself; this keeps the reader where they were (redrawn in place).
KEEP_SCROLL = ("addEventListener('scroll',()=>sessionStorage.setItem('ultrarun-scroll',scrollY));"
               "addEventListener('load',()=>scrollTo(0,+sessionStorage.getItem('ultrarun-scroll')"
               "||0));")
MAX_PARAMETERS = 12  # panels in the parameter figure


def parameters_vs_loss(result: Result, max_parameters: int = MAX_PARAMETERS,
                       configspace: Any = None) -> tuple:
    """Every hyperparameter against the loss, one panel each, one dot per successful run where the
    parameter is active, coloured by budget; category axes as docs/report.md says.

    Args:
        result (Result): The run's result.
        max_parameters (int): Panels at most (the first parameters by name).
        configspace (ConfigurationSpace | None): The run's space: a parameter gets a log axis
            where it says the parameter is log-scaled, never from the spread of the values (None:
            linear axes).

    Returns:
        tuple: ``(fig, axes)``, like the plots of ``ultrarun.visualization``.
    """
    from matplotlib.figure import Figure

    runs = [r for r in result.get_all_runs() if r.loss is not None and math.isfinite(r.loss)]
    id2conf = result.get_id2config_mapping()
    names = sorted({name for r in runs for name in id2conf[r.config_id]["config"]})
    shown = names[:max_parameters]
    columns = min(3, max(1, len(shown)))
    rows = max(1, math.ceil(len(shown) / columns))
    fig = Figure(figsize=(8.0, max(3.0, 2.6 * rows + 0.5)), layout="constrained")
    title = "Hyperparameters against the loss"
    if len(names) > len(shown):
        title += f" (first {len(shown)} of {len(names)})"
    fig.suptitle(title)
    if not shown:
        visualization._no_data(fig, fig.add_subplot(), "no successful run yet")
        return fig, fig.axes
    budgets = sorted({r.budget for r in runs})
    colors = visualization._colormap("tab10")
    losses = [r.loss for r in runs]
    log_loss = min(losses) > 0 and max(losses) / min(losses) > 100
    for index, name in enumerate(shown):
        ax = fig.add_subplot(rows, columns, index + 1)
        values = [(id2conf[r.config_id]["config"].get(name), r) for r in runs]
        values = [(v, r) for v, r in values if v is not None]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v, _ in values)
        categories = [] if numeric else sorted({str(v) for v, _ in values})
        for i, budget in enumerate(budgets):
            points = [(v, r.loss) for v, r in values if r.budget == budget]
            if not points:
                continue
            xs = [float(v) if numeric else categories.index(str(v)) for v, _ in points]
            if not numeric:  # spread the dots of a category a little, so they do not hide
                xs = [x + 0.25 * ((k * 0.618) % 1 - 0.5) for k, x in enumerate(xs)]
            ax.scatter(xs, [loss for _, loss in points], s=10, color=colors(i % colors.N),
                       label=f"budget {budget:g}")
        if numeric:
            if _log_scaled(configspace, name):
                ax.set_xscale("log")
        else:
            ax.set_xticks(range(len(categories)), categories, fontsize="small")
        if log_loss:
            ax.set_yscale("log")
        ax.set_xlabel(name)
        if index % columns == 0:
            ax.set_ylabel("loss")
    if len(budgets) > 1:
        fig.axes[0].legend(fontsize="x-small", loc="best")
    return fig, fig.axes


def _log_scaled(configspace: Any, name: str) -> bool:
    """Whether the space says parameter ``name`` is log-scaled (no space: no)."""
    try:
        return bool(getattr(configspace[name], "log", False)) if configspace is not None else False
    except KeyError:
        return False


def idle_gaps(result: Result | list[Run], min_gap: float | None = None
              ) -> list[tuple[float, float]]:
    """Every stretch in which no run was in progress, between the first start and the last finish:
    a master that stopped and was resumed, or no worker.

    Args:
        result (Result | list[Run]): The run's result, or its runs.
        min_gap (float | None): Seconds a stretch must last (default: 2% of the run's span, at
            least 1 s).

    Returns:
        list[tuple[float, float]]: ``(start, end)`` of each gap.
    """
    runs = result.get_all_runs() if isinstance(result, Result) else result
    spans = sorted((r.time_stamps["started"], r.time_stamps["finished"]) for r in runs
                   if r.time_stamps.get("started") is not None
                   and r.time_stamps.get("finished") is not None)
    if not spans:
        return []
    if min_gap is None:
        min_gap = max(1.0, 0.02 * (max(end for _, end in spans) - spans[0][0]))
    gaps, busy_until = [], spans[0][1]
    for start, end in spans[1:]:
        if start - busy_until >= min_gap:
            gaps.append((busy_until, start))
        busy_until = max(busy_until, end)
    return gaps


def rerun_jobs(directory: str | os.PathLike[str]) -> dict[tuple[Any, float], int]:
    """The jobs in a run's logs that ran more than once (their worker was lost and the job was run
    again), from ``statuses.json``.

    Args:
        directory (str | PathLike): The run's result directory.

    Returns:
        dict[tuple[Any, float], int]: ``{(config_id, budget): attempt}``.
    """
    reruns = {}
    for _, line in read_json_lines(Path(directory) / STATUSES_FILE):
        try:
            config_id, budget, extra = line[0], line[1], line[2]
            if int(extra.get("attempt", 1)) > 1:
                key = tuple(config_id) if isinstance(config_id, list) else config_id
                reruns[(key, budget)] = int(extra["attempt"])
        except (IndexError, TypeError, ValueError, AttributeError):
            continue  # the loader warns about bad lines already
    return reruns


def _mark_time(ax: Any, gaps: list[tuple[float, float]], rerun_starts: list[float]) -> None:
    """Grey bands on the idle gaps and orange triangles at the re-run jobs' starts."""
    for i, (start, end) in enumerate(gaps):
        ax.axvspan(start, end, color="0.85", zorder=0,
                   label=None if i else "idle: no run in progress")
    if rerun_starts:
        ax.plot(rerun_starts, [1.0] * len(rerun_starts), "v", color="tab:orange", markersize=7,
                transform=ax.get_xaxis_transform(), clip_on=False, label="re-run job starts")
    if gaps or rerun_starts:
        ax.legend(fontsize="x-small", loc="best")


#: Figure file names and the functions that draw them, in page order.
FIGURES: dict[str, Callable[[Result], Any]] = {
    "losses_over_time.png": visualization.losses_over_time,
    "parameters_vs_loss.png": parameters_vs_loss,
    "correlation_across_budgets.png": visualization.correlation_across_budgets,
    "concurrent_runs_over_time.png": visualization.concurrent_runs_over_time,
    "finished_runs_over_time.png": visualization.finished_runs_over_time,
}

#: What each figure shows and how to read it (the correlation figure adds a verdict on the run).
CAPTIONS: dict[str, str] = {
    "losses_over_time.png":
        "Each dot is a finished run, at the time it finished, coloured by its budget; the thin "
        "line of each colour is that budget's best loss so far: the incumbent per budget. The "
        "black line is the overall incumbent, the best loss on the largest budget that has a "
        "result so far (HpBandSter's definition). It can jump up when the first run on a larger "
        "budget finishes: losses on different budgets are not comparable, so this is not a "
        "worse configuration. Compare each budget with its own line. Red crosses on the top "
        "edge are failed runs.",
    "parameters_vs_loss.png":
        "Each hyperparameter against the loss, one dot per successful run, coloured by budget. "
        "Where the dots of the largest budget are lowest is the region worth searching; a "
        "parameter whose dots are low everywhere matters little.",
    "correlation_across_budgets.png":
        "Spearman rank correlation of the losses of the same configurations on two budgets, with "
        "n the number of configurations run on both. Successive halving keeps the best "
        "configurations of a small budget, which works when the small budget ranks them as the "
        "large ones do: rho near 1. Grey cells have not enough data (fewer than 3 configurations "
        "on both budgets, or constant losses): that is not rho = 0.",
    "concurrent_runs_over_time.png":
        "Runs in progress over time, counted from each run's start and finish: how busy the "
        "workers were. Dips below the number of workers are idle workers, e.g. a successive "
        "halving stage waiting for its slowest run before it promotes (ASHA does not wait). "
        "Grey bands (here and in the first figure) are idle gaps, when no run was in progress: "
        "a master that stopped and was resumed, or no worker. Orange triangles on the top edge "
        "mark jobs that ran again after their worker was lost.",
    "finished_runs_over_time.png":
        "Finished runs over time, failed ones included, one line per budget: the pace of the "
        "run, and when it reached each budget.",
}


def write_report(directory: str | os.PathLike[str], output_dir: str | os.PathLike[str] | None = None,
                 top: int = 10, refresh: float | None = None) -> Path:
    """Write the report of the run logged in ``directory``; existing report files are replaced.

    Args:
        directory (str | PathLike): The run's result directory (``configs.json``, ...).
        output_dir (str | PathLike | None): Where to write (default ``<directory>/report``).
        top (int): Rows of the best configurations.
        refresh (float | None): Seconds after which the page reloads itself (see
            ``watch_report``).

    Returns:
        Path: The path of its ``index.html``.

    Raises:
        FileNotFoundError: The directory holds no result logs.
    """
    directory = Path(directory)
    result = logged_results_to_HBS_result(directory)
    out = Path(output_dir) if output_dir is not None else directory / DEFAULT_SUBDIR
    return write_result_report(result, out, title=f"ultrarun report: {directory.resolve().name}",
                               top=top, refresh=refresh, configspace=read_configspace(directory),
                               reruns=rerun_jobs(directory))


def write_result_report(result: Result, output_dir: str | os.PathLike[str], title: str = "ultrarun report",
                        top: int = 10, refresh: float | None = None, configspace: Any = None,
                        reruns: dict[tuple[Any, float], int] | None = None) -> Path:
    """Write the report of an in-memory ``Result`` (e.g. the one a master returned).

    Args:
        result (Result): The run's result.
        output_dir (str | PathLike): Where to write.
        title (str): The page's title.
        top (int): Rows of the best configurations.
        refresh (float | None): Seconds after which the page reloads itself.
        configspace (ConfigurationSpace | None): Decides the parameters' log axes.
        reruns (dict[tuple[Any, float], int] | None): The jobs that ran again
            (``rerun_jobs``), marked in the report.

    Returns:
        Path: The path of its ``index.html``.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    reruns = reruns or {}
    gaps = idle_gaps(result)
    starts = {(r.config_id, r.budget): r.time_stamps.get("started") for r in result.get_all_runs()}
    rerun_starts = [starts[key] for key in reruns if starts.get(key) is not None]
    for name, draw in FIGURES.items():
        if draw is parameters_vs_loss:
            fig, _ = parameters_vs_loss(result, configspace=configspace)
        else:
            fig, ax = draw(result)
            if name in ("losses_over_time.png", "concurrent_runs_over_time.png"):
                _mark_time(ax, gaps, rerun_starts if name.startswith("concurrent") else [])
        write_atomic(output_dir / name, lambda fh: fig.savefig(fh, dpi=100, format="png"))
        visualization.close(fig)
    page = output_dir / "index.html"
    text = render_html(result, title, list(FIGURES), top, refresh=refresh, reruns=reruns)
    write_atomic(page, lambda fh: fh.write(text.encode("utf-8")))
    logger.info("report written to %s", page)
    return page


def watch_report(directory: str | os.PathLike[str], output_dir: str | os.PathLike[str] | None = None,
                 interval: float = 5.0, count: int | None = None,
                 stop: threading.Event | None = None) -> Path:
    """Rewrite the report whenever the run's logs change, until stopped.

    Meanwhile the page reloads itself every ``interval`` seconds, keeping the reader's place;
    the last report written does not reload. Started before the run's first result, it waits
    for the logs and says so once (at WARNING).

    Args:
        directory (str | PathLike): The run's result directory.
        output_dir (str | PathLike | None): Where to write (default ``<directory>/report``).
        interval (float): Seconds between two looks at the logs.
        count (int | None): Stop after this many rounds (None: until ``stop`` is set).
        stop (threading.Event | None): Set it to stop.

    Returns:
        Path: The page's path.

    Raises:
        FileNotFoundError: No result logs appeared before the last round.
    """
    stop = stop or threading.Event()
    directory = Path(directory)
    seen, rounds, said = None, 0, False
    while count is None or rounds < count - 1:
        state = _logs_state(directory)
        if not (directory / CONFIGS_FILE).exists():
            if not said:
                logger.warning("waiting for the run's first result: no %s yet (checking every "
                               "%g s)", directory / CONFIGS_FILE, interval)
                said = True
        elif state != seen:
            write_report(directory, output_dir, refresh=interval)
            seen = state
        rounds += 1
        if stop.wait(interval):
            break
    return write_report(directory, output_dir)


def _logs_state(directory: Path) -> tuple:
    """What changes when a result is logged: the files' sizes and modification times."""
    if not directory.is_dir():
        return ()
    return tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns)
                 for p in sorted(directory.glob("*.json")))


def summary(result: Result) -> dict[str, Any]:
    """The numbers the report shows, as plain data (also handy in tests and notebooks).

    Args:
        result (Result): The run's result.

    Returns:
        dict[str, Any]: Configurations, runs, runs by status, budgets, the best per budget, the
            incumbent and the wall time.
    """
    runs = result.get_all_runs()
    finished = [r.time_stamps.get("finished") for r in runs if r.time_stamps.get("finished") is not None]
    return {
        "configurations": len(result.data),
        "runs": len(runs),
        "by_status": status_counts(runs),
        "budgets": sorted({r.budget for r in runs}),
        "best_per_budget": result.get_incumbents_per_budget(),
        "incumbent": result.get_incumbent_id(),
        "wall_time": max(finished) if finished else 0.0,
    }


def best_configurations(result: Result, top: int = 10) -> list[Run]:
    """The ``top`` configurations, each by its run on the largest budget it finished successfully.

    Ordered by that budget (largest first), then by loss, so the HpBandSter incumbent comes
    first; the report shows each budget apart, as losses on different budgets are not
    comparable.

    Args:
        result (Result): The run's result.
        top (int): How many.

    Returns:
        list[Run]: The runs.
    """
    best = []
    for config_id in result.data:
        successful = [r for r in result.get_runs_by_id(config_id) if r.loss is not None]
        if successful:
            best.append(successful[-1])
    best.sort(key=lambda r: (-r.budget, r.loss))
    return best[:top]


def budget_correlations(result: Result) -> list[tuple[float, float, float, int]]:
    """The rank correlation of the losses on each pair of neighbouring budgets.

    Args:
        result (Result): The run's result.

    Returns:
        list[tuple[float, float, float, int]]: ``(budget, next budget, rho, n)``; rho is NaN with
            fewer than 3 configurations on both, or constant losses.
    """
    runs = result.get_all_runs()
    budgets = sorted({r.budget for r in runs if r.loss is not None and math.isfinite(r.loss)})
    return visualization._rank_correlations(runs, zip(budgets, budgets[1:]))


def min_budget_advice(result: Result) -> str:
    """One sentence on what the smallest budgets' correlation says about ``min_budget``.

    Args:
        result (Result): The run's result.

    Returns:
        str: The sentence.
    """
    pairs = budget_correlations(result)
    if not pairs:
        return "With runs on one budget only, there is nothing to compare yet."
    low, high, rho, n = pairs[0]
    if math.isnan(rho):
        return (f"Budgets {low:g} and {high:g} share {n} configuration(s) with a loss: not enough "
                "data yet to judge min_budget.")
    said = f"Here rho({low:g}, {high:g}) = {rho:.2f} over {n} configurations: "
    if rho >= 0.7:
        return said + (f"budget {low:g} ranks configurations much as budget {high:g} does, so "
                       "min_budget is not too small (a smaller one might save time).")
    if rho >= 0.3:
        return said + (f"budget {low:g} ranks configurations only roughly as budget {high:g} "
                       "does; good configurations may be dropped early. Consider a larger "
                       "min_budget.")
    return said + (f"budget {low:g} ranks configurations unlike budget {high:g}, so the first "
                   "stage of successive halving discards them almost at random: use a larger "
                   "min_budget.")


def render_html(result: Result, title: str, figure_files: list[str], top: int = 10,
                refresh: float | None = None,
                reruns: dict[tuple[Any, float], int] | None = None) -> str:
    """The report page; every value from the run is HTML-escaped.

    Args:
        result (Result): The run's result.
        title (str): The page's title.
        figure_files (list[str]): The figures' file names, in page order.
        top (int): Rows of the best configurations.
        refresh (float | None): Seconds after which the page reloads itself.
        reruns (dict[tuple[Any, float], int] | None): The jobs that ran again.

    Returns:
        str: The HTML.
    """
    info = summary(result)
    gaps, reruns = idle_gaps(result), reruns or {}
    id2conf = result.get_id2config_mapping()
    rows = [("configurations", info["configurations"]), ("runs", info["runs"]),
            ("runs by status", ", ".join(f"{k}: {v}" for k, v in info["by_status"].items()) or "none"),
            ("budgets", ", ".join(f"{b:g}" for b in info["budgets"]) or "none"),
            ("incumbent (largest budget)", _id(info["incumbent"]) if info["incumbent"] is not None else "none yet"),
            ("wall time of the last finished run [s]", f"{info['wall_time']:.1f}")]
    rows += [(f"best loss on budget {b:g}", f"{loss:.6g} ({_id(cid)})")
             for b, (cid, loss) in info["best_per_budget"].items()]
    rows.append(("idle gaps (no run in progress) [s]", ", ".join(
        f"{start:.1f}-{end:.1f}" for start, end in gaps) or "none"))
    rows.append(("re-run jobs (worker lost, run again)", ", ".join(
        f"{_id(cid)} on budget {budget:g} (attempt {attempt})"
        for (cid, budget), attempt in sorted(reruns.items(), key=str)) or "none"))
    summary_rows = "\n".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in rows)
    best_tables = _best_tables(best_configurations(result, top), id2conf)
    captions = dict(CAPTIONS)
    captions["correlation_across_budgets.png"] += " " + min_budget_advice(result)
    figures = "\n".join(
        f'<figure><img src="{_esc(name)}" alt="{_esc(name[:-4].replace("_", " "))}">'
        f"<figcaption>{_esc(captions.get(name, ''))}</figcaption></figure>"
        for name in figure_files)
    generated = time.strftime("%Y-%m-%d %H:%M:%S")
    reload = "" if refresh is None else (f'<meta http-equiv="refresh" content="{refresh:g}">\n'
                                         f"<script>{KEEP_SCROLL}</script>\n")
    live = "" if refresh is None else f" This page reloads every {refresh:g} s while the run is watched."
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{reload}<title>{_esc(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; color: #222; max-width: 2000px; }}
table {{ border-collapse: collapse; margin-bottom: 1em; }}
th, td {{ border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }}
code {{ word-break: break-all; }}
.grid {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 560px), 1fr));
         gap: 1.5em; align-items: start; }}
figure {{ margin: 0; }}
figure img {{ width: 100%; height: auto; border: 1px solid #eee; }}
figcaption {{ font-size: 0.9em; color: #444; line-height: 1.4; }}
</style>
</head>
<body>
<h1>{_esc(title)}</h1>
<p>Generated {generated}. Times are seconds after the first submission.{live}</p>
<div class="grid">
<section>
<h2>Summary</h2>
<table>
{summary_rows}
</table>
</section>
<section>
<h2>Best configuration</h2>
{_best_configuration(result)}
</section>
</div>
<h2>Figures</h2>
<div class="grid">
{figures}
</div>
<h2>Best configurations</h2>
{best_tables}
</body>
</html>
"""


def _best_tables(best: list[Run], id2conf: dict) -> str:
    """The best configurations as tables (HTML): those that reached the largest budget, ranked by
    loss, then apart the ones that stopped at a smaller budget, each budget ranked on its own."""
    if not best:
        return "<p>no successful run yet</p>"
    largest = best[0].budget
    head = ("<tr><th>#</th><th>config id</th><th>budget</th><th>loss</th>"
            "<th>configuration</th></tr>")

    def table(runs: list[Run]) -> str:
        rows = "\n".join(
            f"<tr><td>{rank}</td><td>{_esc(_id(r.config_id))}</td><td>{r.budget:g}</td>"
            f"<td>{r.loss:.6g}</td><td><code>{_esc(json.dumps(id2conf[r.config_id]['config'], sort_keys=True, default=repr))}</code></td></tr>"
            for rank, r in enumerate(runs, 1))
        return f"<table>\n{head}\n{rows}\n</table>"

    parts = [f"<p>Each configuration by its run on the largest budget it finished. Losses on "
             f"different budgets are not comparable (a run stopped at a smaller budget was "
             f"trained less), so the configurations that reached budget {largest:g} are ranked "
             f"first, by loss; the others follow apart, ranked within their budget.</p>",
             f"<h3>Reached the largest budget, {largest:g}</h3>",
             table([r for r in best if r.budget == largest])]
    smaller = sorted({r.budget for r in best if r.budget != largest}, reverse=True)
    if smaller:
        parts.append("<h3>Stopped at a smaller budget</h3>")
        for budget in smaller:
            parts += [f"<h4>Budget {budget:g}</h4>", table([r for r in best if r.budget == budget])]
    return "\n".join(parts)


def _best_configuration(result: Result) -> str:
    """The incumbent's parameters and its loss on every budget it ran on (HTML)."""
    config_id = result.get_incumbent_id()
    why = "the best loss on the largest budget"
    if config_id is None:
        best = best_configurations(result, 1)
        if not best:
            return "<p>no successful run yet</p>"
        config_id, why = best[0].config_id, f"none finished the largest budget yet; best on budget {best[0].budget:g}"
    config = result.get_id2config_mapping()[config_id]["config"]
    params = "\n".join(f"<tr><th>{_esc(k)}</th><td>{_esc(_value(v))}</td></tr>"
                       for k, v in sorted(config.items()))
    runs = ", ".join(f"{r.budget:g}: {r.loss:.6g}" if r.loss is not None else f"{r.budget:g}: {r.status.name if r.status else 'failed'}"
                     for r in result.get_runs_by_id(config_id))
    return (f"<p>Configuration {_esc(_id(config_id))} ({_esc(why)}).</p>\n"
            f"<table>\n<tr><th>parameter</th><th>value</th></tr>\n{params}\n</table>\n"
            f"<p>Loss by budget: {_esc(runs)}</p>")


def _value(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _id(config_id: Any) -> str:
    return json.dumps(list(config_id)) if isinstance(config_id, tuple) else str(config_id)


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


__all__ = ["write_report", "write_result_report", "watch_report", "summary",
           "best_configurations", "idle_gaps", "rerun_jobs", "budget_correlations", "min_budget_advice",
           "parameters_vs_loss", "render_html", "FIGURES", "CAPTIONS"]
