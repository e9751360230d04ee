"""How long a master takes to resume from a journal of N results.

    python scripts/bench/scale_resume.py [--results 10000 100000] [--optimizers random bohb]

Writes a journal of N results with a master whose executor finishes every job the moment it is
submitted (no workers, no network: only the master's own work), one ASHA iteration of N jobs
over budgets 1..27 (eta 3) on Branin. For BOHB the journal is written with
``random_fraction=1`` (no model: writing it is then fast), which the journal's header does not
record, so a default BOHB resumes from it. Then a fresh master with ``resume=True`` runs the same
iteration: every job is replayed from the journal and none runs. Prints one JSON line per
(optimizer, N): seconds to write, seconds to resume (``run()`` from call to return) and the CPU
seconds of that (on a shared machine the steadier figure), and whether the resumed run has the N
results. The issue's goal: <= 5 s for 100,000 results.
"""
from __future__ import annotations

import argparse
import gc
import logging
import tempfile
import time
from pathlib import Path

from _common import emit
from ultrarun.benchmarks import branin, branin_space
from ultrarun.executor import Durations, Executor, RetryPolicy
from ultrarun.iterations import ASHAIterGenerator
from ultrarun.job import Job, JobStatus
from ultrarun.journal import Journal
from ultrarun.master import Master
from ultrarun.optimizers import BOHB, RandomSearch


class InstantExecutor(Executor):
    """An executor on which every job succeeds the moment it is submitted."""

    def __init__(self) -> None:
        self.retry = RetryPolicy()
        self.durations = Durations()

    def start(self):
        return self

    def submit_job(self, id, **kwargs) -> Job:
        job = Job(id=id, kwargs=kwargs, status=JobStatus.SUCCESS, worker_name="instant")
        job.result = {"loss": branin(kwargs["config"], kwargs["budget"], 27.0), "info": {}}
        now = time.time()
        job.timestamps = {"submitted": now, "started": now, "finished": now}
        self.new_result_callback(job)
        return job

    def number_of_workers(self) -> int:
        return 1

    def cancel_queued_jobs(self, ids=None) -> int:
        return 0

    def shutdown(self, shutdown_workers: bool = False) -> None:
        pass


def master(kind: str, n: int, journal: Path, resume: bool, writing: bool) -> Master:
    if kind == "bohb":
        optimizer = BOHB(branin_space(), seed=0, random_fraction=1.0 if writing else 1 / 3)
    else:
        optimizer = RandomSearch(branin_space(), seed=0)
    return Master("resume", optimizer, ASHAIterGenerator(1, 27, 3, max_jobs=n),
                  executor=InstantExecutor(), journal=Journal(journal, fsync_every=1000),
                  existing="resume" if resume else "overwrite",
                  working_directory=journal.parent, show_progress=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=int, nargs="+", default=[10000, 100000])
    parser.add_argument("--optimizers", nargs="+", default=["random", "bohb"],
                        choices=("random", "bohb"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for kind in args.optimizers:
        for n in args.results:
            with tempfile.TemporaryDirectory() as wd:
                journal = Path(wd) / "journal.jsonl"
                m = master(kind, n, journal, resume=False, writing=True)
                t0 = time.perf_counter()
                m.run(n_iterations=1)
                write_s = time.perf_counter() - t0
                m.shutdown()
                del m  # a resumed master is a new process: the writer's garbage is not its cost
                gc.collect()
                m = master(kind, n, journal, resume=True, writing=False)
                t0, c0 = time.perf_counter(), time.process_time()
                result = m.run(n_iterations=1)
                resume_s, resume_cpu_s = time.perf_counter() - t0, time.process_time() - c0
                m.shutdown()
                emit(bench="scale_resume", optimizer=kind, results=n,
                     journal_mb=round(journal.stat().st_size / 2 ** 20, 1),
                     write_s=round(write_s, 2), resume_s=round(resume_s, 2),
                     resume_cpu_s=round(resume_cpu_s, 2),
                     resumed_results=len(result.get_all_runs()), target_s=5)


if __name__ == "__main__":
    main()
