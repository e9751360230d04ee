"""utilization.py's Hyperband measurement, taken with HpBandSter's own classes.

    /tmp/hpb-venv/bin/python scripts/bench/hpbandster_utilization_peer.py [--workers 8]
                                                         [--lengths 1 4 16 64]

Runs inside a separate virtual environment holding hpbandster 0.7.4 (it needs numpy < 2 and
ConfigSpace < 1); it never imports ultrarun. The setup is utilization.py's: W HpBandSter worker
processes (hpbandster.core.worker.Worker) whose compute sleeps 10 ms x budget and returns its own
compute start and end (time.time()) in ``info``; hpbandster.optimizers.HyperBand (random
sampling) with eta=3 over budgets 1..27 and the Master's default job_queue_sizes (-1, 0) and
dynamic queue size; HpBandSter's name server on 127.0.0.1. For each run length (Hyperband
iterations) it prints one JSON line, marked "peer": "hpbandster", with the same fields computed
the same way:

- ``utilisation``: the workers' compute time / (W x wall time from the first compute's start to
  the last compute's end), from the Result's runs (their info start/end);
- ``utilisation_until_last_launch``: the same over the window up to the last launch. A launch is
  the Dispatcher's 'started' time stamp (taken just before it calls the worker); the Result keeps
  it relative to the Master's time_ref (a time.time()), so time_ref is added back to put it on
  the workers' clock;
- ``idle_between_jobs`` and ``idle_final_drain``.

The workers are started once and serve one HyperBand master per length in turn (as
utilization.py's LocalCluster does). Every wait has a deadline and every process started here is
torn down in a finally block.
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

import _common
from _common import (parse_peer_worker_args, quiet_hpbandster_logging, start_peer_workers,
                     stop, wait_for)

HERE = os.path.abspath(__file__)
PEER = "hpbandster"
SLEEP_PER_BUDGET = 0.01
NS_HOST = "127.0.0.1"


def emit(**fields) -> None:
    _common.emit(peer=PEER, **fields)


# ------------------------------------------------------------------------------ worker process
def worker_main(argv: list[str]) -> None:
    from hpbandster.core.worker import Worker

    a = parse_peer_worker_args(argv)
    quiet_hpbandster_logging()

    class SleepWorker(Worker):
        def compute(self, config_id, config, budget, working_directory, **kwargs):
            start = time.time()
            time.sleep(SLEEP_PER_BUDGET * budget)
            return {"loss": float(config["x1"]) * budget,
                    "info": {"start": start, "end": time.time(), "worker": self.worker_id}}

    logger = logging.getLogger("hpbandster.worker")
    logger.setLevel(logging.WARNING)
    w = SleepWorker(run_id=a.run_id, nameserver=a.ns_host, nameserver_port=a.ns_port, id=a.id,
                    logger=logger)
    w.run(background=False)


# ----------------------------------------------------------------------------------- measuring
def measure(runs, time_ref: float, n_workers: int) -> dict:
    """utilization.py's measure(), on HpBandSter Result runs."""
    spans = [(r.info["start"], r.info["end"]) for r in runs]
    # 'started' is relative to the Master's time_ref in a Result; back to time.time()
    launches = [r.time_stamps["started"] + time_ref for r in runs]
    workers = [r.info["worker"] for r in runs]
    return {**_common.utilisation(spans, launches, workers, n_workers),
            "workers_used": len(set(workers)),
            # sanity check of the clocks: a launch precedes its compute's start
            "min_launch_to_start_ms": round(1000 * min(s - l for (s, _), l
                                                       in zip(spans, launches)), 3)}


def branin_space(seed: int):
    import ConfigSpace as CS
    cs = CS.ConfigurationSpace(seed=seed)
    cs.add_hyperparameters([CS.UniformFloatHyperparameter("x1", -5.0, 10.0),
                            CS.UniformFloatHyperparameter("x2", 0.0, 15.0)])
    return cs


def stop_master(master) -> None:
    """Master.shutdown() without its unbounded join."""
    d = master.dispatcher
    try:
        wait_for(lambda: hasattr(d, "pyro_daemon"), 10, "dispatcher daemon")
        d.shutdown(shutdown_workers=False)
    except Exception as exc:  # noqa: BLE001 - teardown must go on
        print(f"dispatcher shutdown: {exc!r}", file=sys.stderr)
    master.dispatcher_thread.join(30)
    if master.dispatcher_thread.is_alive():
        print("dispatcher thread did not exit in time", file=sys.stderr)


