"""Optimisation quality: ultrarun's optimizers against each other and against the peers.

    python scripts/bench/quality.py [--problems branin hartmann6 counting_ones sgd_digits]
        [--seeds 0-9] [--workers 1] [--methods default bohb tpe ...]
        [--variant 'NAME={"optimizer": "bohb", "min_bandwidth": 0.1}' ...]
        [--peer optuna=/tmp/peers/optuna/bin/python ...] [--jobs 2]
        [--save runs.jsonl] [--load runs.jsonl ...] [--markdown out.md] [--plots docs/img]

Problems (``problems.py``, shared with the peers' runners): multi-fidelity Branin and Hartmann6,
the mixed categorical/continuous counting-ones, scikit-learn's SGDClassifier on the digits
data, and its gradient boosting on the diabetes data (``gb_diabetes``, whose small budgets
mislead), all with budgets 1..27, eta 3. Every run gets the same total budget: what 16 Hyperband
iterations spend (1,692 units). A job costs its budget.

ultrarun's runs use the real optimizers and iteration generators (the ones ``Master`` drives),
with the master's loop played out in simulated time: ``--workers`` workers, a job at budget
``b`` takes ``b`` time units, results come back in order of finish time, a new job starts
whenever a worker is free (promotions are ``mark_running``, results are ``tell``). That makes each
run exactly reproducible per seed and independent of machine load, and 16 workers cost no more
than one. Peers run in their own venvs (``peers/<name>_peer.py``, one small runner each,
skipped when their python is absent), sequentially (one worker), with the same problems, seeds
and budget.

Measure: the regret of the incumbent among evaluations at the top budget (27), as a function of
the cumulative budget spent (each job is charged its budget, also a peer's partial evaluation of
a trial at a rung). sgd_digits' regret is against the best validation error any run found.

Output: one ``quality_run`` JSON line per run (the trace), then one ``quality`` line per
(problem, method, checkpoint) with median, quartiles and rank among the methods, and one
``quality_test`` line per (problem, method) comparing it with ``--reference`` (default
``default``) by a two-sided Mann-Whitney U test on the final regrets. ``--markdown`` writes the
tables, ``--plots`` a regret-over-budget PNG per problem.

Sittings combine: ``--save`` appends the runs to a file, ``--load`` reads them back beside this
invocation's (e.g. the peers' runs from one sitting with ultrarun's rows re-run in another; the
regret of a problem without a known optimum is then read against the best loss of all of them).
Runs on W workers are named ``method@W`` unless every run is on one worker, and a later run of
the same (problem, method, seed) replaces an earlier one (``combine``).
"""
from __future__ import annotations

import argparse
import heapq
import json
import math
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from problems import (ETA, MAX_BUDGET, MIN_BUDGET, PROBLEMS, Param, Problem, Trace,  # noqa: E402
                      best_at, hyperband_total_budget, parse_seeds)

CHECKPOINT_FRACTIONS = (0.25, 0.5, 1.0)
PEER_DEADLINE_S = 3600


# --------------------------------------------------------------------------- ultrarun methods
def configspace(params: Sequence[Param], seed: int) -> Any:
    from ConfigSpace import (Categorical, ConfigurationSpace, EqualsCondition, Float,
                             InCondition, Integer)

    space = ConfigurationSpace(seed=seed)
    for p in params:
        if p.kind == "float":
            space.add(Float(p.name, (p.low, p.high), log=p.log))
        elif p.kind == "int":
            space.add(Integer(p.name, (int(p.low), int(p.high)), log=p.log))
        else:
            space.add(Categorical(p.name, list(p.choices)))
    for p in params:
        if p.parent is not None:
            child, parent = space[p.name], space[p.parent]
            space.add(EqualsCondition(child, parent, p.parent_values[0])
                      if len(p.parent_values) == 1 else InCondition(child, parent,
                                                                   list(p.parent_values)))
    return space


def _optimizer(name: str, space: Any, seed: int, kwargs: dict) -> Any:
    from ultrarun import optimizers

    classes = {"random": optimizers.RandomSearch, "bohb": optimizers.BOHB,
               "tpe": getattr(optimizers, "TPE", None), "dehb": getattr(optimizers, "DEHB", None)}
    return classes[name](space, seed=seed, **kwargs)


