"""The chaos script's short run: every fault once (a worker killed, the dispatcher stopped,
silent and half-open connections held, the name server restarted) while 120 jobs run."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import ROOT_DIR

pytestmark = pytest.mark.slow


def test_chaos_short_every_job_once_nothing_stuck():
    out = subprocess.run([sys.executable, str(ROOT_DIR / "scripts" / "chaos.py"), "--short",
                          "--seconds", "150"], capture_output=True, text=True, timeout=200)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["faults"] == {"worker_killed": 1, "dispatcher_stopped": 1,
                                "connections_held": 1, "nameserver_restarted": 1}, report
    assert (report["called_back"], report["lost"], report["duplicated"],
            report["stuck_workers"]) == (120, 0, 0, 0), report
    assert out.returncode == 0
