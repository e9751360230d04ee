"""Plot and tabulate scale.py's JSON lines (one file per W, or all in one).

    python scripts/bench/scale_plot.py w16.jsonl w64.jsonl w256.jsonl w1000.jsonl
                                       [-o docs/scale.png]

Draws utilisation (with the zero-overhead bound of synchronous Hyperband), jobs per second
(with W / D, what keeps every worker busy), CPU per job, and discovery / first-job times against
W, for ultrarun and HpBandSter 0.7.4 measured in the same sitting; prints the Markdown table
that docs/benchmarks.md shows.
"""
from __future__ import annotations

import argparse
import json
from collections import defaultdict


def load(paths: list[str]) -> list[dict]:
    rows = []
    for path in paths:
        with open(path) as fh:
            rows += [json.loads(line) for line in fh if line.startswith("{")]
    rows = [r for r in rows if r.get("bench") == "scale"]
    from scale import simulate
    from ultrarun.iterations import HyperBandIterGenerator
    for r in rows:  # Hyperband's bound, simulated here (HpBandSter's with its bracket sizes)
        if r["run"] == "hyperband":
            formula = ("hpbandster" if r.get("peer") == "hpbandster"
                       else r.get("bracket_formula", "paper"))
            r.update(simulate(HyperBandIterGenerator(1, 27, 3, formula), r["iterations"],
                              r["workers"], r["job_s"]))
    return rows


def table(rows: list[dict]) -> str:
    head = ("| W (procs) | run | side | utilisation (bound) | jobs/s (needed) | master / dispatcher "
            "/ process CPU ms per job | discovery s | first job s | RSS KB / fds per worker, "
            "threads | load |")
    out = [head, "|" + " --- |" * (head.count("|") - 1)]
    for r in sorted(rows, key=lambda r: (r["workers"], r["run"], r.get("peer", ""))):
        bound = f" ({100 * r['bound']:.1f}%)" if r.get("bound") else ""
        cpu = (f"{r['master_cpu_ms_per_job']:.2f} / {r['dispatcher_cpu_ms_per_job']:.2f} / "
               f"{r['process_cpu_ms_per_job']:.2f}")
        out.append(
            f"| {r['workers']} ({r['procs']}) | {r['run']} | {r.get('peer', 'ultrarun')} | "
            f"{100 * r['utilisation']:.1f}%{bound} | {r['jobs_per_s']:.1f} "
            f"({r['needed_jobs_per_s']:.0f}) | {cpu} | {r['discovery_s']:.3f} | "
            f"{r['first_job_s']:.3f} | {r['rss_kb_per_worker']:.1f} / {r['fds_per_worker']:.2f}, "
            f"{r['threads']} | {r.get('load_before', 0):.2f} |")
    return "\n".join(out)


def plot(rows: list[dict], path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[tuple, list[tuple]] = defaultdict(list)
    for r in rows:
        series[(r.get("peer", "ultrarun"), r["run"])].append((r["workers"], r))
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    styles = {"ultrarun": "-o", "hpbandster": "--s"}

    def draw(ax, field, scale=1.0, label_suffix="", only=None):
        for (peer, run), points in sorted(series.items()):
            if only and run not in only:
                continue
            points.sort(key=lambda p: p[0])
            xs = [w for w, _ in points]
            ys = [scale * r[field] for _, r in points if r.get(field) is not None]
            if len(ys) == len(xs):
                ax.plot(xs, ys, styles.get(peer, "-"), label=f"{peer} {run}{label_suffix}")

    ax = axes[0][0]
    draw(ax, "utilisation", 100)
    hb = sorted((w, r) for (peer, run), pts in series.items() if peer == "ultrarun"
                and run == "hyperband" for w, r in pts)
    if hb:
        ax.plot([w for w, _ in hb], [100 * r["bound"] for _, r in hb], ":k",
                label="Hyperband, zero-overhead bound")
    ax.set_title("utilisation (%)")
    ax = axes[0][1]
    draw(ax, "jobs_per_s", only=("asha", "random"))
    needed = sorted({(r["workers"], r["needed_jobs_per_s"]) for r in rows})
    ax.plot([w for w, _ in needed], [n for _, n in needed], ":k", label="W / D (all busy)")
    ax.set_yscale("log")
    ax.set_title("jobs per second (time-bounded runs)")
    ax = axes[1][0]
    draw(ax, "process_cpu_ms_per_job", only=("asha", "hyperband", "random"))
    for (peer, run), points in sorted(series.items()):
        if peer == "ultrarun" and run == "asha":
            points.sort(key=lambda p: p[0])
            ax.plot([w for w, _ in points], [r["master_cpu_ms_per_job"] for _, r in points],
                    "-^", label="ultrarun asha: master threads")
            ax.plot([w for w, _ in points], [r["dispatcher_cpu_ms_per_job"] for _, r in points],
                    "-v", label="ultrarun asha: dispatcher threads")
    ax.set_title("master process CPU per job (ms)")
    ax = axes[1][1]
    for (peer, run), points in sorted(series.items()):
        points.sort(key=lambda p: p[0])
        if run == "asha" or (peer == "hpbandster" and run == "hyperband"):
            ax.plot([w for w, _ in points], [r["discovery_s"] for _, r in points],
                    styles.get(peer, "-"), label=f"{peer}: discovery after the last worker "
                                                 "registered")
        if run in ("asha", "hyperband") and peer == "ultrarun":
            ax.plot([w for w, _ in points], [r["first_job_s"] for _, r in points], "-x",
                    label=f"{peer} {run}: run() to first job")
    ax.set_yscale("symlog", linthresh=0.01)
    ax.set_title("seconds")
    for ax in (a for row in axes for a in row):
        ax.set_xscale("log")
        ax.set_xticks(sorted({r["workers"] for r in rows}))
        ax.set_xticklabels([str(w) for w in sorted({r["workers"] for r in rows})])
        ax.set_xlabel("workers W")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    job_s = sorted({r["job_s"] for r in rows})
    fig.suptitle(f"W worker threads, {', '.join(map(str, job_s))} s jobs, one master "
                 "(2-core VM, ultrarun and HpBandSter 0.7.4 in the same sitting)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+")
    parser.add_argument("-o", "--output", default="docs/scale.png")
    args = parser.parse_args()
    rows = load(args.files)
    print(table(rows))
    plot(rows, args.output)


if __name__ == "__main__":
    main()
