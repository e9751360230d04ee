"""What the dashboard shows, as plain data: the summary, the table of runs and the figures
(plotly.js figure specs: ``{"data": [...], "layout": {...}}``), from a :class:`RunLog`.
Large runs are downsampled here, on the server, so that the page stays fast (docs/dashboard.md
says how). Every text taken from the logs is HTML-escaped before it becomes a plot label.
"""
from __future__ import annotations

import html
import itertools
import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from ..job import JobStatus
from ..results import Result, Run
from ..visualization import _rank_correlations
from ._follow import RunLog

#: Points one scatter plot gets at most; the rest are left out, evenly, never an improvement.
MAX_POINTS = 3000
#: Points each hyperparameter's small plot gets at most.
MAX_PARAMETER_POINTS = 1000
#: Runs the importance is estimated from at most (an even sample).
MAX_IMPORTANCE_RUNS = 5000
#: Lines in the parallel coordinates at most (the best tenth of them and an even sample).
MAX_LINES = 1500
#: Steps of a curve over time at most (beyond, each of this many bins shows its maximum).
MAX_STEPS = 2000
#: Parameter panels at most.
MAX_PARAMETERS = 24
#: PED-ANOVA's top quantile, and the fewest successful runs on a budget it is computed from.
TOP_QUANTILE = 0.1
MIN_IMPORTANCE_RUNS = 20
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf"]
#: Columns of the table of runs, and what each sorts by.
COLUMNS = ("config_id", "budget", "status", "loss", "started", "finished", "duration", "worker",
           "config", "error")


@dataclass
class Space:
    """What the dashboard knows of each hyperparameter: a log scale, or its categories."""

    log: dict[str, bool] = field(default_factory=dict)
    categories: dict[str, list] = field(default_factory=dict)

    @classmethod
    def from_configspace(cls, space: Any) -> "Space":
        out = cls()
        for hp in space.values():
            out.log[hp.name] = bool(getattr(hp, "log", False))
            values = getattr(hp, "choices", None) or getattr(hp, "sequence", None)
            if values is not None:
                out.categories[hp.name] = list(values)
        return out


@dataclass
class Filters:
    """The page's filters: the budgets and statuses shown (None: all)."""

    budgets: frozenset[float] | None = None
    statuses: frozenset[str] | None = None

    @classmethod
    def parse(cls, query: dict[str, list[str]]) -> "Filters":
        def values(key: str) -> list[str] | None:
            raw = query.get(key)
            if raw is None:
                return None
            return [v for v in ",".join(raw).split(",") if v]
        budgets = values("budgets")
        statuses = values("statuses")
        try:
            parsed = None if budgets is None else frozenset(float(b) for b in budgets)
        except ValueError:
            raise ValueError(f"budgets must be numbers, got {budgets!r}") from None
        known = {s.name for s in JobStatus}
        if statuses is not None and not set(statuses) <= known:
            raise ValueError(f"unknown status in {statuses!r}; known: {sorted(known)}")
        return cls(parsed, None if statuses is None else frozenset(statuses))

    def key(self) -> tuple:
        return (self.budgets, self.statuses)

    def keep(self, run: Run) -> bool:
        return ((self.budgets is None or run.budget in self.budgets)
                and (self.statuses is None or run.status.name in self.statuses))


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def id_text(config_id: Any) -> str:
    return json.dumps(list(config_id)) if isinstance(config_id, tuple) else str(config_id)


def last_line(text: str | None) -> str:
    """The last non-empty line of an error text (a traceback's is the exception)."""
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return lines[-1].strip()[:200] if lines else ""


