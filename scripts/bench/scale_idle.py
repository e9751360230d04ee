"""What W idle workers cost their machine: CPU of the worker processes and of the name server.

    python scripts/bench/scale_idle.py [--workers 1000] [--procs 16] [--seconds 15]
        [--ping-interval S]

Starts a name server (its own process) and W workers as threads in K processes (scale.py's), no
dispatcher and no jobs, waits until they are registered, then measures for ``--seconds`` the CPU
the worker processes and the name server use, as a share of one core. Prints one JSON line.

With ``--ping-interval S`` a dispatcher (in this process) pings the W idle workers every S
seconds, as a master's does between jobs; the line then also has the dispatcher's CPU share,
its pings, and the CPU per ping (the dispatcher's and the workers').
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import emit
from scale_common import WorkerProcesses, process_cpu_s

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=1000)
    parser.add_argument("--procs", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--ping-interval", type=float, default=None)
    args = parser.parse_args()
    from ultrarun.dispatcher import Dispatcher
    from ultrarun.security import Credentials, credentials_path

    with tempfile.TemporaryDirectory() as wd:
        ns = subprocess.Popen([sys.executable, "-m", "ultrarun", "nameserver", "--run-id",
                               "scale", "--working-dir", wd, "-q"], stdout=subprocess.DEVNULL)
        workers = dispatcher = None
        try:
            deadline = time.monotonic() + 60
            while not credentials_path(wd, "scale").exists():
                if time.monotonic() > deadline or ns.poll() is not None:
                    raise RuntimeError("the name server did not start")
                time.sleep(0.05)
            workers = WorkerProcesses([sys.executable, str(HERE / "scale.py"), "_workers",
                                       "--dir", wd, "--job-seconds", "1"], args.workers,
                                      args.procs)
            workers.wait_registered(600)
            extra = {}
            if args.ping_interval is not None:
                creds = Credentials.read(wd, "scale")
                dispatcher = Dispatcher(lambda job: None, run_id="scale",
                                        nameserver=creds.host, nameserver_port=creds.port,
                                        secret=creds.secret, ping_interval=args.ping_interval)
                dispatcher.start()
                deadline = time.monotonic() + 600
                while (dispatcher.number_of_workers() < args.workers
                       and time.monotonic() < deadline):
                    time.sleep(0.1)
                time.sleep(args.ping_interval)  # the first round of pings is the steady state
            time.sleep(2.0)  # the start-up's last calls
            w0, n0, d0 = workers.cpu_s(), process_cpu_s(ns.pid), process_cpu_s()
            p0 = dispatcher.status()["counters"]["pings"] if dispatcher else 0
            time.sleep(args.seconds)
            w1, n1, d1 = workers.cpu_s(), process_cpu_s(ns.pid), process_cpu_s()
            if dispatcher is not None:
                pings = dispatcher.status()["counters"]["pings"] - p0
                extra = dict(ping_interval=args.ping_interval, pings=pings,
                             dispatcher_cpu_share=round((d1 - d0) / args.seconds, 4),
                             dispatcher_cpu_ms_per_ping=round(1e3 * (d1 - d0) / max(1, pings), 3),
                             workers_cpu_ms_per_ping=round(1e3 * (w1 - w0) / max(1, pings), 3))
            emit(bench="scale_idle", workers=args.workers, procs=args.procs,
                 seconds=args.seconds, workers_cpu_share=round((w1 - w0) / args.seconds, 3),
                 nameserver_cpu_share=round((n1 - n0) / args.seconds, 3), **extra)
        finally:
            if dispatcher is not None:
                dispatcher.shutdown()
            if workers is not None:
                workers.stop()
            ns.terminate()
            ns.wait(timeout=30)


if __name__ == "__main__":
    main()
