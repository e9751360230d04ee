"""``deephyper.evaluator`` without DeepHyper: ultrarun's evaluator speaking DeepHyper's API.

Gathered jobs have DeepHyper's attribute names (``args``, ``output``, ``objective``,
``metadata``), the run function gets a :class:`RunningJob`, ``profile`` adds the run's start
and end to its metadata, and ``close()`` returns the jobs it cancelled, as DeepHyper's does.
"""
from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from typing import Any, Callable

from ultrarun import job as _job
from ultrarun.errors import ResultError
from ultrarun.job import JobStatus
from ultrarun.runners import _evaluator as _native

from ._running import RunningJob, call, fork_context

#: DeepHyper's names of a job's timestamps (``ultrarun.job.TIMESTAMP_KEYS`` and ``gathered``).
TIMESTAMP_NAMES = {"submitted": "timestamp_submit", "started": "timestamp_start",
                   "finished": "timestamp_end", "gathered": "timestamp_gather"}


class Job(_job.Job):
    """A gathered job, readable with DeepHyper's names as well as ultrarun's: ``args`` and
    ``parameters`` (``kwargs``), ``output`` (what the run function returned, ``"F_<status>"``,
    e.g. ``"F_crashed"``, for a failure), ``objective`` and ``metadata`` (the run function's
    metadata, its run and CPU times, and the ``TIMESTAMP_NAMES`` times)."""

    @property
    def args(self) -> dict[str, Any]:
        return self.kwargs

    parameters = args

    @property
    def objective(self) -> Any:
        if not self.status.is_final:
            return None
        ok = self.status is _job.JobStatus.SUCCESS
        return self.loss if ok else f"F_{self.status.name.lower()}"

    @property
    def output(self) -> Any:
        return self.objective

    @property
    def metadata(self) -> dict[str, Any]:
        info = self.info or {}
        return {**info, **{TIMESTAMP_NAMES.get(k, k): v for k, v in self.timestamps.items()}}


class HPOJob(Job):
    """The job of DeepHyper's searches: ``output`` is ``{"objective": value}``."""

    @property
    def output(self) -> dict[str, Any] | None:
        return None if not self.status.is_final else {"objective": self.objective}


def profile(_func: Callable[..., Any] | None = None, *, memory: bool = False,
            **_: Any) -> Any:
    """DeepHyper's ``@profile``: the run's start and end (``time.time()``) go to its metadata
    as ``timestamp_start`` / ``timestamp_end``. ``memory=True`` is accepted; use the
    evaluator's ``memory_limit`` to bound memory."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def profiled(*args: Any, **kwargs: Any) -> Any:
            start = time.time()
            output = call(func, *args, **kwargs)
            times = {"timestamp_start": start, "timestamp_end": time.time()}
            if isinstance(output, dict) and "objective" in output:
                return {**output, "metadata": {**(output.get("metadata") or {}), **times}}
            if isinstance(output, str):
                return output
            return {"objective": output, "metadata": times}

        return profiled

    return decorate if _func is None else decorate(_func)


class RunFunction:
    """A DeepHyper run function as an ultrarun target: gets a :class:`RunningJob` (and is
    awaited if ``async def``); its ``"F_..."`` results become failures, ``metadata`` the job's
    info. Picklable when the function is, so process backends can use it."""

    def __init__(self, func: Callable[..., Any]):
        self.func = func

    def __call__(self, args: dict, **kwargs: Any) -> Any:
        output = call(self.func, RunningJob(args.get("job_id"), args), **kwargs)
        if isinstance(output, str):
            raise ResultError(f"the run function reported a failure: {output}")
        if isinstance(output, dict) and "objective" in output:
            metadata = output.get("metadata") or {}
            if isinstance(output["objective"], str):
                raise ResultError(f"the run function reported a failure: {output['objective']}")
            return {"objective": output["objective"], "info": dict(metadata)}
        return output


class Evaluator(_native.Evaluator):
    """ultrarun's evaluator whose run function speaks DeepHyper's ``RunningJob`` and whose
    jobs are :class:`Job` objects."""

    def __init__(self, run_function: Callable[..., Any], *args: Any, **kwargs: Any):
        if kwargs.get("backend") == "process" and "mp_context" not in kwargs:
            kwargs["mp_context"] = fork_context()
        super().__init__(RunFunction(run_function), *args, **{"job_class": Job, **kwargs})

    @staticmethod
    def create(run_function: Callable[..., Any], method: str = "serial",
               method_kwargs: Mapping[str, Any] | None = None) -> _native.Evaluator:
        """DeepHyper's ``Evaluator.create``: ``method`` names an ultrarun backend."""
        if method_kwargs is not None and not isinstance(method_kwargs, Mapping):
            return _native.Evaluator.create(run_function, method, method_kwargs)  # refuses it
        if method not in _native.runner_names():  # "mpicomm" and other registered evaluators
            return _native.Evaluator.create(RunFunction(run_function), method,
                                            {"job_class": Job, **(method_kwargs or {})})
        return Evaluator(run_function, backend=method, **dict(method_kwargs or {}))

    def close(self) -> list:  # type: ignore[override]
        """Stop the backend; jobs not gathered yet are gathered, those still running as
        CANCELLED (DeepHyper's rule); returns the cancelled ones. Idempotent."""
        if self._closed:
            return []
        self._collect()
        finished, self._ready = self._ready, []
        super().close()
        cancelled = [job for job in self.jobs.values()
                     if not job.status.is_final and job not in finished]
        for job in cancelled:
            job.status = JobStatus.CANCELLED
            job.exception = "the evaluator was closed before the job was gathered"
        for job in finished + cancelled:
            job.time_it("gathered")
            for callback in self._callbacks:
                callback.on_done(job)
        self._num_gathered += len(finished) + len(cancelled)
        self.jobs_done.extend(finished + cancelled)
        return cancelled


__all__ = ["Evaluator", "RunFunction", "Job", "HPOJob", "JobStatus", "profile",
           "TIMESTAMP_NAMES"]
