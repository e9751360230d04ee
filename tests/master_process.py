"""A master in a process of its own, for the tests that kill it (tests/test_results.py).

    python tests/master_process.py DIRECTORY [--block-in results.json|statuses.json --at N]
                                             [--resume]

Runs one Hyperband iteration (budgets 1, 3, 9) of a known loss on one thread, with the journal
and the result logs (``DIRECTORY/logs``) in DIRECTORY. With ``--block-in FILE --at N``, the
result logger blocks for good before it writes the N-th line of FILE, after touching
``DIRECTORY/blocked``: the result is in the journal and not (wholly) in the logs, the moment a
crash there leaves behind. The test then kills the process.
"""
from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

from ConfigSpace import ConfigurationSpace, Float

from ultrarun.iterations import HyperBandIterGenerator
from ultrarun.master import Master
from ultrarun.optimizers import RandomSearch
from ultrarun.results import json_result_logger
from ultrarun.runners import TargetFunctionRunner, ThreadRunner


def loss(config: dict, budget: float) -> float:
    """Known from the configuration and the budget, so logged results can be checked."""
    return round((config["x"] - 0.3) ** 2 + 1.0 / budget, 12)


class BlockingLogger(json_result_logger):
    def __init__(self, directory: Path, block_in: str | None, at: int, marker: Path):
        super().__init__(directory)
        self.block_in, self.at, self.marker, self.lines = block_in, at, marker, 0

    def _append(self, path: Path, record: list) -> None:
        if path.name == self.block_in:
            self.lines += 1
            if self.lines == self.at:
                self.marker.touch()
                threading.Event().wait()  # until killed
        super()._append(path, record)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("directory", type=Path)
    parser.add_argument("--block-in")
    parser.add_argument("--at", type=int, default=0)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    space = ConfigurationSpace(seed=0, space=[Float("x", (0.0, 1.0))])
    runner = ThreadRunner(TargetFunctionRunner(loss), n_workers=1)
    logs = BlockingLogger(args.directory / "logs", args.block_in, args.at,
                          args.directory / "blocked")
    master = Master("killed", RandomSearch(space, seed=0), HyperBandIterGenerator(1, 9, 3),
                    executor=runner, working_directory=args.directory, result_logger=logs,
                    existing="resume" if args.resume else "refuse", show_progress=False)
    with master:
        master.run(n_iterations=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
