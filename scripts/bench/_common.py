"""What the benchmark scripts share. Standard library only: the HpBandSter peers import it too,
from their own virtual environment, where ultrarun is not installed."""
from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable, Hashable, Sequence

HERE = Path(__file__).resolve().parent
PEER_DEADLINE_S = 900


def emit(**fields: Any) -> None:
    """One measurement: one JSON line on stdout."""
    print(json.dumps(fields), flush=True)


def stop(procs: Sequence[subprocess.Popen]) -> None:
    """Terminate processes, kill what does not end within 10 s."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def wait_for(predicate: Callable[[], Any], timeout: float,
             what: str = "benchmark condition") -> float:
    """Poll until ``predicate()`` holds; returns the seconds it took, raises after ``timeout``."""
    t0 = time.perf_counter()
    deadline = t0 + timeout
    while not predicate():
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{what} not reached within {timeout} s")
        time.sleep(0.001)
    return time.perf_counter() - t0


#: The message a raw round-trip baseline echoes: the shape of a job message.
ECHO_PAYLOAD = {"token": 1, "attempt": 1, "id": (0, 0, 1), "kwargs": {"budget": 1.0}}


def round_trips_per_second(echo: Callable[[Any], Any], n: int) -> float:
    """Synchronous ``echo(payload)`` calls per second (after one warm-up call)."""
    echo(ECHO_PAYLOAD)
    t0 = time.perf_counter()
    for _ in range(n):
        echo(ECHO_PAYLOAD)
    return n / (time.perf_counter() - t0)


def utilisation(spans: Sequence[tuple[float, float]], launches: Sequence[float],
                workers: Sequence[Hashable], n_workers: int) -> dict[str, Any]:
    """Worker utilisation from each job's own compute ``(start, end)``, its launch time and the
    worker that ran it (all on one clock): overall, until the last launch, and where the idle
    worker-time went (before a worker's first job, between jobs, or in the final drain)."""
    start, end, last_launch = min(s for s, _ in spans), max(e for _, e in spans), max(launches)
    compute = sum(e - s for s, e in spans)
    window = max(last_launch - start, 1e-9)
    busy = sum(max(0.0, min(e, last_launch) - s) for s, e in spans)
    total = n_workers * (end - start)
    per_worker: dict[Hashable, list[tuple[float, float]]] = collections.defaultdict(list)
    for worker, span in zip(workers, spans):
        per_worker[worker].append(span)
    gaps = drain = ramp = 0.0
    for worker_spans in per_worker.values():
        worker_spans.sort()
        ramp += worker_spans[0][0] - start
        gaps += sum(b[0] - a[1] for a, b in zip(worker_spans, worker_spans[1:]))
        drain += end - worker_spans[-1][1]
    return {"jobs": len(spans), "wall_s": round(end - start, 3),
            "utilisation": round(compute / total, 4),
            "utilisation_until_last_launch": round(min(busy / (n_workers * window), 1.0), 4),
            "idle_start": round(ramp / total, 4),
            "idle_between_jobs": round(gaps / total, 4),
            "idle_final_drain": round(drain / total, 4)}


def run_peer(python: str, script: str, argv: Sequence[str]) -> None:
    """Run a peer benchmark ``script`` (next to this file) under another interpreter and re-print
    its JSON lines; end it (and its workers: its own session) if it misses the deadline."""
    cmd = [python, str(HERE / script), *argv]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)

    def relay() -> None:
        for line in proc.stdout:
            line = line.strip()
            if line.startswith("{"):
                print(line, flush=True)

    reader = threading.Thread(target=relay, daemon=True)
    reader.start()

    def end_peer() -> None:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # the peer tears its workers down on SIGTERM
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)

    try:
        rc = proc.wait(timeout=PEER_DEADLINE_S)
    except subprocess.TimeoutExpired:
        end_peer()
        emit(peer="hpbandster", bench="error", error=f"deadline of {PEER_DEADLINE_S} s hit")
    except BaseException:
        end_peer()
        raise
    else:
        if rc != 0:
            emit(peer="hpbandster", bench="error", error=f"exit status {rc}")
    finally:
        reader.join(10)


# --------------------------------------------------------------------- the HpBandSter peers
def quiet_hpbandster_logging() -> None:
    """Without a configured logger, HpBandSter's Worker() calls logging.basicConfig(level=DEBUG)
    and logs every job to stderr, which would slow it down unfairly."""
    import logging

    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("hpbandster").setLevel(logging.WARNING)


def parse_peer_worker_args(argv: Sequence[str]) -> Any:
    """The arguments :func:`start_peer_workers` gives a peer's ``_worker`` sub-command."""
    import argparse

    p = argparse.ArgumentParser()
    p.add_argument("--run-id", required=True)
    p.add_argument("--ns-host", required=True)
    p.add_argument("--ns-port", type=int, required=True)
    p.add_argument("--id", required=True)
    return p.parse_args(argv)


def start_peer_workers(script: str, run_id: str, ns_host: str, ns_port: int,
                       n: int) -> list[subprocess.Popen]:
    """Start ``n`` worker processes of a peer script (its ``_worker`` sub-command)."""
    import sys

    cmd = [sys.executable, str(script), "_worker", "--run-id", run_id, "--ns-host", ns_host,
           "--ns-port", str(ns_port)]
    return [subprocess.Popen(cmd + ["--id", str(i)]) for i in range(n)]
