"""How long ``minimize(..., n_workers=4)`` takes on a trivial function, and how much of it is
starting the worker processes.

    python scripts/bench/minimize_startup.py [--repeat 3] [--workers 4]

Each repetition runs a fresh ``python script.py`` whose ``minimize`` runs one successive-halving
iteration (13 jobs, budgets 1..9) of ``(x - 0.3) ** 2``. Prints one JSON line per run: seconds
for the script's imports, for the ``minimize`` call, and (when the code logs it) until all
worker processes were up. Run it with ``PYTHONPATH`` pointing at the code to measure.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import emit

SCRIPT = """
import time
T0 = time.monotonic()
import json
from ConfigSpace import ConfigurationSpace, Float
from ultrarun import minimize


def f(config, budget):
    return (config["x"] - 0.3) ** 2


if __name__ == "__main__":
    cs = ConfigurationSpace(seed=1)
    cs.add(Float("x", (0.0, 1.0)))
    t1 = time.monotonic()
    result = minimize(f, cs, min_budget=1, max_budget=9, n_workers={workers}, n_iterations=1,
                      seed=1, show_progress=False)
    print(json.dumps({{"imports_s": round(t1 - T0, 2),
                      "minimize_s": round(time.monotonic() - t1, 2),
                      "runs": len(result.get_all_runs())}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as wd:
        script = Path(wd) / "trivial.py"
        script.write_text(SCRIPT.format(workers=args.workers))
        for _ in range(args.repeat):
            out = subprocess.run([sys.executable, str(script)], cwd=wd, capture_output=True,
                                 text=True, timeout=600, env=dict(os.environ))
            line = json.loads(out.stdout.strip().splitlines()[-1])
            up = re.search(r"worker processes up after ([\d.]+) s", out.stderr)
            emit(bench="minimize_startup", workers=args.workers,
                 workers_up_s=float(up.group(1)) if up else None,
                 load=round(os.getloadavg()[0], 1), **line)


if __name__ == "__main__":
    main()
