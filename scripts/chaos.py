"""Chaos: a run on real processes while everything that can break does, then the count.

    python scripts/chaos.py [--jobs 500] [--sleep 0.3] [--workers 6] [--seconds 300] [--seed 0]
                            [--short] [--keep]

A name server (``ultrarun nameserver``), worker processes (``ultrarun worker``) and a
dispatcher in a process of its own run ``--jobs`` jobs of ``--sleep`` seconds. Meanwhile, in a random order
(``--seed``), until every job is back:

- a worker is SIGKILLed and a new one started;
- the dispatcher is SIGSTOPped for longer than the workers' call timeout, then continued;
- 100 silent and 50 half-open connections are held against every daemon for a while;
- the name server is SIGKILLed and started again the documented way (same command).

Every job's loss is a known function of its configuration and budget (:func:`expected_loss`),
and every ``CRASH_EVERY``-th job is made to crash. It ends with one JSON line: ``{"bench":
"chaos", "jobs", "called_back", "lost", "duplicated", "stuck_workers", "wrong", "unexpected",
"faults": {...}, "wall_s", "ok"}``. ``lost`` counts jobs never called back, ``duplicated`` jobs
called back more than once, ``stuck_workers`` workers that the dispatcher's last picture shows
holding a job once every job was called back, or that say they hold one, ``wrong`` successes
whose loss is not the one the compute returned, ``unexpected`` jobs that ended in another status
than the one they were made to (SUCCESS, or CRASHED for the crashing ones: a LOST, CANCELLED or
CRASHED job nobody made fail). ``ok`` only if all five are 0. The temporary directory is removed
at the end (``--keep`` keeps it and prints where it is). ``--short`` (used by the test suite):
120 jobs of 0.4 s on 4 workers and one fault of each kind.

Settings: the parties get ``ULTRARUN_COMMTIMEOUT=1`` and ``ULTRARUN_PING_INTERVAL=0.5`` (read
when ultrarun is imported), so faults are noticed in seconds.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from ultrarun import Worker

FAST = {"ULTRARUN_COMMTIMEOUT": "1", "ULTRARUN_PING_INTERVAL": "0.5"}
HERE = Path(__file__).resolve()


CRASH_EVERY = 25  # every 25th job (0, 25, 50, ...) is made to crash


def expected_loss(i: int, budget: float) -> float:
    """The loss job ``i`` returns at ``budget``: a known function, so a result that is not the
    one its compute returned (another job's, a stale one) is seen."""
    return round((i * 7919 % 1009) / 1009 + 1.0 / budget, 12)


def job_config(i: int, sleep: float) -> tuple[dict, float]:
    """Job ``i``'s configuration and budget."""
    return {"i": i, "sleep": sleep, "crash": i % CRASH_EVERY == 0}, float(1 + i % 3)


class ChaosWorker(Worker):
    """Sleeps ``config["sleep"]`` seconds; returns :func:`expected_loss`, or crashes when made
    to."""

    def compute(self, config, budget, **kwargs):
        threading.Event().wait(config["sleep"])
        if config["crash"]:
            raise ValueError(f"job {config['i']} made to crash")
        return {"loss": expected_loss(config["i"], budget), "info": {"pid": os.getpid()}}


def account(jobs: int, sleep: float, records: list[dict], final: list | None,
            stuck_said: int) -> dict:
    """The count of a run: ``records`` are the dispatcher's callbacks (id, status, attempt,
    budget, loss), ``final`` its last picture of the workers, ``stuck_said`` the workers that
    say they hold a job. Returns the report's counts and ``ok``."""
    counts: dict = {}
    for r in records:
        counts[r["id"]] = counts.get(r["id"], 0) + 1
    wrong = unexpected = 0
    for r in records:
        if type(r["id"]) is not int or not 0 <= r["id"] < jobs:
            unexpected += 1  # a job nobody submitted
            continue
        config, budget = job_config(r["id"], sleep)
        if r["status"] != ("CRASHED" if config["crash"] else "SUCCESS"):
            unexpected += 1
        elif r["status"] == "SUCCESS" and (r.get("budget") != budget or
                                           r.get("loss") != expected_loss(r["id"], budget)):
            wrong += 1
    lost = sum(1 for i in range(jobs) if i not in counts)
    duplicated = sum(1 for n in counts.values() if n > 1)
    stuck = (sum(1 for w in final if w["holding"]) if final is not None else -1) + stuck_said
    return {"called_back": len(records), "lost": lost, "duplicated": duplicated,
            "stuck_workers": stuck, "wrong": wrong, "unexpected": unexpected,
            "ok": lost == duplicated == stuck == wrong == unexpected == 0}


def run_dispatcher(directory: str, run_id: str, jobs: int, sleep: float, out: str) -> None:
    """The dispatcher's process: submit every job, write every callback, then the pool's last
    picture, and exit."""
    from ultrarun.dispatcher import Dispatcher
    from ultrarun.security import Credentials

    creds = Credentials.read(directory, run_id)
    lock, done, seen = threading.Lock(), threading.Event(), [0]
    fh = open(out, "a")

    def on_result(job):
        with lock:
            fh.write(json.dumps({"id": job.id, "status": job.status.value,
                                 "attempt": job.attempt, "budget": job.kwargs.get("budget"),
                                 "loss": job.loss, "exception": job.exception}) + "\n")
            fh.flush()
            seen[0] += 1
            if seen[0] >= jobs:
                done.set()

    d = Dispatcher(on_result, run_id=run_id, nameserver=creds.host, nameserver_port=creds.port,
                   secret=creds.secret, ping_interval=0.5, timeout=1.0)
    d.start()
    print(d.uri, flush=True)
    for i in range(jobs):
        config, budget = job_config(i, sleep)
        d.submit_job(i, config=config, budget=budget)
    done.wait(3600)
    status = d.status()
    with lock:
        fh.write(json.dumps({"final": status["workers"]}) + "\n")
        fh.flush()
    d.shutdown()


class Chaos:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.rng = random.Random(args.seed)
        self.dir = Path(tempfile.mkdtemp(prefix="ultrarun-chaos-"))
        self.run_id = f"chaos{os.getpid()}"
        self.out = self.dir / "results.jsonl"
        self.env = {**os.environ, **FAST}
        self.nameserver: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []
        self.dispatcher: subprocess.Popen | None = None
        self.dispatcher_uri = ""
        self.faults: dict[str, int] = {"worker_killed": 0, "dispatcher_stopped": 0,
                                       "connections_held": 0, "nameserver_restarted": 0}

    # ------------------------------------------------------------------------ the parties
    def start_nameserver(self) -> None:
        self.nameserver = subprocess.Popen(
            [sys.executable, "-m", "ultrarun", "nameserver", "--run-id", self.run_id,
             "--working-dir", str(self.dir), "-q"], stdout=subprocess.PIPE, text=True,
            env=self.env)
        line = self.nameserver.stdout.readline()
        if "listening" not in line:
            raise RuntimeError(f"the name server did not start: {line!r}")

    def start_worker(self) -> None:
        log = open(self.dir / f"worker-{len(self.workers)}.log", "w")
        self.workers.append(subprocess.Popen(
            [sys.executable, "-m", "ultrarun", "worker", f"{HERE}:ChaosWorker", "--run-id",
             self.run_id, "--working-dir", str(self.dir), "-v"], stdout=log,
            stderr=subprocess.STDOUT, env=self.env))

    def start_dispatcher(self) -> None:
        self.dispatcher = subprocess.Popen(
            [sys.executable, str(HERE), "--role", "dispatcher", "--dir", str(self.dir),
             "--run-id", self.run_id, "--jobs", str(self.args.jobs), "--sleep",
             str(self.args.sleep), "--out", str(self.out)],
            stdout=subprocess.PIPE, text=True, env=self.env)
        self.dispatcher_uri = self.dispatcher.stdout.readline().strip()

    # ----------------------------------------------------------------------------- faults
    def kill_a_worker(self) -> None:
        alive = [w for w in self.workers if w.poll() is None]
        if alive:
            victim = self.rng.choice(alive)
            victim.kill()
            victim.wait()
            self.start_worker()
            self.faults["worker_killed"] += 1

    def stop_the_dispatcher(self) -> None:
        os.kill(self.dispatcher.pid, signal.SIGSTOP)
        try:
            self.hold(2.5)  # longer than the 1 s call timeout
        finally:
            os.kill(self.dispatcher.pid, signal.SIGCONT)
        self.faults["dispatcher_stopped"] += 1

    def hold_connections(self) -> None:
        from ultrarun.security import Credentials

        creds = Credentials.read(self.dir, self.run_id)
        addresses = [(creds.host, creds.port)]
        host_port = self.dispatcher_uri.rsplit("@", 1)[-1]
        if ":" in host_port:
            host, port = host_port.rsplit(":", 1)
            addresses.append((host, int(port)))
        socks = []
        try:
            for address in addresses:
                for i in range(150):
                    with contextlib.suppress(OSError):
                        sock = socket.create_connection(address, timeout=2)
                        if i >= 100:
                            sock.send(b"PYRO\x00\x30")  # half a header
                        socks.append(sock)
            self.hold(3.0)
        finally:
            for sock in socks:
                sock.close()
        self.faults["connections_held"] += 1

    def restart_the_nameserver(self) -> None:
        self.nameserver.kill()
        self.nameserver.wait()
        self.start_nameserver()
        self.faults["nameserver_restarted"] += 1

    @staticmethod
    def hold(seconds: float) -> None:
        threading.Event().wait(seconds)

    # -------------------------------------------------------------------------------- run
    def results(self) -> tuple[list[dict], list | None]:
        lines = [json.loads(line) for line in self.out.read_text().splitlines()
                 if line.endswith("}")] if self.out.exists() else []
        final = next((line["final"] for line in lines if "final" in line), None)
        return [line for line in lines if "id" in line], final

    def run(self) -> dict:
        t0 = time.monotonic()
        faults = [self.kill_a_worker, self.stop_the_dispatcher, self.hold_connections,
                  self.restart_the_nameserver]
        plan = list(faults) if self.args.short else []
        deadline = t0 + self.args.seconds
        stuck_said = 0
        try:
            self.start_nameserver()
            for _ in range(self.args.workers):
                self.start_worker()
            self.start_dispatcher()
            while self.dispatcher.poll() is None and time.monotonic() < deadline:
                if self.args.short and not plan:
                    self.hold(0.2)
                    continue
                fault = plan.pop(0) if plan else self.rng.choice(faults)
                fault()
                self.hold(self.rng.uniform(0.5, 2.0))
            self.dispatcher.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        finally:
            stuck_said = self.workers_holding()
            self.stop()
        results, final = self.results()
        counts = account(self.args.jobs, self.args.sleep, results, final, stuck_said)
        ok = counts.pop("ok")
        return {"bench": "chaos", "jobs": self.args.jobs, **counts, "faults": self.faults,
                "attempts_max": max((r["attempt"] for r in results), default=0),
                "statuses": sorted({r["status"] for r in results}),
                "wall_s": round(time.monotonic() - t0, 1), "seed": self.args.seed, "ok": ok}

    def workers_holding(self) -> int:
        """Live workers that say they hold a job (none should, once all jobs are back)."""
        from ultrarun import transport
        from ultrarun.security import Credentials

        if self.dispatcher is None or self.dispatcher.poll() is None:
            return 0  # not finished: stuckness is judged on a finished run only
        creds = Credentials.read(self.dir, self.run_id)
        holding = 0
        with transport.NameServerClient(creds.host, creds.port, creds.secret, 2) as ns:
            with contextlib.suppress(Exception):
                for name, uri in ns.list(transport.worker_prefix(self.run_id)).items():
                    with transport.Connection(uri, creds.secret, 2) as conn:
                        with contextlib.suppress(Exception):
                            holding += conn.call("status").get("holding", 0) > 0
        return holding

    def stop(self) -> None:
        for proc in [self.dispatcher, *self.workers, self.nameserver]:
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGCONT)
                proc.terminate()
        for proc in [self.dispatcher, *self.workers, self.nameserver]:
            if proc is not None:
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--sleep", type=float, default=0.3, help="seconds each job takes")
    parser.add_argument("--workers", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=300.0, help="give up after this long")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--short", action="store_true",
                        help="120 jobs of 0.4 s on 4 workers, one fault of each kind (the test "
                             "suite's run)")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary directory (the parties' logs) and say where")
    parser.add_argument("--role", choices=["chaos", "dispatcher"], default="chaos",
                        help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    parser.add_argument("--run-id", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.role == "dispatcher":
        run_dispatcher(args.dir, args.run_id, args.jobs, args.sleep, args.out)
        return 0
    if args.short:
        args.jobs, args.sleep, args.workers = 120, 0.4, 4
    chaos = Chaos(args)
    try:
        report = chaos.run()
    finally:
        if args.keep:
            print(f"kept {chaos.dir}", file=sys.stderr)
        else:
            shutil.rmtree(chaos.dir, ignore_errors=True)
    print(json.dumps(report), flush=True)
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