def run_length(length: int, run_id: str, ns_port: int, workdir: str, n_workers: int,
               deadline: float) -> dict:
    from hpbandster.optimizers import HyperBand

    master = HyperBand(configspace=branin_space(length), run_id=run_id, eta=3, min_budget=1,
                       max_budget=27, nameserver=NS_HOST, nameserver_port=ns_port,
                       working_directory=workdir, logger=logging.getLogger("hpbandster.master"))
    try:
        # Master.wait_for_workers has no deadline: wait here (re-triggering discovery like it)
        t_end = time.monotonic() + 60
        while master.dispatcher.number_of_workers() < n_workers:
            if time.monotonic() > t_end:
                raise TimeoutError(f"dispatcher knows {master.dispatcher.number_of_workers()}"
                                   f"/{n_workers} workers after 60 s")
            time.sleep(0.05)
            if hasattr(master.dispatcher, "pyro_daemon"):
                master.dispatcher.trigger_discover_worker()
        out: dict = {}

        def target() -> None:
            try:
                out["result"] = master.run(n_iterations=length, min_n_workers=n_workers)
            except BaseException as exc:  # noqa: BLE001 - reported by the caller
                out["error"] = exc

        # Master.run has no deadline either: a daemon thread, joined with one
        thread = threading.Thread(target=target, name=f"hpbandster master {length}", daemon=True)
        thread.start()
        thread.join(deadline)
        if thread.is_alive():
            raise TimeoutError(f"{length} iterations did not finish within {deadline} s")
        if "error" in out:
            raise out["error"]
        result = out["result"]
        runs = result.get_all_runs()
        crashed = [r for r in runs if r.info is None]
        if crashed:
            raise RuntimeError(f"{len(crashed)} jobs failed: {crashed[0].error_logs}")
        return measure(runs, result.HB_config["time_ref"], n_workers)
    finally:
        stop_master(master)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--lengths", type=int, nargs="+", default=[1, 4, 16, 64])
    parser.add_argument("--run-deadline", type=float, default=240,
                        help="deadline for each length's run, in seconds")
    args = parser.parse_args()
    quiet_hpbandster_logging()

    import hpbandster
    import Pyro4
    from hpbandster.core.nameserver import NameServer
    versions = {"hpbandster": getattr(hpbandster, "__version__", "0.7.4"),
                "Pyro4": Pyro4.__version__, "python": sys.version.split()[0]}

    run_id = "utilization"
    with tempfile.TemporaryDirectory() as workdir:
        ns = NameServer(run_id=run_id, working_directory=workdir, host=NS_HOST, port=0)
        host, port = ns.start()
        procs: list[subprocess.Popen] = []
        try:
            procs = start_peer_workers(HERE, run_id, host, port, args.workers)
            prefix = f"hpbandster.run_{run_id}.worker."
            with Pyro4.locateNS(host=host, port=port) as proxy:
                proxy._pyroTimeout = 10

                def registered() -> bool:
                    dead = [p.args[-1] for p in procs if p.poll() is not None]
                    if dead:
                        raise RuntimeError(f"worker(s) {dead} exited during start-up")
                    return len(proxy.list(prefix=prefix)) == args.workers

                wait_for(registered, 120, "worker registration")
            for length in args.lengths:
                row = {"bench": "utilization", "mode": "hyperband", "iterations": length,
                       "workers": args.workers, "job_queue_sizes": [-1, 0], **versions}
                try:
                    row.update(run_length(length, run_id, port, workdir, args.workers,
                                          args.run_deadline))
                except TimeoutError as exc:
                    emit(**row, error=str(exc))
                    break  # its master thread is still running: measure nothing more
                emit(**row)
        finally:
            stop(procs)
            ns.shutdown()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_worker":
        worker_main(sys.argv[2:])
    else:
        # a SIGTERM (e.g. utilization.py's deadline) unwinds through the finally blocks
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:  # noqa: BLE001
            import traceback
            traceback.print_exc()
            code = 1
        # HpBandSter's dispatcher and name-server threads are not daemons: if one of them is
        # stuck after teardown, do not hang at interpreter exit
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
