"""scripts/bench/quality.py combines runs saved in several sittings (``--save`` / ``--load``):
the peers' runs with ultrarun's re-run rows, 1-worker runs with 16-worker ones. A combined table
must count each (problem, method, seed) once and keep runs with different worker counts apart."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
QUALITY = ROOT / "scripts" / "bench" / "quality.py"


def quality(*argv: str) -> tuple[list[dict], str]:
    """Run quality.py on a tiny Branin budget; its JSON lines and its stderr."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, str(QUALITY), "--problems", "branin", "--seeds", "0-1",
         "--total-budget", "120", "--jobs", "1", *argv],
        capture_output=True, text=True, env=env, timeout=300, check=True)
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return lines, proc.stderr


def seeds_per_method(lines: list[dict]) -> dict[str, int]:
    return {row["method"]: row["seeds"] for row in lines
            if row["bench"] == "quality" and row["fraction"] == 1.0}


def test_loading_a_sitting_beside_its_rerun_counts_each_seed_once(tmp_path):
    saved = tmp_path / "ultrarun.jsonl"
    quality("--methods", "default", "random", "--save", str(saved))
    lines, err = quality("--methods", "default", "--load", str(saved))
    # default was re-run: its fresh runs replace the loaded ones; random comes from the file
    assert seeds_per_method(lines) == {"default": 2, "random": 2}
    assert "replaced" in err


def test_runs_on_other_worker_counts_keep_their_own_name_when_combined(tmp_path):
    parallel = tmp_path / "w16.jsonl"
    saved, _ = quality("--methods", "default", "--workers", "16", "--save", str(parallel))
    assert {run["method"] for run in saved if run["bench"] == "quality_run"} == {"default@16"}
    lines, _ = quality("--methods", "default", "--load", str(parallel))
    assert seeds_per_method(lines) == {"default": 2, "default@16": 2}
    tests = {row["method"]: row for row in lines if row["bench"] == "quality_test"}
    assert set(tests) == {"default@16"}  # compared with the one-worker default


def test_a_file_saved_before_the_worker_suffix_is_read_by_its_workers_field(tmp_path):
    parallel = tmp_path / "old.jsonl"
    saved, _ = quality("--methods", "default", "--workers", "16")
    old = [dict(run, method="default") for run in saved if run["bench"] == "quality_run"]
    parallel.write_text("".join(json.dumps(run) + "\n" for run in old))
    lines, _ = quality("--methods", "default", "--load", str(parallel))
    assert seeds_per_method(lines) == {"default": 2, "default@16": 2}


def test_combine_keeps_the_last_run_of_each_key_whatever_the_order():
    """Fuzzed: any sequence of saved runs combines to one run per (problem, method, seed), the
    last one given, with runs on W != 1 workers named method@W."""
    import importlib.util

    from hypothesis import given, settings
    from hypothesis import strategies as st

    spec = importlib.util.spec_from_file_location("bench_quality", QUALITY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    run = st.fixed_dictionaries({
        "problem": st.sampled_from(["branin", "gb_diabetes"]),
        "method": st.sampled_from(["default", "bohb", "default@4", "optuna_tpe_hb"]),
        "seed": st.integers(0, 3), "workers": st.sampled_from([1, 4, 16]),
        "trace": st.just([])})

    @settings(max_examples=300, deadline=None)
    @given(st.lists(run, max_size=40))
    def check(runs):
        combined = module.combine(runs)
        keys = [(r["problem"], r["method"], r["seed"]) for r in combined]
        assert len(keys) == len(set(keys))
        expected = {}
        for r in runs:
            name = r["method"] if r["workers"] == 1 or "@" in r["method"] \
                else f"{r['method']}@{r['workers']}"
            expected[r["problem"], name, r["seed"]] = r
        assert {k: r["seed"] for k, r in zip(keys, combined)} == \
            {k: r["seed"] for k, r in expected.items()}
        assert all(r is expected[k] or r == dict(expected[k], method=k[1])
                   for k, r in zip(keys, combined))

    check()


def test_a_missing_load_file_is_refused_before_anything_runs(tmp_path):
    missing = tmp_path / "peers.jsonl"
    proc = subprocess.run([sys.executable, str(QUALITY), "--load", str(missing)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert f"--load {missing}: no such file" in proc.stderr
    assert '"bench": "quality_run"' not in proc.stdout
