"""The Dask backend (SMAC3's DaskParallelRunner) on ``dask.distributed``: ``pip install
ultrarun[dask]``. Worker death is Dask's to handle: the scheduler reruns the task up to
``distributed.scheduler.allowed-failures`` times, then the trial is LOST (docs/runners.md).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from typing import TYPE_CHECKING, Any, Sequence

from ..errors import ConfigurationError
from ._base import AbstractParallelRunner, AbstractRunner, Outcome, TrialInfo, WorkerLost, check_n_workers

if TYPE_CHECKING:
    from distributed import Client, Future

logger = logging.getLogger(__name__)

#: How long a cached worker count is trusted (asking the scheduler is a round trip).
_NTHREADS_TTL = 0.5
_POLL_INTERVAL = 0.05


class DaskParallelRunner(AbstractParallelRunner):
    """Runs ``single_worker.run_wrapper`` as Dask tasks.

    Parameters
    ----------
    single_worker:
        The serial runner whose trials run on the Dask workers (pickled with each task).
    patience:
        Seconds to wait for a worker to (re)appear when the cluster has none; after that the
        trial is reported LOST rather than blocking or crashing the caller.
    dask_client:
        An existing ``distributed.Client``; left open by :meth:`close`. Without one, a local
        cluster of processes (one thread each) is started on first use and closed by ``close``.
    n_workers:
        Workers of that local cluster (default: CPU count).
    """

    def __init__(self, single_worker: AbstractRunner, patience: float = 5, dask_client:
                 Client | None = None, n_workers: int | None = None, **kwargs: Any) -> None:
        super().__init__(single_worker, **kwargs)
        if isinstance(patience, bool) or not isinstance(patience, (int, float)) or patience < 0:
            raise ConfigurationError(f"patience must be a number of seconds >= 0, got {patience!r}")
        try:
            import distributed  # noqa: F401  (fail early with a useful message)
        except ImportError as exc:
            raise ConfigurationError("the dask backend needs dask.distributed: "
                                     "pip install 'ultrarun[dask]'") from exc
        self._patience = float(patience)
        self._client: Client | None = dask_client
        self._own_client = dask_client is None
        self._n_local = check_n_workers(n_workers, None)
        self._futures: dict[Future, int] = {}
        self._lost: list[tuple[int, Outcome]] = []
        self._nthreads: tuple[float, int] = (-1.0, 0)

    @property
    def client(self) -> Client:
        """The Dask client; a local cluster is started on first use if none was given."""
        if self._client is None:
            from distributed import Client, LocalCluster

            # The dashboard on a free port: None does not turn it off (dask/distributed#8136) and
            # 8787 may be taken.
            kwargs: dict[str, Any] = {"processes": True, "threads_per_worker": 1, "host": "127.0.0.1",
                                      "dashboard_address": ":0"}
            if self._n_local is not None:
                kwargs["n_workers"] = self._n_local
            self._client = Client(LocalCluster(**kwargs))
            logger.info("started a local Dask cluster: %s", self._client)
        return self._client

    @property
    def num_workers(self) -> int:
        """Worker threads in the cluster now (cached for half a second)."""
        stamp, count = self._nthreads
        if time.monotonic() - stamp > _NTHREADS_TTL:
            count = sum(self.client.nthreads().values())
            self._nthreads = (time.monotonic(), count)
        return count

    def _wait_for_workers(self) -> bool:
        """Whether the cluster has a worker, waiting up to ``patience`` seconds for one."""
        deadline = time.monotonic() + self._patience
        while True:
            self._nthreads = (-1.0, 0)
            if self.num_workers > 0:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(min(_POLL_INTERVAL, max(0.0, deadline - time.monotonic())))

    # ------------------------------------------------------------------ backend hooks
    def _submit(self, token: int, trial_info: TrialInfo) -> None:
        if self.num_workers <= 0 and not self._wait_for_workers():
            logger.warning("no Dask worker appeared within patience=%s s", self._patience)
            self._lost.append((token, WorkerLost(f"no Dask worker available within "
                                                 f"patience={self._patience} s", retry=False)))
            return
        future = self.client.submit(self._single_worker.run_wrapper, trial_info, pure=False)
        self._futures[future] = token

    def _poll(self, timeout: float | None) -> list[tuple[int, Outcome]]:
        out, self._lost = self._lost, []
        if out or not self._futures:
            return out
        done = [f for f in self._futures if f.done()]
        if not done and timeout != 0:
            from distributed import wait

            try:
                wait(list(self._futures), timeout=timeout, return_when="FIRST_COMPLETED")
            except (TimeoutError, asyncio.TimeoutError):  # distinct classes before Python 3.11
                return []
            done = [f for f in self._futures if f.done()]
        return [(self._futures.pop(f), self._outcome(f)) for f in done]

    @staticmethod
    def _outcome(future: Future) -> Outcome:
        from distributed import KilledWorker

        if future.status == "finished":
            return future.result()
        if future.cancelled():
            return concurrent.futures.CancelledError()
        exc = future.exception()
        if isinstance(exc, KilledWorker):
            return WorkerLost(f"Dask gave up on the task after its workers died: {exc}",
                              retry=False)
        return exc

    def _cancel(self, tokens: Sequence[int]) -> None:
        wanted = set(tokens)
        futures = [f for f, t in self._futures.items() if t in wanted]
        for future in futures:
            del self._futures[future]
        if futures:
            self.client.cancel(futures)

    def _close(self) -> None:
        futures, self._futures = list(self._futures), {}
        if self._client is None:
            return
        if futures and self._client.status == "running":
            self._client.cancel(futures)
        if self._own_client:
            cluster = self._client.cluster
            self._client.close()
            if cluster is not None:
                cluster.close()
        self._client = None


__all__ = ["DaskParallelRunner"]
