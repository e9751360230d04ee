"""The serial backend: each trial runs in the caller's thread, inside ``submit_trial``."""
from __future__ import annotations

from typing import Any

from ._base import AbstractParallelRunner, AbstractSerialRunner


class SerialRunner(AbstractParallelRunner, AbstractSerialRunner):
    """Runs a single worker's trials one after the other in the calling thread.

    The reference backend: no concurrency, nothing to lose. A limited single worker
    (``walltime_limit``/``memory_limit``) still runs its target in a child process.
    """

    def run_wrapper(self, trial_info: Any) -> Any:
        return self._single_worker.run_wrapper(trial_info)


__all__ = ["SerialRunner"]
