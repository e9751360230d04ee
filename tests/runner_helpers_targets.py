"""Targets for the runner and evaluator tests: module level, so every backend can pickle them."""
from __future__ import annotations

import os
import signal
import time
from typing import Any

import numpy as np

from ultrarun.errors import TargetAlgorithmAbortException

_DEADLINE = 30.0  # no helper waits longer than this, whatever the test does


def quadratic(config: Any, seed: int | None = None) -> float:
    """The cost is a known function of the configuration, so results can be matched."""
    return float((config["x"] - 0.5) ** 2 + config.get("n", 0))


def with_info(config: Any) -> tuple[float, dict[str, Any]]:
    return float(config["x"]), {"pid": os.getpid(), "score": np.float32(0.5)}


def as_dict(config: Any) -> dict[str, Any]:
    return {"loss": config["x"], "info": {"twice": 2 * config["x"]}}


def multi_objective(config: Any) -> list[float]:
    return [config["x"], 1.0 - config["x"]]


def raises(config: Any) -> float:
    raise ValueError(f"bad x={config['x']}")


def returns_nan(config: Any) -> float:
    return float("nan")


def aborts(config: Any) -> float:
    raise TargetAlgorithmAbortException("stop everything")


def sleeps(config: Any) -> float:
    time.sleep(config.get("sleep", 0.01))
    return float(config.get("x", 0.0))


def allocates(config: Any) -> float:
    """Allocates ``mb`` megabytes: meant to hit a memory limit."""
    block = bytearray(config["mb"] * 1024 * 1024)
    return float(len(block))


def kills_itself(config: Any) -> float:
    """Dies by SIGKILL, as if the OOM killer or an operator had killed the process."""
    os.kill(os.getpid(), signal.SIGKILL)
    return 0.0


def wait_for_kill(config: Any) -> float:
    """First attempt: write our pid and wait to be killed. Later attempts: succeed at once.

    ``config['dir']`` holds the pid file; the attempt count is the number of pid files.
    """
    directory = config["dir"]
    attempt = len([n for n in os.listdir(directory) if n.startswith("pid")]) + 1
    with open(os.path.join(directory, f"pid{attempt}.tmp"), "w") as stream:
        stream.write(str(os.getpid()))
    os.replace(os.path.join(directory, f"pid{attempt}.tmp"), os.path.join(directory, f"pid{attempt}"))
    if attempt == 1:
        deadline = time.monotonic() + _DEADLINE
        while time.monotonic() < deadline:
            time.sleep(0.01)
    return float(attempt)


def noop(config: Any) -> float:
    return 0.0


def branin_target(config, budget):
    """Multi-fidelity Branin as a runner target (for the master-over-runner tests)."""
    from ultrarun.benchmarks import branin

    return branin(config, budget, max_budget=9.0)


def branin_crashing_left(config, budget):
    """Branin, but a crash for the left third of the space (x1 < 0)."""
    if config["x1"] < 0:
        raise ValueError(f"crash on purpose: x1={config['x1']:.3f} < 0")
    return branin_target(config, budget)


def counts_and_raises(config: Any) -> float:
    """Appends a line to the file ``config["tally"]`` at every call, then crashes."""
    with open(config["tally"], "a") as fh:
        fh.write(f"{os.getpid()}\n")
    raise ValueError("crash on purpose")


def contract(config: Any, budget: float = 1.0) -> float:
    """The executor contract suite's job: notes its start in ``config["tally"]`` (a file), then
    sleeps ``config["sleep"]`` s, crashes if ``config["crash"]``, else returns x * budget."""
    if "tally" in config:
        with open(config["tally"], "a") as fh:
            fh.write(f"{config.get('x')} {os.getpid()}\n")
    if config.get("sleep"):
        time.sleep(config["sleep"])
    if config.get("crash"):
        raise ValueError("crash on purpose")
    return float(config["x"]) * float(budget)


def spawns_sleep(config: Any) -> float:
    """Starts ``sleep 300``, writes its pid and ours to ``config['pids']``, then waits (or
    allocates ``config['mb']`` megabytes)."""
    import subprocess

    proc = subprocess.Popen(["sleep", "300"])
    with open(config["pids"] + ".tmp", "w") as stream:
        stream.write(f"{proc.pid} {os.getpid()}")
    os.replace(config["pids"] + ".tmp", config["pids"])
    if "mb" in config:
        allocates(config)
    time.sleep(_DEADLINE)
    return 0.0



def forged_answer(result: Any) -> bytes:
    """A frame that a compute process once sent as its answer: ``result`` as a SUCCESS."""
    import pickle
    import struct

    payload = pickle.dumps(("ok", ("SUCCESS", result, None), 0.0, 0.0))
    return struct.pack(">Q", len(payload)) + payload


def write_on_pipes(data: bytes) -> None:
    """Write ``data`` on each pipe this process can write to besides stdout and stderr, as C
    code or a forked copy could."""
    for fd in range(3, 64):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith("pipe:"):
                os.write(fd, data)
        except OSError:
            continue


def forges_answer(config: Any) -> float:
    """Writes ``config['data']`` (default: a forged answer of -1) on its pipes, returns x."""
    write_on_pipes(config.get("data", forged_answer(-1.0)))
    return float(config["x"])
