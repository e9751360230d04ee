"""``deephyper.evaluator``: ``Evaluator``, ``RunningJob``, ``Job`` (see the package docstring)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable, Iterator

from ultrarun import job as _job
from ultrarun.errors import ResultError
from ultrarun.runners import _evaluator as _native

#: DeepHyper's names of a job's timestamps (``ultrarun.job.TIMESTAMP_KEYS`` and ``gathered``).
TIMESTAMP_NAMES = {"submitted": "timestamp_submit", "started": "timestamp_start",
                   "finished": "timestamp_end", "gathered": "timestamp_gather"}


class Job(_job.Job):
    """A gathered job, readable with DeepHyper's names as well as ultrarun's: ``args`` and
    ``parameters`` (``kwargs``), ``output`` (``{"objective": value}``; a failure's objective is
    ``"F_<status>"``, e.g. ``"F_crashed"``), ``objective``, and ``metadata`` (the info the run
    function returned, its run and CPU times, and the ``TIMESTAMP_NAMES`` times)."""

    @property
    def args(self) -> dict[str, Any]:
        return self.kwargs

    parameters = args

    @property
    def output(self) -> dict[str, Any] | None:
        if not self.status.is_final:
            return None
        ok = self.status is _job.JobStatus.SUCCESS
        return {"objective": self.loss if ok else f"F_{self.status.name.lower()}"}

    @property
    def objective(self) -> Any:
        return (self.output or {}).get("objective")

    @property
    def metadata(self) -> dict[str, Any]:
        info = self.info or {}
        return {**info, **{TIMESTAMP_NAMES.get(k, k): v for k, v in self.timestamps.items()}}


class RunningJob(Mapping):
    """What the run function receives: the parameters (``job.parameters``, or the job itself as
    a read-only mapping) and the job's ``id``."""

    def __init__(self, id: Any = None, parameters: dict | None = None):
        self.id = id
        self.parameters = dict(parameters or {})

    def __getitem__(self, key: str) -> Any:
        return self.parameters[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.parameters)

    def __len__(self) -> int:
        return len(self.parameters)


class RunFunction:
    """A DeepHyper run function as an ultrarun target: gets a :class:`RunningJob`; its
    ``"F_..."`` results become failures, ``metadata`` the job's info. Picklable when the
    function is, so process backends can use it."""

    def __init__(self, func: Callable[..., Any]):
        self.func = func

    def __call__(self, args: dict, **kwargs: Any) -> Any:
        output = self.func(RunningJob(args.get("job_id"), args), **kwargs)
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
        super().__init__(RunFunction(run_function), *args, **{"job_class": Job, **kwargs})

    @staticmethod
    def create(run_function: Callable[..., Any], method: str = "serial",
               method_kwargs: Mapping[str, Any] | None = None) -> _native.Evaluator:
        if method_kwargs is None or isinstance(method_kwargs, Mapping):  # else native create refuses
            method_kwargs = {"job_class": Job, **(method_kwargs or {})}
        return _native.Evaluator.create(RunFunction(run_function), method, method_kwargs)


__all__ = ["Evaluator", "RunningJob", "Job", "RunFunction"]
