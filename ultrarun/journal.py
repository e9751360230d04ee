"""The master's journal: one JSON line per configuration and per finished job, and its replay.

A journal is bound to its run by its first line, the header (run id, optimizer and seed, budget
schedule, a hash of the search space). One rule says what happens to an earlier run's journal
in the same place: ``"refuse"`` it (an error saying what to do), ``"resume"`` it (read it back,
refuse another run's, append) or ``"overwrite"`` it. The master writes and reads it through
this module only; see docs/architecture.md and docs/master.md ("The journal").
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import _gc
from ._files import JsonLines, read_json_lines
from .errors import ConfigurationError
from .job import ConfigId, JobStatus

#: what an earlier run's journal and result logs in the same place get
EXISTING = ("refuse", "resume", "overwrite")


@dataclass
class Replay:
    """What a resumed run takes from the journal: ``(config, info)`` by id, results by ``(id,
    budget)`` (not a CANCELLED one: it runs again) and how many jobs run again."""

    configs: dict[ConfigId, tuple[dict, dict]] = field(default_factory=dict)
    results: dict[tuple[ConfigId, float], dict] = field(default_factory=dict)
    again: int = 0


class Journal(JsonLines):
    """Append-only JSON lines: one line per configuration and per finished job.

    Lines are flushed as they are written and fsync'ed every ``fsync_every`` results; a torn last
    line (the master died mid-write) is cut before appending and skipped on reading. Lines are
    written and read by ``ultrarun/_files.py``; this class knows the records.
    """

    @property
    def is_open(self) -> bool:
        return self._fh is not None

    def read(self) -> tuple[dict | None, dict[ConfigId, tuple[dict, dict]],
                            dict[tuple[ConfigId, float], dict]]:
        """``(header, (config, info) by id, results by (id, budget))`` from an earlier run."""
        header: dict | None = None
        configs: dict[ConfigId, tuple[dict, dict]] = {}
        results: dict[tuple[ConfigId, float], dict] = {}
        with _gc.paused():
            for line_no, record in read_json_lines(self.path, follow=False):
                try:
                    if record["t"] == "result":
                        JobStatus(record["status"])
                        results[(tuple(record["id"]), float(record["budget"]))] = record
                    elif record["t"] == "config":
                        configs[tuple(record["id"])] = record["config"], record.get("info", {})
                    elif record["t"] == "header":
                        header = record
                except (KeyError, IndexError, TypeError, ValueError, OverflowError) as exc:
                    raise ConfigurationError(
                        f"{self.path}:{line_no} is not a journal record ({type(exc).__name__}: "
                        f"{str(exc)[:200]}); this file was not written by ultrarun as it is: use "
                        "another checkpoint_file, or start over with overwrite=True") from None
        return header, configs, results

    def refuse_earlier(self, existing: str) -> None:
        """Raise unless ``existing`` lets this run use the place of an earlier run's journal."""
        if existing == "refuse" and self.path.exists():
            raise ConfigurationError(
                f"the journal of an earlier run exists: {self.path}; continue that run "
                "with resume=True, start over with overwrite=True (a Master: existing=\"resume\" "
                "or \"overwrite\"), or use another working_directory (or checkpoint_file)")

    def start(self, header: dict, existing: str) -> Replay:
        """Open for this run: resuming, read the earlier run back (refused if it was another
        run) and append; else (or if it has no record: a crash came before its header) start
        over with ``header``."""
        self.refuse_earlier(existing)
        replay, earlier = Replay(), None
        if existing == "resume":
            earlier, replay.configs, results = self.read()
            check_same_run(earlier, header, self.path, len(replay.configs) + len(results))
            replay.results = {k: r for k, r in results.items()
                              if r.get("status") != JobStatus.CANCELLED.value}
            finished = {k[0] for k in replay.results}
            replay.again = (sum(1 for c in replay.configs if c not in finished)
                            + sum(1 for k in results if k not in replay.results
                                  and k[0] in finished))
        self.open(append=earlier is not None)
        if earlier is None:
            self.write(header, sync=True)
        return replay


def header(run_id: Any, optimizer: Any, iter_generator: Any) -> dict:
    """What a resumed run must share with the run that wrote the journal."""
    space = getattr(optimizer, "configspace", None)
    return {"t": "header", "run_id": str(run_id), "optimizer": type(optimizer).__name__,
            "seed": getattr(optimizer, "seed", None),
            "iterations": type(iter_generator).__name__,
            "budgets": [float(b) for b in iter_generator.budgets],
            "space": hashlib.sha1(str(space).encode()).hexdigest()[:16]}


def check_same_run(earlier: dict | None, now: dict, path: Path, records: int) -> None:
    """Refuse to resume from a journal another kind of run wrote, or one without the header that
    binds it to its run (replaying its results into this run would silently mix two
    experiments). A journal with no record at all (a crash before its header) is a fresh one."""
    if earlier is None:
        if records:
            raise ConfigurationError(
                f"cannot resume from {path}: it has {records} records but no header naming its "
                "run (not a journal this version wrote, or someone else's file); move it away, "
                "or start over with overwrite=True")
        return
    differ = [k for k in now if k != "t" and earlier.get(k) != now[k]]
    if differ:
        details = ", ".join(f"{k}: journal {earlier.get(k)!r}, now {now[k]!r}" for k in differ)
        raise ConfigurationError(f"cannot resume from {path}: it was written by a different run "
                                 f"({details}); use another run_id or checkpoint_file")


__all__ = ["Journal", "Replay", "EXISTING", "header", "check_same_run"]