def _generator(name: str) -> Any:
    from ultrarun.iterations import (AdaptiveIterGenerator, ASHAIterGenerator,
                                     CustomIterGenerator, HyperBandIterGenerator,
                                     SuccessiveHalvingIterGenerator)

    if name == "hyperband":
        return HyperBandIterGenerator(MIN_BUDGET, MAX_BUDGET, ETA)
    if name == "sh":
        return SuccessiveHalvingIterGenerator(MIN_BUDGET, MAX_BUDGET, ETA)
    if name == "asha":
        return ASHAIterGenerator(MIN_BUDGET, MAX_BUDGET, ETA)
    if name == "adaptive":
        return AdaptiveIterGenerator(MIN_BUDGET, MAX_BUDGET, ETA)
    if name == "full":  # random search's schedule: 4 configurations at the top budget
        return CustomIterGenerator([MAX_BUDGET], [4])
    raise ValueError(f"unknown iterations {name!r}")


#: name -> (optimizer, iterations, optimizer kwargs); "default" is what minimize() uses
METHODS: dict[str, tuple[str, str, dict]] = {
    "random": ("random", "full", {}),
    "hyperband": ("random", "hyperband", {}),
    "bohb": ("bohb", "hyperband", {}),
    "bohb_paper": ("bohb", "hyperband", {"min_bandwidth": 1e-3}),
    "bohb_asha": ("bohb", "asha", {}),
    "tpe": ("tpe", "hyperband", {}),
    "tpe_asha": ("tpe", "asha", {"fidelity": "rank"}),  # as the TPE front end on ASHA
    "tpe_sh": ("tpe", "sh", {}),
    "tpe_adaptive": ("tpe", "adaptive", {}),
    "dehb": ("dehb", "hyperband", {}),
}


def default_method() -> tuple[str, str, dict]:
    """What ``ultrarun.minimize`` runs by default (its method and iterations)."""
    from ultrarun.frontends import DEFAULT_ITERATIONS, DEFAULT_METHOD

    names = {"successive_halving": "sh", "hyperband": "hyperband", "asha": "asha",
             "adaptive": "adaptive"}
    return (DEFAULT_METHOD, names[DEFAULT_ITERATIONS], {})


def simulate(problem: Problem, optimizer: Any, generator: Any, n_workers: int,
             total_budget: float) -> tuple[Trace, dict]:
    """The master's loop in simulated time: start jobs while a worker is free and the budget
    lasts (new iterations when every running one waits), finish the earliest job, repeat."""
    trace = Trace(total_budget)
    iterations: list[Any] = []
    running: list[tuple[float, int, Any, tuple, dict, float]] = []  # heap by finish time
    started: set[tuple] = set()
    now, launched, counter, model_picks, configs = 0.0, 0.0, 0, 0, 0
    while True:
        if len(running) < n_workers and launched < total_budget:
            run = None
            for iteration in iterations:
                if not iteration.is_finished:
                    run = iteration.get_next_run()
                    if run is not None:
                        break
            if run is None and all(it.is_finished or it.is_blocked for it in iterations):
                fresh = generator.get_next_iteration(len(iterations), optimizer.ask)
                iterations.append(fresh)
                run = fresh.get_next_run()
            if run is not None:
                config_id, config, budget = run
                iteration = iterations[config_id[0]]
                if config_id in started:
                    optimizer.mark_running(config, budget)
                else:
                    started.add(config_id)
                    configs += 1
                    model_picks += bool(iteration.data[config_id].config_info.get(
                        "model_based_pick"))
                heapq.heappush(running, (now + budget, counter, iteration, config_id, config,
                                         budget))
                counter += 1
                launched += budget
                continue
        if not running:
            break
        now, _, iteration, config_id, config, budget = heapq.heappop(running)
        loss = trace.evaluate(problem, config, budget)
        iteration.register_result(config_id, budget, loss)
        optimizer.tell(config, loss, budget)
    return trace, {"configs": configs, "model_picks": model_picks, "time_units": now}


def run_ultrarun(task: tuple) -> str:
    """One (method, problem, seed) run; the ``quality_run`` JSON line."""
    method, spec, problem_name, seed, n_workers, total_budget = task
    opt_name, gen_name, kwargs = spec
    problem = PROBLEMS[problem_name]
    optimizer = _optimizer(opt_name, configspace(problem.params, seed), seed, dict(kwargs))
    t0 = time.process_time()
    trace, stats = simulate(problem, optimizer, _generator(gen_name), n_workers, total_budget)
    return json.dumps({"bench": "quality_run", "method": method, "problem": problem_name,
                       "seed": seed, "workers": n_workers, "spent": trace.spent,
                       "cpu_s": round(time.process_time() - t0, 2), **stats,
                       "trace": trace.evaluations})


