"""A static HTML report of a run: four PNG figures, a summary and the best configurations.

``write_report(directory)`` reads the logs a run wrote (``configs.json``, ``results.json``) and
works on a run still in progress as well as on a finished one. The page has no scripts and no
external resources besides the PNGs beside it, so it can be copied off a cluster and opened
anywhere. ``ultrarun report DIR`` calls it.
"""
from __future__ import annotations

import html
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Callable

from . import visualization
from .results import Result, Run, logged_results_to_HBS_result, status_counts

logger = logging.getLogger(__name__)

#: Figure file names and the functions that draw them, in page order.
FIGURES: dict[str, Callable[[Result], Any]] = {
    "losses_over_time.png": visualization.losses_over_time,
    "finished_runs_over_time.png": visualization.finished_runs_over_time,
    "concurrent_runs_over_time.png": visualization.concurrent_runs_over_time,
    "correlation_across_budgets.png": visualization.correlation_across_budgets,
}

DEFAULT_SUBDIR = "report"


def write_report(directory: str | os.PathLike[str], output_dir: str | os.PathLike[str] | None = None,
                 top: int = 10) -> Path:
    """Write the report of the run logged in ``directory`` and return the path of its ``index.html``.

    ``output_dir`` defaults to ``<directory>/report``; existing report files there are replaced.
    """
    directory = Path(directory)
    result = logged_results_to_HBS_result(directory)
    out = Path(output_dir) if output_dir is not None else directory / DEFAULT_SUBDIR
    return write_result_report(result, out, title=f"ultrarun report: {directory.resolve().name}", top=top)


def write_result_report(result: Result, output_dir: str | os.PathLike[str], title: str = "ultrarun report",
                        top: int = 10) -> Path:
    """Write the report of an in-memory :class:`Result` (e.g. the one a master returned)."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    for name, draw in FIGURES.items():
        fig, _ = draw(result)
        fig.savefig(output_dir / name, dpi=100)
        visualization.close(fig)
    page = output_dir / "index.html"
    page.write_text(render_html(result, title, list(FIGURES), top), encoding="utf-8")
    logger.info("report written to %s", page)
    return page


def summary(result: Result) -> dict[str, Any]:
    """The numbers the report shows, as plain data (also handy in tests and notebooks)."""
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

    Ordered by that budget (largest first), then by loss, so the HpBandSter incumbent comes first.
    """
    best = []
    for config_id in result.data:
        successful = [r for r in result.get_runs_by_id(config_id) if r.loss is not None]
        if successful:
            best.append(successful[-1])
    best.sort(key=lambda r: (-r.budget, r.loss))
    return best[:top]


def render_html(result: Result, title: str, figure_files: list[str], top: int = 10) -> str:
    """The report page; every value from the run is HTML-escaped."""
    info = summary(result)
    id2conf = result.get_id2config_mapping()
    rows = [("configurations", info["configurations"]), ("runs", info["runs"]),
            ("runs by status", ", ".join(f"{k}: {v}" for k, v in info["by_status"].items()) or "none"),
            ("budgets", ", ".join(f"{b:g}" for b in info["budgets"]) or "none"),
            ("incumbent (largest budget)", _id(info["incumbent"]) if info["incumbent"] is not None else "none yet"),
            ("wall time of the last finished run [s]", f"{info['wall_time']:.1f}")]
    rows += [(f"best loss on budget {b:g}", f"{loss:.6g} ({_id(cid)})")
             for b, (cid, loss) in info["best_per_budget"].items()]
    summary_rows = "\n".join(f"<tr><th>{_esc(k)}</th><td>{_esc(v)}</td></tr>" for k, v in rows)
    best_rows = "\n".join(
        f"<tr><td>{rank}</td><td>{_esc(_id(r.config_id))}</td><td>{r.budget:g}</td><td>{r.loss:.6g}</td>"
        f"<td><code>{_esc(json.dumps(id2conf[r.config_id]['config'], sort_keys=True, default=repr))}</code></td></tr>"
        for rank, r in enumerate(best_configurations(result, top), 1))
    figures = "\n".join(f'<figure><img src="{_esc(name)}" alt="{_esc(name[:-4].replace("_", " "))}">'
                        f"</figure>" for name in figure_files)
    generated = time.strftime("%Y-%m-%d %H:%M:%S")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{_esc(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #222; }}
table {{ border-collapse: collapse; margin-bottom: 2em; }}
th, td {{ border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; }}
figure {{ display: inline-block; margin: 0 1em 1em 0; }}
img {{ max-width: 100%; }}
</style>
</head>
<body>
<h1>{_esc(title)}</h1>
<p>Generated {generated}. Times are seconds after the first submission.</p>
<h2>Summary</h2>
<table>
{summary_rows}
</table>
<h2>Best configurations</h2>
<table>
<tr><th>#</th><th>config id</th><th>budget</th><th>loss</th><th>configuration</th></tr>
{best_rows or '<tr><td colspan="5">no successful run yet</td></tr>'}
</table>
<h2>Figures</h2>
{figures}
</body>
</html>
"""


def _id(config_id: Any) -> str:
    return json.dumps(list(config_id)) if isinstance(config_id, tuple) else str(config_id)


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


__all__ = ["write_report", "write_result_report", "summary", "best_configurations", "render_html"]
