"""The serial backend: each trial runs in the caller's thread, inside ``submit_trial``."""
from __future__ import annotations

from typing import Any

from ..errors import ConfigurationError
from ._base import AbstractParallelRunner, AbstractRunner, AbstractSerialRunner


class SerialRunner(AbstractParallelRunner, AbstractSerialRunner):
    """Runs a single worker's trials one after the other in the calling thread.

    The reference backend: no concurrency, nothing to lose. A limited single worker
    (``walltime_limit``/``memory_limit``) still runs its target in a child process.
    """

    def __init__(self, single_worker: AbstractRunner, n_workers: int | None = None,
                 **kwargs: Any) -> None:
        if n_workers not in (None, 1):
            raise ConfigurationError(f"the serial backend has one worker; got n_workers={n_workers!r}")
        super().__init__(single_worker, **kwargs)

    def run_wrapper(self, trial_info: Any) -> Any:
        return self._single_worker.run_wrapper(trial_info)


__all__ = ["SerialRunner"]
