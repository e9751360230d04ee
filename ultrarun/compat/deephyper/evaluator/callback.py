"""``deephyper.evaluator.callback``: ``TqdmCallback`` and ``CSVLoggerCallback``.

DeepHyper's own when DeepHyper is installed; otherwise ultrarun's, with the CSV in DeepHyper's
columns: ``p:<argument>``, ``objective``, ``job_id``, ``job_status`` and ``m:<metadata>``
(``m:timestamp_submit``, ``m:timestamp_gather``, ``m:timestamp_start``, ``m:timestamp_end``,
seconds since the callback was made, and the run function's scalar metadata).
"""
from __future__ import annotations

import os
import time
from typing import Any

try:
    from deephyper.evaluator.callback import (Callback, CSVLoggerCallback,  # noqa: F401
                                              TqdmCallback)
except ImportError:
    from ultrarun._files import write_csv
    from ultrarun.job import JobStatus
    from ultrarun.runners._evaluator import Callback, TqdmCallback  # noqa: F401

    def deephyper_row(job: Any, origin: float) -> dict[str, Any]:
        """One row of DeepHyper's results CSV for a gathered job."""
        row = {f"p:{key}": value for key, value in job.kwargs.items()}
        row["objective"] = job.objective
        row["job_id"] = job.id
        row["job_status"] = "CANCELLED" if job.status is JobStatus.CANCELLED else "DONE"
        for key, value in job.metadata.items():
            if key.startswith("timestamp_") and isinstance(value, (int, float)):
                value = round(value - origin, 6)
            if isinstance(value, (str, int, float, bool)) and key not in ("traceback", "error"):
                row[f"m:{key}"] = value
        return row

    class CSVLoggerCallback(Callback):  # type: ignore[no-redef]
        """Appends one row per gathered job to ``path`` in DeepHyper's columns (fixed by the
        first job; flushed per job)."""

        def __init__(self, path: str = "results.csv") -> None:
            self.path = os.path.abspath(path)
            if not os.path.isdir(os.path.dirname(self.path)):
                raise ValueError(f"Directory not found {self.path}")
            self._columns: list[str] | None = None
            self._origin = time.time()

        def on_done(self, job: Any) -> None:
            row = deephyper_row(job, self._origin)
            self._columns = write_csv(self.path, [row], append=self._columns is not None,
                                      columns=self._columns)

__all__ = ["Callback", "TqdmCallback", "CSVLoggerCallback"]
