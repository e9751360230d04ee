"""HpBandSter 0.7.4's own example_1 on HpBandSter and, unchanged, on ultrarun's drop-in.

    python scripts/bench/hpbandster_example1.py --hpbandster-python /tmp/peers/hpbandster/bin/python \
        [--repeats 3] [--n_iterations 4]

The example file is the one installed with HpBandSter in that interpreter's environment
(``hpbandster/examples/example_1_local_sequential.py``, with its ``commons.py`` worker: budgets
9..243, eta 3, one worker thread, BOHB). It runs once per repeat under HpBandSter, then under
this Python with ``ultrarun.compat.hpbandster.install()`` active, so not a line of it changes;
both use a free port through ``PYRO_NS_PORT`` (the example asks for port=None). Prints one JSON
line per run (runs, incumbent loss on the largest budget, wall time of the example) and a summary
line per side (medians) and the wall-time ratio to HpBandSter. Without ``--hpbandster-python`` (or when it is absent)
there is no example to run and the script says so.

With ``--drive SIDE EXAMPLE`` the script is the driver that runs the example (this is how it is
started under each interpreter; standard library only at import time).
"""
from __future__ import annotations

import argparse
import json
import os
import runpy
import socket
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

HERE = Path(__file__).resolve()
ROOT = HERE.parents[2]


def emit(**fields) -> None:
    print(json.dumps(fields), flush=True)


def drive(side: str, example: str, argv: list[str]) -> None:
    """Run ``example`` as __main__ and report on the ``res`` it leaves behind."""
    if side == "ultrarun":
        import ultrarun.compat.hpbandster as drop_in

        drop_in.install()
        import hpbandster  # noqa: F401  (the drop-in, now)

        examples = types.ModuleType("hpbandster.examples")  # the example's own commons.py
        examples.__path__ = [os.path.dirname(example)]
        sys.modules["hpbandster.examples"] = examples
    sys.argv = [example, *argv]
    t0 = time.perf_counter()
    scope = runpy.run_path(example, run_name="__main__")
    wall = time.perf_counter() - t0
    res = scope["res"]
    incumbent = res.get_incumbent_id()
    emit(bench="example_1", side=side, runs=len(res.get_all_runs()),
         configs=len(res.get_id2config_mapping()),
         incumbent_loss=res.get_runs_by_id(incumbent)[-1].loss, wall_s=round(wall, 3))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_side(python: str, side: str, example: str, argv: list[str]) -> dict:
    env = dict(os.environ, PYRO_NS_PORT=str(free_port()))
    if side == "hpbandster":
        env.pop("PYTHONPATH", None)
    else:
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    proc = subprocess.run([python, str(HERE), "--drive", side, example, *argv], env=env,
                          capture_output=True, text=True, timeout=900)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{side} run failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return json.loads(lines[-1])


def main() -> None:
    if len(sys.argv) > 3 and sys.argv[1] == "--drive":
        drive(sys.argv[2], sys.argv[3], sys.argv[4:])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hpbandster-python", help="interpreter with hpbandster 0.7.4 installed")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n_iterations", type=int, default=4)
    args = parser.parse_args()
    peer = args.hpbandster_python
    if not peer or not os.path.exists(peer):
        emit(bench="example_1", skipped="no --hpbandster-python given (or it does not exist): "
             "example_1 ships with HpBandSter")
        return
    example = subprocess.run(  # the file, not the module: importing it would run it
        [peer, "-c", "import os, hpbandster; print(os.path.join(os.path.dirname("
         "hpbandster.__file__), 'examples', 'example_1_local_sequential.py'))"],
        capture_output=True, text=True, check=True,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    path = example.stdout.strip().splitlines()[-1]
    argv = ["--n_iterations", str(args.n_iterations)]
    rows: dict[str, list[dict]] = {"hpbandster": [], "ultrarun": []}
    for _ in range(args.repeats):  # interleaved, so both sides see the same machine load
        for side, python in (("hpbandster", peer), ("ultrarun", sys.executable)):
            row = run_side(python, side, path, argv)
            emit(**row)
            rows[side].append(row)
    summary = {side: {"runs": statistics.median(r["runs"] for r in rs),
                      "incumbent_loss": statistics.median(r["incumbent_loss"] for r in rs),
                      "wall_s": statistics.median(r["wall_s"] for r in rs)}
               for side, rs in rows.items()}
    for side, values in summary.items():
        emit(bench="example_1_summary", side=side, repeats=args.repeats, **values)
    # no loss ratio: the example's losses are noisy and near 0, so a ratio says nothing
    emit(bench="example_1_ratio", baseline="hpbandster",
         wall_s=round(summary["ultrarun"]["wall_s"] / summary["hpbandster"]["wall_s"], 3))


if __name__ == "__main__":
    main()
