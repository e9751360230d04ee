"""The thread backend, and the base of every backend built on a ``concurrent.futures`` executor."""
from __future__ import annotations

import abc
import concurrent.futures
from typing import Any, Sequence

from ._base import AbstractParallelRunner, AbstractRunner, Outcome, TrialInfo, check_n_workers


def future_outcome(future: concurrent.futures.Future) -> Outcome:
    """The outcome of a finished future: its result, or the exception it holds."""
    if future.cancelled():
        return concurrent.futures.CancelledError()
    exc = future.exception()
    return exc if exc is not None else future.result()


class FuturesRunner(AbstractParallelRunner):
    """Runs ``single_worker.run_wrapper`` on a ``concurrent.futures.Executor``.

    Subclasses say how to make the executor (lazily, on the first submit: no threads or
    processes are started by ``__init__``) and how many workers it has.
    """

    def __init__(self, single_worker: AbstractRunner, **kwargs: Any) -> None:
        super().__init__(single_worker, **kwargs)
        self._executor: concurrent.futures.Executor | None = None
        self._futures: dict[concurrent.futures.Future, int] = {}

    @abc.abstractmethod
    def _make_executor(self) -> concurrent.futures.Executor:
        """Create the executor the trials run on."""

    def _submit(self, token: int, trial_info: TrialInfo) -> None:
        if self._executor is None:
            self._executor = self._make_executor()
        future = self._executor.submit(self._single_worker.run_wrapper, trial_info)
        self._futures[future] = token

    def _poll(self, timeout: float | None) -> list[tuple[int, Outcome]]:
        if not self._futures:
            return []
        done, _ = concurrent.futures.wait(list(self._futures), timeout=timeout,
                                          return_when=concurrent.futures.FIRST_COMPLETED)
        return [(self._futures.pop(f), future_outcome(f)) for f in done]

    def _cancel(self, tokens: Sequence[int]) -> None:
        wanted = set(tokens)
        for future, token in list(self._futures.items()):
            if token in wanted:
                future.cancel()  # a running thread cannot be stopped; its result is dropped
                del self._futures[future]

    def _close(self) -> None:
        for future in self._futures:
            future.cancel()
        self._futures.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


class ThreadRunner(FuturesRunner):
    """Runs trials on a pool of threads: for targets that release the GIL or wait on I/O.

    A running thread cannot be killed, so cancelled trials finish in the background and their
    results are dropped; use a limited single worker (walltime_limit) to bound them.
    """

    def __init__(self, single_worker: AbstractRunner, n_workers: int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(single_worker, **kwargs)
        self._n_workers = check_n_workers(n_workers)

    def _make_executor(self) -> concurrent.futures.Executor:
        return concurrent.futures.ThreadPoolExecutor(self._n_workers,
                                                     thread_name_prefix="ultrarun-runner")


__all__ = ["FuturesRunner", "ThreadRunner", "future_outcome"]
