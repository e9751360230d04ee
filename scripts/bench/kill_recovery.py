"""Seconds from a worker's SIGKILL to its job running on another worker, with the defaults.

    python scripts/bench/kill_recovery.py [--workers 3] [--job-seconds 3] [--repeat 3]

As the README runs a cluster: a name server (``ultrarun nameserver``), ``ultrarun worker
--n-workers W`` (this file's SleepWorker: every job sleeps ``--job-seconds``), and a BOHB master
with nothing tuned (budgets 1..9). When the first jobs run, one of the worker processes running a
job is killed (SIGKILL); the time is taken until the dispatcher re-queues its job
(``requeued_s``) and until that job starts again on another worker (``running_again_s``: the
other workers finish their own jobs first, so this is at most the requeue plus a job). Prints one
JSON line per kill (a fresh run each time).
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import emit

HERE = Path(__file__).resolve()

from ultrarun.worker import Worker  # noqa: E402


class SleepWorker(Worker):
    """Notes each start (job, pid, time) in ``<working_directory>/starts``, then sleeps."""

    def compute(self, config_id, config, budget, working_directory):
        starts = Path(working_directory) / "starts"
        starts.mkdir(exist_ok=True)
        key = "-".join(map(str, config_id)) + f"@{budget:g}"
        (starts / f"{key}#{os.getpid()}").write_text(repr(time.time()))
        time.sleep(float(os.environ.get("KILL_RECOVERY_JOB_SECONDS", "3")))
        return {"loss": float(config["x"]) / budget, "info": {}}


def _starts(wd: str) -> list[tuple[str, int, float]]:
    out = []
    for path in (Path(wd) / "starts").glob("*#*"):
        key, pid = path.name.rsplit("#", 1)
        try:
            out.append((key, int(pid), float(path.read_text())))
        except ValueError:  # being written
            continue
    return out


class _Requeues(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.times: list[float] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("re-queueing job"):
            self.times.append(record.created)


def once(n_workers: int, job_seconds: float) -> dict:
    from ConfigSpace import ConfigurationSpace, Float

    from ultrarun import BOHB
    from ultrarun.security import Credentials, credentials_path

    env = {**os.environ, "KILL_RECOVERY_JOB_SECONDS": str(job_seconds),
           "PYTHONPATH": os.pathsep.join([str(HERE.parent), os.environ.get("PYTHONPATH", "")])}
    with tempfile.TemporaryDirectory() as wd:
        ns = subprocess.Popen([sys.executable, "-m", "ultrarun", "nameserver", "--run-id", "kill",
                               "--working-dir", wd, "-q"], env=env)
        workers = None
        try:
            deadline = time.monotonic() + 60
            while not credentials_path(wd, "kill").exists():
                if time.monotonic() > deadline:
                    raise RuntimeError("the name server did not start")
                time.sleep(0.05)
            workers = subprocess.Popen([sys.executable, "-m", "ultrarun", "worker",
                                        f"{HERE}:SleepWorker", "--run-id", "kill",
                                        "--working-dir", wd, "--n-workers", str(n_workers), "-q"],
                                       env=env, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL, start_new_session=True)
            requeues = _Requeues()
            logging.getLogger("ultrarun.dispatcher").addHandler(requeues)
            creds = Credentials.read(wd, "kill")
            cs = ConfigurationSpace(seed=1)
            cs.add(Float("x", (0.0, 1.0)))
            master = BOHB(cs, run_id="kill", min_budget=1, max_budget=9, nameserver=creds.host,
                          nameserver_port=creds.port, secret=creds.secret, working_directory=wd,
                          show_progress=False)
            runner = threading.Thread(target=master.run, kwargs=dict(
                n_iterations=1, min_n_workers=n_workers), daemon=True)
            runner.start()
            deadline = time.monotonic() + 120
            while not _starts(wd):
                if time.monotonic() > deadline:
                    raise RuntimeError("no job started")
                time.sleep(0.02)
            key, victim, _ = _starts(wd)[0]
            os.kill(victim, signal.SIGKILL)
            killed = time.time()
            deadline = time.monotonic() + 300
            again = None
            while again is None and time.monotonic() < deadline:
                again = next((t for k, pid, t in _starts(wd) if k == key and pid != victim), None)
                time.sleep(0.02)
            runner.join(timeout=300)  # the run ends (1 iteration)
            master.shutdown(shutdown_workers=False)
            return {"bench": "kill_recovery", "workers": n_workers, "job_seconds": job_seconds,
                    "requeued_s": round(requeues.times[0] - killed, 2) if requeues.times else None,
                    "running_again_s": None if again is None else round(again - killed, 2)}
        finally:
            if workers is not None:
                os.killpg(workers.pid, signal.SIGTERM)
                try:
                    workers.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(workers.pid, signal.SIGKILL)
                    workers.wait(timeout=30)
            ns.terminate()
            ns.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--job-seconds", type=float, default=3.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    for _ in range(args.repeat):
        emit(**once(args.workers, args.job_seconds))


if __name__ == "__main__":
    main()
