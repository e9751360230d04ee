"""The MPI backend on ``mpi4py.futures.MPICommExecutor`` (DeepHyper's MPICommEvaluator).

Under ``mpirun -n N`` rank ``root`` runs the search and the other N-1 ranks serve trials inside
``__enter__`` until the root leaves its ``with`` block. A rank that dies ends the MPI job (MPI's
model): there is no retry. Install with ``pip install ultrarun[mpi]``; see docs/runners.md.
"""
from __future__ import annotations

import concurrent.futures
import logging
from typing import Any, Callable, Iterable, Mapping, cast

from ..errors import ConfigurationError, UltrarunError
from ._base import AbstractRunner
from ._evaluator import Callback, Evaluator, register_evaluator
from ._thread import FuturesRunner

logger = logging.getLogger(__name__)


class MPICommRunner(FuturesRunner):
    """Runs trials on the other ranks of an MPI communicator; use it as a context manager.

    ``__enter__`` returns the runner on the root rank and None on worker ranks, after they have
    served trials until the root exited. ``abort_on_exit`` calls ``comm.Abort`` on exit (ends
    every rank at once); otherwise the root's pool is shut down with ``wait_on_exit`` and
    ``cancel_jobs_on_exit``.
    """

    def __init__(self, single_worker: AbstractRunner, comm: Any = None, root: int = 0,
                 n_workers: int | None = None, *, abort_on_exit: bool = False,
                 wait_on_exit: bool = True, cancel_jobs_on_exit: bool = True,
                 **kwargs: Any) -> None:
        super().__init__(single_worker, **kwargs)
        try:
            from mpi4py import MPI
            from mpi4py.futures import MPICommExecutor
        except ImportError as exc:
            raise ConfigurationError("the mpicomm backend needs mpi4py and an MPI library: "
                                     "pip install 'ultrarun[mpi]'") from exc
        self._comm = comm if comm is not None else MPI.COMM_WORLD
        size = self._comm.Get_size()
        if size < 2:
            raise ConfigurationError("the mpicomm backend needs at least 2 MPI ranks (one root, "
                                     "one worker); run with mpirun -n 2 or more")
        if not isinstance(root, int) or not 0 <= root < size:
            raise ConfigurationError(f"root must be a rank in 0..{size - 1}, got {root!r}")
        if n_workers is not None and n_workers != size - 1:
            logger.warning("n_workers=%s ignored: the communicator has %d worker ranks",
                           n_workers, size - 1)
        self._n_workers = size - 1
        self._abort_on_exit = abort_on_exit
        self._wait_on_exit = wait_on_exit
        self._cancel_jobs_on_exit = cancel_jobs_on_exit
        self._mpi_context = MPICommExecutor(self._comm, root=root)
        self._pool: concurrent.futures.Executor | None = None
        self._entered = False

    @property
    def is_root(self) -> bool:
        return self._pool is not None

    def __enter__(self) -> MPICommRunner | None:  # type: ignore[override]
        if self._entered:
            raise UltrarunError("an MPICommRunner can be entered once")
        self._entered = True
        self._pool = self._mpi_context.__enter__()
        return self if self._pool is not None else None

    def __exit__(self, *exc_info: object) -> None:
        if self._abort_on_exit:
            self._comm.Abort(1)
        self.close()

    def _make_executor(self) -> concurrent.futures.Executor:
        if self._pool is None:
            raise UltrarunError("use the MPI runner in a with block, on the root rank: "
                                "with MPICommRunner(...) as runner: if runner is not None: ...")
        return self._pool

    def _close(self) -> None:
        futures, self._futures = list(self._futures), {}
        pool, self._pool = self._pool, None
        if pool is not None:
            if self._cancel_jobs_on_exit:
                for future in futures:
                    future.cancel()
            pool.shutdown(wait=self._wait_on_exit, cancel_futures=self._cancel_jobs_on_exit)
        self._executor = None
        if self._entered:
            self._mpi_context.__exit__(None, None, None)


class MPICommEvaluator(Evaluator):
    """DeepHyper's MPICommEvaluator: one root rank submits, the other ranks run jobs."""

    def __init__(self, run_function: Callable[..., Any], num_workers: int | None = None,
                 callbacks: Iterable[Callback] | None = None,
                 run_function_kwargs: Mapping[str, Any] | None = None, comm: Any = None,
                 root: int = 0, abort_on_exit: bool = False, wait_on_exit: bool = True,
                 cancel_jobs_on_exit: bool = True, **kwargs: Any) -> None:
        mpi_kwargs = {"comm": comm, "root": root, "abort_on_exit": abort_on_exit,
                      "wait_on_exit": wait_on_exit, "cancel_jobs_on_exit": cancel_jobs_on_exit}
        super().__init__(run_function, num_workers, callbacks, run_function_kwargs,
                         backend="mpicomm", **kwargs, **mpi_kwargs)

    def __enter__(self) -> MPICommEvaluator | None:
        runner = cast(MPICommRunner, self._runner)
        return self if runner.__enter__() is not None else None

    def __exit__(self, *exc_info: object) -> None:
        cast(MPICommRunner, self._runner).__exit__(*exc_info)
        self.close()


register_evaluator("mpicomm", MPICommEvaluator)

__all__ = ["MPICommRunner", "MPICommEvaluator"]
