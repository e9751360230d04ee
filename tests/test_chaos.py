"""The chaos script: its short run (every fault once: a worker killed, the dispatcher stopped,
silent and half-open connections held, the name server restarted, while 120 jobs run), and its
own accounting, checked against tampered records."""
from __future__ import annotations

import copy
import importlib.util
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT_DIR

SCRIPT = ROOT_DIR / "scripts" / "chaos.py"


def _chaos():
    spec = importlib.util.spec_from_file_location("chaos_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


chaos = _chaos()
JOBS, SLEEP = 60, 0.1


def _honest() -> list[dict]:
    """The records a perfect run leaves: every job once, with the loss its compute returns."""
    records = []
    for i in range(JOBS):
        config, budget = chaos.job_config(i, SLEEP)
        crash = config["crash"]
        records.append({"id": i, "status": "CRASHED" if crash else "SUCCESS", "attempt": 1,
                        "budget": budget,
                        "loss": None if crash else chaos.expected_loss(i, budget)})
    return records


FINAL = [{"holding": 0}, {"holding": 0}]


def test_the_accounting_passes_a_perfect_run():
    counts = chaos.account(JOBS, SLEEP, _honest(), FINAL, 0)
    assert counts == {"called_back": JOBS, "lost": 0, "duplicated": 0, "stuck_workers": 0,
                      "wrong": 0, "unexpected": 0, "ok": True}
    assert sum(r["status"] == "CRASHED" for r in _honest()) >= 2, "some are made to crash"


def _tamper(kind: str) -> tuple[list[dict], list, int]:
    records, final, said = _honest(), copy.deepcopy(FINAL), 0
    success = next(r for r in records if r["status"] == "SUCCESS")
    crashed = next(r for r in records if r["status"] == "CRASHED")
    if kind == "lost":
        records.remove(success)
    elif kind == "duplicated":
        records.append(dict(success, attempt=2))
    elif kind == "stuck":
        final[1]["holding"] = 1
    elif kind == "says_stuck":
        said = 1
    elif kind == "no_final_picture":
        final = None
    elif kind == "another_jobs_loss":
        success["loss"] = chaos.expected_loss(success["id"] + 1, success["budget"])
    elif kind == "another_budget":
        success["budget"] += 1
    elif kind in ("LOST", "CANCELLED", "CRASHED"):
        success.update(status=kind, loss=None)
    elif kind == "crash_that_succeeded":
        crashed.update(status="SUCCESS", loss=chaos.expected_loss(crashed["id"],
                                                                  crashed["budget"]))
    elif kind == "unknown_job":
        records.append(dict(success, id=JOBS + 5))
    return records, final, said


@pytest.mark.parametrize("kind, count", [
    ("lost", "lost"), ("duplicated", "duplicated"), ("stuck", "stuck_workers"),
    ("says_stuck", "stuck_workers"), ("no_final_picture", "stuck_workers"),
    ("another_jobs_loss", "wrong"), ("another_budget", "wrong"), ("LOST", "unexpected"),
    ("CANCELLED", "unexpected"), ("CRASHED", "unexpected"),
    ("crash_that_succeeded", "unexpected"), ("unknown_job", "unexpected"),
])
def test_the_accounting_flags_every_tampered_record_set(kind, count):
    """A mutation check of the chaos script's own count: each way a run can go wrong, put into
    an otherwise perfect record set, fails the run and shows in its own count."""
    counts = chaos.account(JOBS, SLEEP, *_tamper(kind))
    assert counts["ok"] is False, kind
    assert counts[count] != 0, (kind, counts)


@pytest.mark.slow
def test_chaos_short_every_job_once_right_nothing_stuck(tmp_path):
    """The short run: every job once, with its own loss and status, nothing stuck; the
    temporary directory is removed."""
    out = subprocess.run([sys.executable, str(SCRIPT), "--short", "--seconds", "150"],
                         capture_output=True, text=True, timeout=200,
                         env={**os.environ, "TMPDIR": str(tmp_path)})
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["faults"] == {"worker_killed": 1, "dispatcher_stopped": 1,
                                "connections_held": 1, "nameserver_restarted": 1}, report
    assert (report["called_back"], report["lost"], report["duplicated"],
            report["stuck_workers"], report["wrong"], report["unexpected"]) == (
        120, 0, 0, 0, 0, 0), report
    assert report["statuses"] == ["CRASHED", "SUCCESS"], "the jobs made to crash did"
    assert out.returncode == 0
    assert not list(tmp_path.glob("ultrarun-chaos-*")), "its temporary directory is removed"
