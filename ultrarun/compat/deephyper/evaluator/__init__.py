"""``deephyper.evaluator`` on ultrarun: ``Evaluator``, ``RunningJob``, ``Job``, ``HPOJob``,
``JobStatus``, ``profile`` and (in :mod:`.callback`) ``TqdmCallback`` and ``CSVLoggerCallback``.

With DeepHyper installed, :class:`Evaluator` *is* a ``deephyper.evaluator.Evaluator`` (a
subclass whose jobs run on an ultrarun backend: ``"serial"``, ``"thread"``, ``"process"``,
``"pyro"``, ``"dask"``, ``"ray"``, or any :class:`ultrarun.executor.Executor` such as a cluster's
``Dispatcher`` given as ``method_kwargs={"executor": ...}``), so DeepHyper's searches (``CBO``,
...) take it, and ``Job``/``HPOJob``/``JobStatus``/``profile``/the callbacks are DeepHyper's own:
its CSV columns, its CANCELLED jobs at ``close()``. Without DeepHyper, :class:`Evaluator` is
ultrarun's evaluator speaking DeepHyper's API (see :mod:`._standalone`). Either way the run
function gets a :class:`RunningJob`, may be ``async def``, and ``method="process"`` needs no
``if __name__ == "__main__"`` guard where ``fork`` exists (DeepHyper's process pool forks too).
See docs/migrating.md.
"""
from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Mapping
from typing import Any, Callable

from ultrarun.job import to_plain

from ._running import RawOutput, RunningJob, call, fork_context  # noqa: F401

try:
    from deephyper import evaluator as _deephyper
except ImportError:  # DeepHyper is not installed: ultrarun's evaluator with DeepHyper's API
    _deephyper = None


if _deephyper is not None:
    from deephyper.evaluator import HPOJob, Job, JobStatus, profile  # noqa: F401

    class Evaluator(_deephyper.Evaluator):
        """A DeepHyper evaluator whose jobs run on an ultrarun backend (module docstring).

        ``Evaluator.create(run_function, method, method_kwargs)`` takes DeepHyper's arguments
        (``num_workers``, ``callbacks``, ``run_function_kwargs``, ``storage``, ``search_id``)
        and ultrarun's (``executor``, ``walltime_limit``, ``memory_limit``, a backend's own).
        A run that raises or times out is gathered with objective ``"F_<STATUS>"`` (e.g.
        ``"F_CRASHED"``) and the error in ``metadata["error"]``.
        """

        def __init__(self, run_function: Callable[..., Any], num_workers: int = 1,
                     callbacks: list | None = None, run_function_kwargs: dict | None = None,
                     storage: Any = None, search_id: Any = None, *, backend: str = "thread",
                     executor: Any = None, walltime_limit: float | None = None,
                     memory_limit: int | None = None, **runner_kwargs: Any):
            super().__init__(run_function, num_workers, callbacks, run_function_kwargs,
                             storage, search_id)
            self.backend = backend
            if executor is None:
                executor = _runner_executor(run_function, backend, num_workers,
                                            self.run_function_kwargs, walltime_limit,
                                            memory_limit, runner_kwargs)
            from ultrarun.executor import Executor

            self._executor = Executor.of(executor).bind(self._settle)
            self._executor.start()
            self._ids = itertools.count()
            self._waiting: dict[int, tuple[Any, asyncio.Future]] = {}
            self._waiting_lock = threading.Lock()

        @staticmethod
        def create(run_function: Callable[..., Any], method: str = "serial",
                   method_kwargs: Mapping[str, Any] | None = None) -> "Evaluator":
            """DeepHyper's ``Evaluator.create``; ``method`` names the ultrarun backend."""
            return Evaluator(run_function, backend=method, **dict(method_kwargs or {}))

        def _settle(self, job: Any) -> None:  # the executor's thread
            with self._waiting_lock:
                waiting = self._waiting.pop(job.id, None)
            if waiting is not None:
                loop, future = waiting
                try:
                    loop.call_soon_threadsafe(_resolve, future, job)
                except RuntimeError:  # the loop was closed: nobody waits for it any more
                    pass

        async def execute(self, job: Any) -> Any:
            async with self.sem:
                job.status = JobStatus.RUNNING
                key = next(self._ids)
                future = self.loop.create_future()
                with self._waiting_lock:
                    self._waiting[key] = (self.loop, future)
                # the budget is the executor's (a Pyro worker is called with one); the run
                # function is not given it
                self._executor.submit_job(key, config=to_plain(dict(job.args), "job args"),
                                          budget=1.0)
                if self.timeout is None:
                    done = await future
                else:
                    try:
                        done = await asyncio.wait_for(asyncio.shield(future), self.time_left)
                    except asyncio.TimeoutError:  # as DeepHyper's thread pool: let it finish
                        job.status = JobStatus.CANCELLING
                        done = await future
                        job.status = JobStatus.CANCELLED
                return self._update_job_when_done(job, _output(done))

        def to_json(self) -> dict:
            return {**super().to_json(), "backend": self.backend}

        def close(self) -> list:
            jobs = super().close()
            executor = getattr(self, "_executor", None)  # None if __init__ failed
            if executor is not None:
                executor.shutdown(shutdown_workers=True)
            return jobs

    def _runner_executor(run_function: Callable[..., Any], backend: str, num_workers: int,
                         run_function_kwargs: dict, walltime_limit: Any, memory_limit: Any,
                         runner_kwargs: dict) -> Any:
        from ultrarun.runners._registry import make_runner
        from ultrarun.runners._target_function import TargetFunctionRunner

        single = TargetFunctionRunner(RawOutput(run_function), required_arguments=(),
                                      target_kwargs=run_function_kwargs,
                                      walltime_limit=walltime_limit, memory_limit=memory_limit)
        if backend == "process" and "mp_context" not in runner_kwargs:
            runner_kwargs["mp_context"] = fork_context()
        if backend != "serial":
            runner_kwargs.setdefault("n_workers", num_workers)
        return make_runner(backend, single, **runner_kwargs)

    def _resolve(future: asyncio.Future, job: Any) -> None:
        if not future.done():
            future.set_result(job)

    def _output(job: Any) -> Any:
        """What DeepHyper's job gets from a finished ultrarun job."""
        if job.result is not None and job.status.name == "SUCCESS":
            return job.result["info"]["output"]
        error = str(job.exception or job.status.name).strip().splitlines()
        # DeepHyper's output-and-metadata form: a search's HPOJob reads the objective from it,
        # a plain Job its output
        return {"output": f"F_{job.status.name}",
                "metadata": {"error": error[-1] if error else job.status.name}}

    from . import callback  # noqa: E402,F401  (deephyper.evaluator.callback)

else:
    from ._standalone import (HPOJob, Job, JobStatus, Evaluator, RunFunction,  # noqa: F401
                              profile)
    from . import callback  # noqa: E402,F401

__all__ = ["Evaluator", "RunningJob", "Job", "HPOJob", "JobStatus", "profile", "callback"]