# --------------------------------------------------------------------------- peers
def run_peer(name: str, python: str, argv: Sequence[str]) -> list[str]:
    """Run ``peers/<name>.py`` under the peer's python; its ``quality_run`` lines."""
    if not Path(python).exists():
        print(json.dumps({"bench": "quality_peer_skipped", "peer": name,
                          "reason": f"{python} not found"}), flush=True)
        return []
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    cmd = [python, str(HERE / "peers" / f"{name}_peer.py"), *argv]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=PEER_DEADLINE_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        out, _ = proc.communicate()
        print(json.dumps({"bench": "quality_peer_error", "peer": name,
                          "error": f"deadline of {PEER_DEADLINE_S} s hit"}), flush=True)
    lines = [line for line in out.splitlines() if line.startswith('{"bench": "quality_run"')]
    if proc.returncode:
        print(json.dumps({"bench": "quality_peer_error", "peer": name,
                          "error": f"exit status {proc.returncode}"}), flush=True)
    return lines


# --------------------------------------------------------------------------- statistics
def quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile that copes with ``inf``."""
    xs = sorted(values)
    pos = q * (len(xs) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    if lo == hi or xs[lo] == xs[hi]:
        return xs[lo]
    if math.isinf(xs[hi]):
        return math.inf
    return xs[lo] + (pos - lo) * (xs[hi] - xs[lo])


def _num(x: float) -> float | str:
    return "inf" if math.isinf(x) else float(f"{x:.4g}")


def summarise(runs: list[dict], total_budget: float, reference: str) -> dict:
    """Regrets per (problem, method) at each checkpoint, medians, ranks and tests."""
    from scipy.stats import mannwhitneyu

    checkpoints = [f * total_budget for f in CHECKPOINT_FRACTIONS]
    by: dict[str, dict[str, list[list[float]]]] = {}
    optimum: dict[str, float] = {}
    for run in runs:
        problem = PROBLEMS[run["problem"]]
        best = min((l for b, l in run["trace"] if l is not None and b >= MAX_BUDGET),
                   default=math.inf)
        optimum[run["problem"]] = min(optimum.get(run["problem"], math.inf), best) \
            if problem.optimum is None else problem.optimum
    for run in runs:
        regrets = [b - optimum[run["problem"]] for b in best_at(run["trace"], checkpoints)]
        by.setdefault(run["problem"], {}).setdefault(run["method"], []).append(regrets)
    out: dict = {"checkpoints": checkpoints, "problems": {}}
    for problem, methods in by.items():
        table: dict[str, Any] = {}
        for k, checkpoint in enumerate(checkpoints):
            medians = {m: quantile([r[k] for r in rs], 0.5) for m, rs in methods.items()}
            order = sorted(medians, key=lambda m: medians[m])
            for m, rs in methods.items():
                values = [r[k] for r in rs]
                rank = 1 + sum(medians[o] < medians[m] for o in order)
                table.setdefault(m, []).append({
                    "median": medians[m], "q25": quantile(values, 0.25),
                    "q75": quantile(values, 0.75), "rank": rank, "seeds": len(values)})
        tests = {}
        if reference in methods:
            ref = [r[-1] for r in methods[reference]]
            for m, rs in methods.items():
                if m == reference:
                    continue
                other = [r[-1] for r in rs]
                finite = [min(v, 1e300) for v in ref], [min(v, 1e300) for v in other]
                p = mannwhitneyu(*finite, alternative="two-sided").pvalue
                tests[m] = {"p": float(p), "reference_better": quantile(ref, 0.5)
                            < quantile(other, 0.5), "reference_at_or_below":
                            quantile(ref, 0.5) <= quantile(other, 0.5)}
        out["problems"][problem] = {"table": table, "tests": tests, "optimum": optimum[problem],
                                    "curves": _curves(methods, runs, problem, optimum[problem],
                                                      total_budget)}
    return out


def _curves(methods: dict, runs: list[dict], problem: str, optimum: float,
            total_budget: float) -> dict[str, list[tuple[float, float, float, float]]]:
    grid = [total_budget * i / 40 for i in range(1, 41)]
    curves = {}
    for m in methods:
        regrets = [[b - optimum for b in best_at(r["trace"], grid)] for r in runs
                   if r["problem"] == problem and r["method"] == m]
        curves[m] = [(g, quantile([r[i] for r in regrets], 0.5),
                      quantile([r[i] for r in regrets], 0.25),
                      quantile([r[i] for r in regrets], 0.75)) for i, g in enumerate(grid)]
    return curves


def markdown(summary: dict, reference: str) -> str:
    fractions = " | ".join(f"{int(f * 100)}% ({c:g})" for f, c in
                           zip(CHECKPOINT_FRACTIONS, summary["checkpoints"]))
    lines = []
    for problem, data in summary["problems"].items():
        lines += [f"**{problem}** (optimum {data['optimum']:.6g}; median regret [IQR], rank)", "",
                  f"| method | {fractions} | p vs {reference} |",
                  "| --- |" + " --- |" * (len(CHECKPOINT_FRACTIONS) + 1)]
        final = {m: cells[-1]["median"] for m, cells in data["table"].items()}
        for m in sorted(data["table"], key=lambda m: (final[m], m)):
            cells = " | ".join(f"{_fmt(c['median'])} [{_fmt(c['q25'])}–{_fmt(c['q75'])}] "
                               f"#{c['rank']}" for c in data["table"][m])
            test = data["tests"].get(m)
            p = "" if test is None else f"{test['p']:.3g}"
            name = f"**{m}**" if m == reference else m
            lines.append(f"| {name} | {cells} | {p} |")
        lines.append("")
    return "\n".join(lines)


def _fmt(x: float) -> str:
    return "inf" if math.isinf(x) else f"{x:.3g}"


def plot(summary: dict, directory: Path, reference: str) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for problem, data in summary["problems"].items():
        fig, ax = plt.subplots(figsize=(9, 4.4))
        for i, (m, curve) in enumerate(sorted(data["curves"].items())):
            xs = [c[0] for c in curve if math.isfinite(c[1])]
            med = [max(c[1], 1e-6) for c in curve if math.isfinite(c[1])]
            lw = 2.6 if m == reference else 1.3
            ours = m.split("@")[0] in METHODS or m.split("@")[0] == "default"
            line, = ax.plot(xs, med, label=m, linewidth=lw, linestyle="-" if ours else "--",
                            color="black" if m == reference else plt.cm.tab20(i % 20))
            lo = [max(c[2], 1e-6) for c in curve if math.isfinite(c[1])]
            hi = [max(c[3], 1e-6) if math.isfinite(c[3]) else max(med) for c in curve
                  if math.isfinite(c[1])]
            if m == reference:
                ax.fill_between(xs, lo, hi, alpha=0.2, color=line.get_color())
        ax.set_yscale("log")
        ax.set_xlabel("cumulative budget")
        ax.set_ylabel("median regret (IQR shaded for the reference)")
        ax.set_title(f"{problem}: regret of the incumbent at budget {MAX_BUDGET:g}")
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  title="dashed: peers", title_fontsize=7)
        fig.tight_layout()
        path = directory / f"quality-{problem}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
    return paths


# --------------------------------------------------------------------------- main
def combine(runs: list[dict]) -> list[dict]:
    """Runs from several sittings (``--load`` files, then this one's) as one set: a run on more
    than one worker is named ``method@W`` (files saved with ``--workers W`` alone named it
    ``method``), and of two runs of the same (problem, method, seed) the later one is kept, so a
    re-run replaces what a file holds instead of counting its seeds twice."""
    kept: dict[tuple, dict] = {}
    for run in runs:
        workers = run.get("workers", 1)
        if workers != 1 and "@" not in run["method"]:
            run = dict(run, method=f"{run['method']}@{workers}")
        kept[run["problem"], run["method"], run["seed"]] = run
    if len(kept) < len(runs):
        print(f"quality: {len(runs) - len(kept)} runs replaced by later runs of the same "
              f"problem, method and seed", file=sys.stderr)
    return list(kept.values())


def parse_variant(text: str) -> tuple[str, tuple[str, str, dict]]:
    name, sep, spec = text.partition("=")
    try:
        kwargs = json.loads(spec) if sep else None
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"--variant {name}: bad JSON: {exc}") from exc
    if not name or not isinstance(kwargs, dict) or "optimizer" not in kwargs:
        raise argparse.ArgumentTypeError(f"--variant needs NAME=JSON with an 'optimizer' key, "
                                         f"got {text!r}")
    kwargs = dict(kwargs)
    return name, (kwargs.pop("optimizer"), kwargs.pop("iterations", "hyperband"), kwargs)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=list(PROBLEMS))
    parser.add_argument("--seeds", type=parse_seeds, default=parse_seeds("0-9"),
                        help="e.g. 0-9 (default) or 0,3,5")
    parser.add_argument("--workers", type=int, nargs="+", default=[1],
                        help="simulated workers for ultrarun's runs; several values run each "
                             "method once per value; runs named method@W unless --workers 1")
    parser.add_argument("--methods", nargs="*", default=["default", "bohb", "tpe", "tpe_asha",
                                                          "bohb_asha", "dehb", "hyperband",
                                                          "random"])
    parser.add_argument("--variant", type=parse_variant, action="append", default=[],
                        metavar="NAME=JSON", help='extra ultrarun method, e.g. \'bw={"optimizer": '
                        '"bohb", "min_bandwidth": 0.1, "iterations": "asha"}\'')
    parser.add_argument("--peer", action="append", default=[], metavar="NAME=PYTHON",
                        help="run peers/NAME_peer.py with this interpreter (skipped if absent)")
    parser.add_argument("--jobs", type=int, default=2, help="processes for ultrarun's runs")
    parser.add_argument("--total-budget", type=float, default=hyperband_total_budget())
    parser.add_argument("--reference", default="default")
    parser.add_argument("--save", type=Path, help="append every quality_run line to this file")
    parser.add_argument("--load", type=Path, nargs="*", default=[],
                        help="also summarise the runs saved in these files (a run of the "
                             "same problem, method and seed here or in a later file replaces "
                             "it)")
    parser.add_argument("--markdown", type=Path)
    parser.add_argument("--plots", type=Path)
    args = parser.parse_args(argv)
    for path in args.load:
        if not path.is_file():
            parser.error(f"--load {path}: no such file")

    methods = dict(METHODS)
    methods["default"] = default_method() if "default" in args.methods else ("random", "full", {})
    methods.update(args.variant)
    chosen = list(args.methods) + [name for name, _ in args.variant]
    tasks = [(m if args.workers == [1] else f"{m}@{w}", methods[m], p, s, w, args.total_budget)
             for p in args.problems for m in chosen for s in args.seeds for w in args.workers]
    lines: list[str] = []
    for path in args.load:
        lines += [line for line in path.read_text().splitlines()
                  if line.startswith('{"bench": "quality_run"')]
    save = open(args.save, "a") if args.save else None
    started = time.monotonic()

    def keep(line: str) -> None:
        lines.append(line)
        print(line, flush=True)
        if save:
            save.write(line + "\n")
            save.flush()

    peer_args = ["--problems", *args.problems, "--seeds", ",".join(map(str, args.seeds)),
                 "--total-budget", str(args.total_budget)]
    with multiprocessing.get_context("spawn").Pool(max(1, args.jobs)) as pool:
        peers = [pool.apply_async(run_peer, (name, python, peer_args))
                 for name, _, python in (p.partition("=") for p in args.peer)]
        for line in pool.imap_unordered(run_ultrarun, tasks):
            keep(line)
        for job in peers:
            for line in job.get():
                keep(line)
    if save:
        save.close()
    runs = combine([json.loads(l) for l in lines])
    summary = summarise(runs, args.total_budget, args.reference)
    for problem, data in summary["problems"].items():
        for m, cells in data["table"].items():
            for frac, cell in zip(CHECKPOINT_FRACTIONS, cells):
                print(json.dumps({"bench": "quality", "problem": problem, "method": m,
                                  "fraction": frac, **{k: _num(v) if isinstance(v, float) else v
                                                       for k, v in cell.items()}}))
        for m, test in data["tests"].items():
            print(json.dumps({"bench": "quality_test", "problem": problem, "method": m,
                              "reference": args.reference, **test}))
    print(json.dumps({"bench": "quality_wall", "wall_s": round(time.monotonic() - started, 1),
                      "total_budget": args.total_budget, "seeds": len(args.seeds)}))
    text = markdown(summary, args.reference)
    print(text, file=sys.stderr)
    if args.markdown:
        args.markdown.write_text(text)
    if args.plots:
        for path in plot(summary, args.plots, args.reference):
            print(f"plot: {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