def _num(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


# --------------------------------------------------------------------------------- summary
def summary(log: RunLog) -> dict[str, Any]:
    """The numbers at the top of the page."""
    runs = log.runs
    best = log.incumbents.best()
    incumbent = None
    if best is not None:
        budget, loss, config_id = best
        incumbent = {"budget": budget, "loss": loss, "id": id_text(config_id),
                     "config": log.config(config_id)}
    t0 = log.t0 or 0.0
    return {
        "directory": log.directory.resolve().name,
        "source": log.source,
        "run_id": log.header.get("run_id"),
        "optimizer": log.header.get("optimizer"),
        "runs": len(runs),
        "configurations": len(log.configs),
        "by_status": {s.name: log.counts[s] for s in JobStatus if log.counts[s]},
        "budgets": log.budgets,
        "best_per_budget": [{"budget": b, "loss": log.incumbents.losses[b],
                             "id": id_text(log.incumbents.ids[b])}
                            for b in sorted(log.incumbents.losses)],
        "incumbent": incumbent,
        "wall_time": (log.last_finished or t0) - t0,
    }


# ----------------------------------------------------------------------------------- table
def table(log: RunLog, filters: Filters, sort: str = "finished", descending: bool = True,
          offset: int = 0, limit: int = 50, search: str = "",
          cache: dict[str, Any] | None = None) -> dict[str, Any]:
    """One page of the runs, filtered, searched (id, configuration, error) and sorted. With a
    ``cache`` (a dict the caller keeps) the order is kept until the runs or the request change,
    so that turning pages does not sort again."""
    if sort not in COLUMNS:
        raise ValueError(f"cannot sort by {sort!r}; columns: {', '.join(COLUMNS)}")
    limit = max(1, min(int(limit), 500))
    offset = max(0, int(offset))
    t0 = log.t0 or 0.0
    needle = search.strip().lower()
    order_key = (log.version, len(log.runs), filters.key(), sort, descending, needle)
    if cache is not None and cache.get("key") == order_key:
        rows = cache["rows"]
    else:
        rows = _ordered(log, filters, sort, descending, needle)
        if cache is not None:
            cache.update(key=order_key, rows=rows)
    page = []
    for index in rows[offset:offset + limit]:
        run = log.runs[index]
        stamps = run.time_stamps
        started = stamps.get("started")
        page.append({
            "index": index, "config_id": id_text(run.config_id), "budget": run.budget,
            "status": run.status.name, "loss": _num(run.loss),
            "started": None if started is None else started - t0,
            "finished": stamps["finished"] - t0,
            "duration": None if started is None else stamps["finished"] - started,
            "worker": log.worker[index], "config": log.config(run.config_id),
            "error": run.error_logs})
    return {"total": len(rows), "offset": offset, "limit": limit, "rows": page}


def _ordered(log: RunLog, filters: Filters, sort: str, descending: bool, needle: str) -> list[int]:
    rows = [index for index, run in enumerate(log.runs) if filters.keep(run)
            and (not needle or needle in _searchable(log, index, run))]
    key = _sort_key(log, sort)
    rows.sort(key=key, reverse=descending)
    if descending:  # missing values (failed runs' losses) last in both directions
        rows.sort(key=lambda i: key(i)[0] != 0)
    return rows


def _searchable(log: RunLog, index: int, run: Run) -> str:
    return " ".join((id_text(run.config_id), json.dumps(log.config(run.config_id)),
                     run.error_logs or "", log.worker[index] or "")).lower()


def _sort_key(log: RunLog, column: str) -> Any:
    """A key whose first element is 0 where the value exists, 1 where it is missing."""
    runs = log.runs

    def value(i: int) -> Any:
        run = runs[i]
        stamps = run.time_stamps
        if column == "config_id":
            return run.config_id if isinstance(run.config_id, tuple) else (str(run.config_id),)
        if column == "budget":
            return run.budget
        if column == "status":
            return run.status.name
        if column == "loss":
            return run.loss
        if column == "started":
            return stamps.get("started")
        if column == "finished":
            return stamps["finished"]
        if column == "duration":
            return None if "started" not in stamps else stamps["finished"] - stamps["started"]
        if column == "worker":
            return log.worker[i]
        if column == "config":
            return json.dumps(log.config(run.config_id), sort_keys=True)
        return run.error_logs

    def key(i: int) -> tuple:
        v = value(i)
        return (1, 0) if v is None else (0, v)
    return key


# --------------------------------------------------------------------------------- figures
def figures(log: RunLog, filters: Filters, space: Space | None = None) -> dict[str, Any]:
    """Every figure of the page, each a plotly.js spec (or ``{"empty": why}``)."""
    runs = [r for r in log.runs if filters.keep(r)]
    budgets = log.budgets
    colors = {b: PALETTE[i % len(PALETTE)] for i, b in enumerate(budgets)}
    t0 = log.t0 or 0.0
    space = space or Space()
    ok = [r for r in runs if r.loss is not None and math.isfinite(r.loss)]
    trajectory = incumbent_trajectory(log, runs, budgets)
    out: dict[str, Any] = {
        "losses": _losses_over_time(log, runs, ok, colors, t0, trajectory),
        "trajectory": _trajectory(log, trajectory, t0),
        "finished": _finished_over_time(runs, colors, t0),
        "concurrency": _concurrency(runs, t0),
        "parallel": _parallel(log, ok, space),
        "importance": _importance(log, ok, space),
        "correlation": _correlation(ok),
    }
    out["parameters"] = _parameters(log, ok, colors, space)
    return out


def _hover(log: RunLog, run: Run) -> str:
    text = log.hover.get(id(run))
    if text is None:
        text = log.hover[id(run)] = _hover_text(log, run)
    return text


def _hover_text(log: RunLog, run: Run) -> str:
    config = log.config(run.config_id)
    lines = [f"id {id_text(run.config_id)}", f"budget {run.budget:g}",
             f"loss {run.loss:.6g}" if run.loss is not None else run.status.name]
    lines += [f"{k} = {_short(v)}" for k, v in sorted(config.items())[:20]]
    return "<br>".join(esc(line) for line in lines)


def _short(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, float) else str(value)[:60]


def _sample(indices: Sequence[int], limit: int, keep: Iterable[int] = ()) -> list[int]:
    """At most ``limit`` of ``indices`` (in order): all of ``keep`` and an even sample of the
    rest."""
    if len(indices) <= limit:
        return list(indices)
    kept = set(keep) & set(indices)
    rest = [i for i in indices if i not in kept]
    room = max(0, limit - len(kept))
    step = len(rest) / room if room else math.inf
    chosen = kept | {rest[int(k * step)] for k in range(room)} if room else kept
    return sorted(chosen)


def _loss_axis(losses: Sequence[float]) -> dict[str, Any]:
    finite = [v for v in losses if v is not None and math.isfinite(v)]
    axis: dict[str, Any] = {"title": {"text": "loss"}}
    if finite and min(finite) > 0 and max(finite) / min(finite) > 100:
        axis["type"] = "log"
    return axis


def _losses_over_time(log: RunLog, runs: list[Run], ok: list[Run], colors: dict, t0: float,
                      trajectory: dict[str, list]) -> dict:
    if not runs:
        return {"empty": "no finished runs yet"}
    data = []
    share = max(200, MAX_POINTS // max(1, len({r.budget for r in ok})))
    for budget in sorted({r.budget for r in ok}):
        these = sorted((r for r in ok if r.budget == budget), key=lambda r: r.time_stamps["finished"])
        best, steps_x, steps_y, improved = math.inf, [], [], []
        for k, r in enumerate(these):
            if r.loss < best:
                best = r.loss
                improved.append(k)
                steps_x.append(r.time_stamps["finished"] - t0)
                steps_y.append(r.loss)
        if these:
            steps_x.append(these[-1].time_stamps["finished"] - t0)
            steps_y.append(best)
        shown = _sample(range(len(these)), share, improved)
        name = f"budget {budget:g}"
        data.append({"type": "scatter", "mode": "markers", "name": name, "legendgroup": name,
                     "x": [these[k].time_stamps["finished"] - t0 for k in shown],
                     "y": [these[k].loss for k in shown],
                     "text": [_hover(log, these[k]) for k in shown], "hoverinfo": "text",
                     "marker": {"color": colors[budget], "size": 6, "opacity": 0.7},
                     "meta": {"total": len(these), "shown": len(shown)}})
        data.append({"type": "scatter", "mode": "lines", "name": f"best on {budget:g}",
                     "legendgroup": name, "showlegend": False, "x": steps_x, "y": steps_y,
                     "line": {"shape": "hv", "color": colors[budget], "width": 1},
                     "hoverinfo": "skip"})
    if trajectory["times_finished"]:
        data.append({"type": "scatter", "mode": "lines", "name": "incumbent",
                     "x": [t - t0 for t in trajectory["times_finished"]], "y": trajectory["losses"],
                     "line": {"shape": "hv", "color": "black", "width": 2.5},
                     "text": [esc(f"incumbent {id_text(i)} on budget {b:g}")
                              for i, b in zip(trajectory["config_ids"], trajectory["budgets"])],
                     "hoverinfo": "text+y"})
    failed = [r for r in runs if r.loss is None]
    if failed:
        shown = _sample(range(len(failed)), 500)
        data.append({"type": "scatter", "mode": "markers", "name": f"failed ({len(failed)})",
                     "x": [failed[k].time_stamps["finished"] - t0 for k in shown],
                     "y": [1.0] * len(shown), "yaxis": "y2",
                     "text": [_hover(log, failed[k]) + "<br>" + esc(last_line(failed[k].error_logs))
                              for k in shown],
                     "hoverinfo": "text", "marker": {"symbol": "x", "color": "red", "size": 8}})
    layout = {"xaxis": {"title": {"text": "wall clock time [s]"}},
              "yaxis": _loss_axis([r.loss for r in ok]),
              "yaxis2": {"overlaying": "y", "range": [0, 1.05], "visible": False, "fixedrange": True},
              "legend": {"orientation": "h", "y": -0.2}}
    return {"data": data, "layout": layout}


def incumbent_trajectory(log: RunLog, runs: list[Run], budgets: list[float] | None = None
                         ) -> dict[str, list]:
    """HpBandSter's incumbent trajectory (``Result.get_incumbent_trajectory``), computed from the
    runs that can change it: the first and every improving run per budget, and the last run."""
    ordered = sorted(runs, key=lambda r: r.time_stamps["finished"])
    best: dict[float, float] = {}
    candidates = []
    for r in ordered:
        if r.loss is not None and r.loss < best.get(r.budget, math.inf):
            best[r.budget] = r.loss
            candidates.append(r)
    if ordered and (not candidates or candidates[-1] is not ordered[-1]):
        candidates.append(ordered[-1])
    budgets = (log.budgets if budgets is None else budgets) or [0.0]
    result = Result.from_runs(candidates, {r.config_id: log.config(r.config_id) for r in candidates},
                              {"time_ref": 0.0, "budgets": budgets, "max_budget": budgets[-1],
                               "min_budget": budgets[0]})
    return result.get_incumbent_trajectory()


def _trajectory(log: RunLog, trajectory: dict[str, list], t0: float) -> dict:
    if not trajectory["times_finished"]:
        return {"empty": "no successful run yet"}
    text = []
    for config_id, budget, loss in zip(trajectory["config_ids"], trajectory["budgets"],
                                       trajectory["losses"]):
        config = log.config(config_id)
        text.append("<br>".join(esc(line) for line in
                                [f"id {id_text(config_id)}", f"budget {budget:g}", f"loss {loss:.6g}"]
                                + [f"{k} = {_short(v)}" for k, v in sorted(config.items())[:20]]))
    return {"data": [{"type": "scatter", "mode": "lines+markers", "name": "incumbent",
                      "x": [t - t0 for t in trajectory["times_finished"]],
                      "y": trajectory["losses"], "text": text, "hoverinfo": "text",
                      "line": {"shape": "hv", "color": "black"},
                      "marker": {"size": 7, "color": [b for b in trajectory["budgets"]],
                                 "colorscale": "Viridis", "showscale": True,
                                 "colorbar": {"title": {"text": "budget"}}}}],
            "layout": {"xaxis": {"title": {"text": "wall clock time [s]"}},
                       "yaxis": _loss_axis(trajectory["losses"]), "showlegend": False}}


def _steps(times: np.ndarray, values: np.ndarray) -> tuple[list, list]:
    """A step curve of at most :data:`MAX_STEPS` points: beyond, the maximum of each bin."""
    if len(times) <= MAX_STEPS:
        return times.tolist(), values.tolist()
    edges = np.linspace(times[0], times[-1], MAX_STEPS + 1)
    bins = np.clip(np.searchsorted(edges, times, side="right") - 1, 0, MAX_STEPS - 1)
    peak = np.full(MAX_STEPS, -np.inf)
    np.maximum.at(peak, bins, values)
    used = np.isfinite(peak)
    return edges[:-1][used].tolist(), peak[used].tolist()


def _finished_over_time(runs: list[Run], colors: dict, t0: float) -> dict:
    if not runs:
        return {"empty": "no finished runs yet"}
    data = []
    for budget in sorted({r.budget for r in runs}):
        times = np.sort(np.array([r.time_stamps["finished"] - t0 for r in runs if r.budget == budget]))
        x, y = _steps(np.concatenate([[0.0], times]), np.arange(len(times) + 1, dtype=float))
        data.append({"type": "scatter", "mode": "lines", "name": f"budget {budget:g} ({len(times)})",
                     "x": x, "y": y, "line": {"shape": "hv", "color": colors[budget]}})
    return {"data": data, "layout": {"xaxis": {"title": {"text": "wall clock time [s]"}},
                                     "yaxis": {"title": {"text": "finished runs"}, "rangemode": "tozero"},
                                     "legend": {"orientation": "h", "y": -0.2}}}


def _concurrency(runs: list[Run], t0: float) -> dict:
    timed = [r for r in runs if "started" in r.time_stamps]
    if not timed:
        return {"empty": "no run with a start time yet"}
    starts = np.array([r.time_stamps["started"] for r in timed]) - t0
    ends = np.array([r.time_stamps["finished"] for r in timed]) - t0
    times = np.concatenate([starts, ends])
    deltas = np.concatenate([np.ones(len(starts)), -np.ones(len(ends))])
    order = np.lexsort((deltas, times))  # a finish before a start at the same instant
    x, y = _steps(times[order], np.cumsum(deltas[order]))
    return {"data": [{"type": "scatter", "mode": "lines", "name": "runs in progress", "x": x,
                      "y": y, "line": {"shape": "hv"}}],
            "layout": {"xaxis": {"title": {"text": "wall clock time [s]"}},
                       "yaxis": {"title": {"text": "runs in progress"}, "rangemode": "tozero"},
                       "showlegend": False}}


# ------------------------------------------------------------------- hyperparameters
def _parameter_values(log: RunLog, runs: list[Run], space: Space) -> dict[str, dict]:
    """Per hyperparameter: its values by run (None where inactive), whether it is numeric, its
    categories and whether its axis is logarithmic (the space says; else the report's rule: all
    positive and spanning more than two decades)."""
    names = sorted({name for r in runs for name in log.config(r.config_id)})[:MAX_PARAMETERS]
    out = {}
    for name in names:
        values = [log.config(r.config_id).get(name) for r in runs]
        present = [v for v in values if v is not None]
        numeric = name not in space.categories and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in present)
        if numeric:
            log_scale = space.log.get(name)
            if log_scale is None:
                log_scale = bool(present) and min(present) > 0 and max(present) / min(present) > 100
            out[name] = {"values": values, "numeric": True, "log": log_scale}
        else:
            categories = [str(c) for c in space.categories.get(name, [])]
            categories += sorted({str(v) for v in present} - set(categories))
            out[name] = {"values": [None if v is None else str(v) for v in values],
                         "numeric": False, "categories": categories, "log": False}
    return out


def _top_and_sample(runs: list[Run], limit: int) -> list[int]:
    order = sorted(range(len(runs)), key=lambda i: runs[i].loss)
    return _sample(range(len(runs)), limit, order[:limit // 10])


def _parameters(log: RunLog, ok: list[Run], colors: dict, space: Space) -> list[dict]:
    """One small figure per hyperparameter: its value against the loss, coloured by budget."""
    if not ok:
        return []
    shown = _top_and_sample(ok, MAX_PARAMETER_POINTS)
    runs = [ok[i] for i in shown]
    params = _parameter_values(log, runs, space)
    yaxis = _loss_axis([r.loss for r in runs])
    out = []
    for name, p in params.items():
        data = []
        for budget in sorted({r.budget for r in runs}):
            idx = [k for k, r in enumerate(runs) if r.budget == budget and p["values"][k] is not None]
            data.append({"type": "scatter", "mode": "markers", "name": f"budget {budget:g}",
                         "x": [p["values"][k] for k in idx], "y": [runs[k].loss for k in idx],
                         "text": [_hover(log, runs[k]) for k in idx], "hoverinfo": "text",
                         "marker": {"color": colors[budget], "size": 5, "opacity": 0.7}})
        xaxis: dict[str, Any] = {"title": {"text": esc(name)}}
        if p["log"]:
            xaxis["type"] = "log"
        if not p["numeric"]:
            xaxis.update(type="category", categoryorder="array", categoryarray=p["categories"])
        out.append({"name": name, "log": p["log"], "figure": {
            "data": data, "layout": {"xaxis": xaxis, "yaxis": yaxis, "showlegend": False,
                                     "margin": {"l": 50, "r": 10, "t": 10, "b": 40}}}})
    return out


def _parallel(log: RunLog, ok: list[Run], space: Space) -> dict:
    if len(ok) < 2:
        return {"empty": "needs two successful runs"}
    shown = _top_and_sample(ok, MAX_LINES)
    runs = [ok[i] for i in shown]
    params = _parameter_values(log, runs, space)
    dims = []
    if len({r.budget for r in runs}) > 1:
        dims.append({"label": "budget", "values": [r.budget for r in runs]})
    for name, p in params.items():
        if p["numeric"]:
            values = [math.nan if v is None else float(v) for v in p["values"]]
            if p["log"]:
                values = [math.log10(v) if v > 0 else math.nan for v in values]
            finite = [v for v in values if math.isfinite(v)]
            low = min(finite, default=0.0)
            values = [v if math.isfinite(v) else low for v in values]  # inactive: at the bottom
            dims.append({"label": esc(f"log10 {name}" if p["log"] else name), "values": values})
        else:
            cats = p["categories"] + (["(inactive)"] if None in p["values"] else [])
            index = {c: k for k, c in enumerate(cats)}
            dims.append({"label": esc(name), "values": [index[v if v is not None else "(inactive)"]
                                                         for v in p["values"]],
                         "tickvals": list(range(len(cats))), "ticktext": [esc(c) for c in cats]})
    losses = [r.loss for r in runs]
    dims.append({"label": "loss", "values": losses})
    logged = _loss_axis(losses).get("type") == "log"  # a few huge losses would wash out the rest
    colors = [math.log10(v) for v in losses] if logged else losses
    return {"data": [{"type": "parcoords", "dimensions": dims,
                      "line": {"color": colors, "colorscale": "Viridis", "reversescale": True,
                               "showscale": True, "colorbar": {"title": {
                                   "text": "log10 loss" if logged else "loss"}}}}],
            "layout": {"margin": {"l": 60, "r": 60, "t": 50, "b": 30}},
            "meta": {"total": len(ok), "shown": len(runs)}}


def ped_anova(columns: dict[str, dict], losses: Sequence[float], quantile: float = TOP_QUANTILE,
              grid: int = 100) -> dict[str, float]:
    """PED-ANOVA-style importance (Watanabe et al., IJCAI 2023): per hyperparameter, the
    Pearson divergence between the distribution of its values among the top ``quantile`` runs
    and among all runs, each a 1-D Parzen estimate; normalised to sum 1. A parameter whose good
    values look like all its values is unimportant."""
    losses = np.asarray(losses, dtype=float)
    n = len(losses)
    n_top = max(2, int(math.ceil(quantile * n)))
    top = np.argsort(losses, kind="stable")[:n_top]
    scores = {}
    for name, p in columns.items():
        if p["numeric"]:
            x = np.array([math.nan if v is None else float(v) for v in p["values"]])
            if p["log"]:
                x = np.where(x > 0, np.log(np.where(x > 0, x, 1.0)), math.nan)
            finite = np.isfinite(x)
            if finite.sum() < 2 or np.ptp(x[finite]) == 0:
                scores[name] = 0.0
                continue
            low, high = np.nanmin(x), np.nanmax(x)
            u = (x - low) / (high - low)
            points = np.linspace(0, 1, grid)
            every = _parzen(u[finite], points)
            best = _parzen(u[top][np.isfinite(u[top])], points)
        else:
            cats = p["categories"] + ["(inactive)"]
            index = {c: k for k, c in enumerate(cats)}
            codes = np.array([index[v if v is not None else "(inactive)"] for v in p["values"]])
            every = (np.bincount(codes, minlength=len(cats)) + 1.0)
            best = (np.bincount(codes[top], minlength=len(cats)) + 1.0)
        every, best = every / every.sum(), best / best.sum()
        scores[name] = float(np.sum(every * (best / every - 1.0) ** 2))
    total = sum(scores.values())
    return {k: (v / total if total > 0 else 0.0) for k, v in scores.items()}


def _parzen(samples: np.ndarray, points: np.ndarray) -> np.ndarray:
    """A Gaussian Parzen estimate on ``points`` in [0, 1] (Scott's bandwidth, at least 0.02)."""
    if len(samples) == 0:
        return np.ones_like(points)
    width = max(0.02, float(np.std(samples)) * len(samples) ** -0.2)
    density = np.exp(-0.5 * ((points[:, None] - samples[None, :]) / width) ** 2).sum(axis=1)
    return density + 1e-12


def _importance(log: RunLog, ok: list[Run], space: Space) -> dict:
    counts: dict[float, int] = {}
    for r in ok:
        counts[r.budget] = counts.get(r.budget, 0) + 1
    usable = [b for b, n in counts.items() if n >= MIN_IMPORTANCE_RUNS]
    if not usable:
        return {"empty": f"needs {MIN_IMPORTANCE_RUNS} successful runs on one budget"}
    budget = max(usable)
    runs = [r for r in ok if r.budget == budget]
    if len(runs) > MAX_IMPORTANCE_RUNS:  # an even sample: the estimate hardly moves
        runs = [runs[i] for i in _sample(range(len(runs)), MAX_IMPORTANCE_RUNS)]
    params = _parameter_values(log, runs, space)
    if not params:
        return {"empty": "the configurations have no hyperparameters"}
    scores = ped_anova(params, [r.loss for r in runs])
    names = sorted(scores, key=scores.get)
    return {"data": [{"type": "bar", "orientation": "h", "y": [esc(n) for n in names],
                      "x": [scores[n] for n in names], "hovertemplate": "%{y}: %{x:.3f}<extra></extra>"}],
            "layout": {"xaxis": {"title": {"text": "share of importance"}, "rangemode": "tozero"},
                       "margin": {"l": 120}, "showlegend": False},
            "meta": {"method": "PED-ANOVA", "budget": budget, "runs": len(runs),
                     "quantile": TOP_QUANTILE, "scores": scores}}


def _correlation(ok: list[Run]) -> dict:
    budgets = sorted({r.budget for r in ok})
    if len(budgets) < 2:
        return {"empty": "needs successful runs on two budgets"}
    cells = _rank_correlations(ok, itertools.combinations(budgets, 2))
    size = len(budgets) - 1
    z: list[list[float | None]] = [[None] * size for _ in range(size)]
    text: list[list[str]] = [[""] * size for _ in range(size)]
    for low, high, rho, n in cells:
        row, col = budgets.index(low), budgets.index(high) - 1
        z[row][col] = None if math.isnan(rho) else rho
        text[row][col] = f"{'not enough data' if math.isnan(rho) else f'rho = {rho:.2f}'}<br>n = {n}"
    return {"data": [{"type": "heatmap", "z": z, "text": text, "texttemplate": "%{text}",
                      "x": [f"{b:g}" for b in budgets[1:]], "y": [f"{b:g}" for b in budgets[:-1]],
                      "zmin": -1, "zmax": 1, "colorscale": "RdBu", "reversescale": True,
                      "hovertemplate": "budgets %{y} and %{x}<br>%{text}<extra></extra>",
                      "colorbar": {"title": {"text": "Spearman rho"}}}],
            "layout": {"xaxis": {"title": {"text": "budget"}, "type": "category"},
                       "yaxis": {"title": {"text": "budget"}, "type": "category",
                                 "autorange": "reversed"}},
            "meta": {"cells": [{"budgets": [low, high], "rho": None if math.isnan(rho) else rho,
                                "n": n} for low, high, rho, n in cells]}}
