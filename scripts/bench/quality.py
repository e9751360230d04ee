"""Optimisation quality: BOHB vs Hyperband vs random search on multi-fidelity Branin and Hartmann6.

    python scripts/bench/quality.py [--seeds 10] [--iterations 16] [--workers 4]
                                    [--functions branin hartmann6]
                                    [--checkpoints 250 500 1000 1700]
                                    [--variant 'NAME={"min_points_in_model": 3}' ...]
                                    [--diagnose]

Everything runs through the real system: per function one ``LocalCluster`` (an embedded name
server and ``--workers`` worker processes whose ``compute`` does not sleep) is shared by every
seed and method; the masters are the front ends ``BOHB``, ``HyperBand`` and ``RandomSearch``
(min_budget=1, max_budget=27, eta=3), run one after another on the cluster's run id.

Equal total budget: BOHB and Hyperband run ``--iterations`` Hyperband iterations (16 = four
full cycles = 1,692 budget units); random search evaluates at max_budget and runs as many
iterations (4 configurations at 27 each) as it takes to spend at least as much.

"Time" is cumulative budget (the BOHB paper's measure when cost is proportional to budget): each
run's finished jobs are walked in order of finish time, their budgets summed, and the regret at
a checkpoint ``B`` is the best loss seen *at max_budget* among the jobs that finished before the
sum exceeded ``B``, minus the known optimum (``inf`` if no max-budget result came in by then).
The last checkpoint is clipped to the Hyperband total so every method is read at a budget it
actually spent.

Output (stdout, JSON lines):

- one ``{"bench": "quality", "function", "method", "checkpoint", "median", "q25", "q75",
  "seeds", ...}`` line per (function, method, checkpoint), regrets over seeds;
- one ``{"bench": "quality_summary", "function", "bohb_median", "random_median",
  "bohb_below_random", "factor", ...}`` line per function (factor = random / BOHB median regret at
  the last checkpoint; > 1 means BOHB is better);
- with ``--diagnose``, one ``{"bench": "quality_bohb_model", ...}`` line per (function, BOHB
  method) with how many configurations were model-based picks, and at which model budget;
- a final ``{"bench": "quality_wall", "wall_s": ...}`` line.

``--variant NAME=JSON`` adds a BOHB run with extra constructor arguments (e.g.
``'bohb_minbw0.03={"min_bandwidth": 0.03}'``), reported like the built-in methods. A readable
table goes to stderr at the end.

Noise: Hyperband and random search are exactly reproducible per seed (and share the seed's
configuration stream, so their numbers coincide early on). BOHB with more than one worker is
not: its model sees results in the order the workers return them, so the same seeds give
different runs, and the 10-seed BOHB median on Branin moves by several times between
repetitions. Use ``--seeds 30`` or more, or repeat the run, before reading small differences.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from ConfigSpace import ConfigurationSpace

from ultrarun.benchmarks import (BRANIN_OPTIMUM, HARTMANN6_OPTIMUM, branin, branin_space,
                                 hartmann6, hartmann6_space)
from ultrarun.frontends import BOHB, HyperBand, RandomSearch
from ultrarun.iterations import HyperBandIterGenerator
from ultrarun.job import Job, JobStatus
from ultrarun.local import LocalCluster
from ultrarun.master import Master
from ultrarun.worker import Worker

MIN_BUDGET, MAX_BUDGET, ETA = 1.0, 27.0, 3.0
DEFAULT_CHECKPOINTS = (250.0, 500.0, 1000.0, 1700.0)


# --------------------------------------------------------------------------------- workers
class BraninQualityWorker(Worker):
    """Multi-fidelity Branin at the job's budget; no sleeping, the loss is all that counts."""

    def __init__(self, *args: Any, max_budget: float = MAX_BUDGET, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_budget = max_budget

    def compute(self, config_id: Any, config: dict, budget: float, working_directory: str,
                **kwargs: Any) -> dict:
        return {"loss": branin(config, budget, self.max_budget), "info": {}}


class Hartmann6QualityWorker(BraninQualityWorker):
    """Multi-fidelity Hartmann6 at the job's budget."""

    def compute(self, config_id: Any, config: dict, budget: float, working_directory: str,
                **kwargs: Any) -> dict:
        return {"loss": hartmann6(config, budget, self.max_budget), "info": {}}


@dataclass(frozen=True)
class Problem:
    worker_class: type[Worker]
    space: Callable[[int | None], ConfigurationSpace]
    optimum: float


PROBLEMS: dict[str, Problem] = {
    "branin": Problem(BraninQualityWorker, branin_space, BRANIN_OPTIMUM),
    "hartmann6": Problem(Hartmann6QualityWorker, hartmann6_space, HARTMANN6_OPTIMUM),
}


# --------------------------------------------------------------------------------- methods
@dataclass
class Method:
    name: str
    front: type[Master]
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def is_bohb(self) -> bool:
        return self.front is BOHB


def hyperband_total_budget(iterations: int) -> float:
    """Budget units ``iterations`` Hyperband iterations spend when nothing fails."""
    gen = HyperBandIterGenerator(MIN_BUDGET, MAX_BUDGET, ETA)
    return float(sum(sum(n * b for n, b in zip(br.num_configs, br.budgets))
                     for br in (gen.bracket(i) for i in range(iterations))))


def random_search_iterations(total_budget: float) -> int:
    """Random-search iterations (s_max + 1 configs at max_budget each) to spend ``total_budget``."""
    per_iteration = (HyperBandIterGenerator(MIN_BUDGET, MAX_BUDGET, ETA).s_max + 1) * MAX_BUDGET
    return max(1, math.ceil(total_budget / per_iteration))


@dataclass
class RunRecord:
    """What one (function, method, seed) run left behind."""

    regrets: list[float]  # per checkpoint
    budget_used: float
    jobs: int
    failed: int
    model_picks: int = 0
    configs: int = 0
    model_budgets: Counter = field(default_factory=Counter)
    first_model_pick_at: float | None = None  # cumulative budget when the first model pick ran


def regret_at_checkpoints(jobs: Sequence[Job], optimum: float,
                          checkpoints: Sequence[float]) -> tuple[list[float], float]:
    """Regret of the max-budget incumbent at each cumulative-budget checkpoint, and the total."""
    ordered = sorted(jobs, key=lambda j: j.timestamps.get("finished", math.inf))
    best = math.inf
    used = 0.0
    regrets: list[float] = []
    pending = sorted(checkpoints)
    for job in ordered:
        budget = float(job.kwargs["budget"])
        while pending and used + budget > pending[0]:
            regrets.append(best - optimum)
            pending.pop(0)
        used += budget
        if (job.status is JobStatus.SUCCESS and job.result is not None
                and math.isclose(budget, MAX_BUDGET) and job.result["loss"] < best):
            best = float(job.result["loss"])
    regrets.extend(best - optimum for _ in pending)
    return regrets, used


def run_one(cluster: LocalCluster, problem: Problem, method: Method, seed: int,
            n_iterations: int, checkpoints: Sequence[float]) -> RunRecord:
    master = method.front(problem.space(seed), run_id=cluster.run_id, min_budget=MIN_BUDGET,
                          max_budget=MAX_BUDGET, eta=ETA, seed=seed,
                          nameserver=cluster.nameserver.host,
                          nameserver_port=cluster.nameserver_port, secret=cluster.secret,
                          working_directory=cluster.working_directory, show_progress=False,
                          **method.kwargs)
    try:
        result = master.run(n_iterations=n_iterations, min_n_workers=cluster.n_workers)
    finally:
        master.shutdown(shutdown_workers=False)
    jobs = list(master.jobs)
    regrets, used = regret_at_checkpoints(jobs, problem.optimum, checkpoints)
    record = RunRecord(regrets=regrets, budget_used=used, jobs=len(jobs),
                       failed=sum(1 for j in jobs if j.status.failed))
    if method.is_bohb:
        id2conf = result.get_id2config_mapping()
        record.configs = len(id2conf)
        for info in (c.get("config_info") or {} for c in id2conf.values()):
            if info.get("model_based_pick"):
                record.model_picks += 1
                record.model_budgets[float(info.get("model_budget", math.nan))] += 1
        cumulative = 0.0
        seen: set[tuple] = set()
        for job in sorted(jobs, key=lambda j: j.timestamps.get("finished", math.inf)):
            cumulative += float(job.kwargs["budget"])
            cid = tuple(job.id)
            if cid in seen:
                continue
            seen.add(cid)
            if job.kwargs.get("config_info", {}).get("model_based_pick"):
                record.first_model_pick_at = cumulative
                break
    return record


# --------------------------------------------------------------------------------- statistics
def quantile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation quantile that copes with ``inf`` (numpy gives nan for inf - inf)."""
    xs = sorted(values)
    if not xs:
        return math.nan
    pos = q * (len(xs) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    if lo == hi or xs[lo] == xs[hi]:
        return xs[lo]
    if math.isinf(xs[hi]):
        return math.inf
    return xs[lo] + (pos - lo) * (xs[hi] - xs[lo])


def _num(x: float) -> float | str:
    """JSON has no inf: write it as the string "inf"."""
    return "inf" if math.isinf(x) else float(f"{x:.6g}")


# --------------------------------------------------------------------------------- main
def parse_variant(text: str) -> Method:
    name, sep, spec = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"--variant needs NAME=JSON, got {text!r}")
    try:
        kwargs = json.loads(spec)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"--variant {name}: bad JSON: {exc}") from exc
    if not isinstance(kwargs, dict):
        raise argparse.ArgumentTypeError(f"--variant {name}: JSON must be an object")
    return Method(name, BOHB, kwargs)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=10, help="seeds 0..N-1 (default 10)")
    parser.add_argument("--iterations", type=int, default=16,
                        help="Hyperband iterations for BOHB and Hyperband (default 16)")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--functions", nargs="+", default=list(PROBLEMS), choices=list(PROBLEMS))
    parser.add_argument("--checkpoints", type=float, nargs="+", default=list(DEFAULT_CHECKPOINTS),
                        help="cumulative budgets to report; the last is clipped to the "
                             "Hyperband total")
    parser.add_argument("--methods", nargs="+", default=["bohb", "hyperband", "random"],
                        choices=["bohb", "hyperband", "random"])
    parser.add_argument("--variant", type=parse_variant, action="append", default=[],
                        metavar="NAME=JSON", help="extra BOHB run with these constructor kwargs")
    parser.add_argument("--diagnose", action="store_true",
                        help="also print how many BOHB configs were model-based picks")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    started = time.monotonic()
    total = hyperband_total_budget(args.iterations)
    checkpoints = sorted({min(c, total) for c in args.checkpoints})
    rs_iterations = random_search_iterations(total)
    builtin = {"bohb": Method("bohb", BOHB), "hyperband": Method("hyperband", HyperBand),
               "random": Method("random", RandomSearch)}
    methods = [builtin[m] for m in args.methods] + list(args.variant)
    table: dict[tuple[str, str], list[float]] = {}

    for fname in args.functions:
        problem = PROBLEMS[fname]
        records: dict[str, list[RunRecord]] = {m.name: [] for m in methods}
        t0 = time.monotonic()
        with LocalCluster(n_workers=args.workers, worker_class=problem.worker_class,
                          worker_kwargs={"max_budget": MAX_BUDGET}) as cluster:
            for seed in range(args.seeds):
                for method in methods:
                    n_iter = rs_iterations if method.front is RandomSearch else args.iterations
                    records[method.name].append(
                        run_one(cluster, problem, method, seed, n_iter, checkpoints))
        elapsed = time.monotonic() - t0
        for method in methods:
            recs = records[method.name]
            for k, checkpoint in enumerate(checkpoints):
                values = [r.regrets[k] for r in recs]
                median = quantile(values, 0.5)
                table[(fname, method.name, checkpoint)] = median  # type: ignore[index]
                print(json.dumps({
                    "bench": "quality", "function": fname, "method": method.name,
                    "checkpoint": checkpoint, "median": _num(median),
                    "q25": _num(quantile(values, 0.25)), "q75": _num(quantile(values, 0.75)),
                    "seeds": len(values),
                    "mean_budget_used": round(sum(r.budget_used for r in recs) / len(recs), 1),
                    "kwargs": method.kwargs or None}), flush=True)
            if args.diagnose and method.is_bohb:
                budgets: Counter = Counter()
                for r in recs:
                    budgets.update(r.model_budgets)
                firsts = [r.first_model_pick_at for r in recs if r.first_model_pick_at is not None]
                print(json.dumps({
                    "bench": "quality_bohb_model", "function": fname, "method": method.name,
                    "kwargs": method.kwargs or None,
                    "configs_per_run": sum(r.configs for r in recs) / len(recs),
                    "model_picks_per_run": sum(r.model_picks for r in recs) / len(recs),
                    "model_fraction": round(sum(r.model_picks for r in recs)
                                            / max(1, sum(r.configs for r in recs)), 3),
                    "model_budget_counts": {str(b): n for b, n in sorted(budgets.items())},
                    "median_budget_at_first_model_pick": (quantile(firsts, 0.5) if firsts
                                                          else None),
                    "runs_without_model_pick": len(recs) - len(firsts)}), flush=True)
        last = checkpoints[-1]
        if "bohb" in records and "random" in records:
            b = quantile([r.regrets[-1] for r in records["bohb"]], 0.5)
            rnd = quantile([r.regrets[-1] for r in records["random"]], 0.5)
            factor = rnd / b if b > 0 else math.inf
            print(json.dumps({
                "bench": "quality_summary", "function": fname, "checkpoint": last,
                "bohb_median": _num(b), "random_median": _num(rnd),
                "bohb_below_random": b < rnd, "factor": _num(factor),
                "variants": {v.name: _num(quantile([r.regrets[-1] for r in records[v.name]], 0.5))
                             for v in args.variant},
                "wall_s": round(elapsed, 1)}), flush=True)

    wall = time.monotonic() - started
    print(json.dumps({"bench": "quality_wall", "wall_s": round(wall, 1), "seeds": args.seeds,
                      "iterations": args.iterations, "random_iterations": rs_iterations,
                      "workers": args.workers, "total_budget": total}), flush=True)
    _print_table(table, args.functions, [m.name for m in methods], checkpoints)


def _print_table(table: dict, functions: Sequence[str], methods: Sequence[str],
                 checkpoints: Sequence[float]) -> None:
    """Median regret per (function, method) and checkpoint, human-readable, on stderr."""
    header = f"{'function':<10} {'method':<16}" + "".join(f"{c:>12g}" for c in checkpoints)
    lines = ["median regret at cumulative budget", header]
    for fname in functions:
        for m in methods:
            cells = "".join(f"{table[(fname, m, c)]:>12.4g}" for c in checkpoints)
            lines.append(f"{fname:<10} {m:<16}{cells}")
    print("\n".join(lines), file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
