"""What runs where the job runs: the :class:`RunningJob` a run function gets, ``async def``
run functions, and the start method that needs no ``__main__`` guard."""
from __future__ import annotations

import asyncio
import inspect
import multiprocessing
from collections.abc import Mapping
from typing import Any, Callable, Iterator

from ultrarun.job import to_plain


class RunningJob(Mapping):
    """What the run function receives: the parameters (``job.parameters``, or the job itself as
    a read-only mapping) and the job's ``id``. ``record`` and ``stopped`` are there for run
    functions written for DeepHyper's stoppers (no stopper runs here: ``stopped()`` is False)."""

    def __init__(self, id: Any = None, parameters: dict | None = None):
        self.id = id
        self.parameters = dict(parameters or {})
        self._record: tuple[float, float] | None = None

    def __getitem__(self, key: str) -> Any:
        if key == "job_id" and key not in self.parameters:
            return self.id
        return self.parameters[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.parameters)

    def __len__(self) -> int:
        return len(self.parameters)

    def record(self, budget: float, objective: float) -> None:
        self._record = (budget, objective)

    def stopped(self) -> bool:
        return False

    @property
    def objective(self) -> Any:
        return None if self._record is None else self._record[1]


def call(func: Callable[..., Any], job: RunningJob, **kwargs: Any) -> Any:
    """``func(job, **kwargs)``, run to its end when it is ``async def``."""
    output = func(job, **kwargs)
    if inspect.isawaitable(output):
        output = asyncio.run(_awaited(output))
    return output


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def fork_context() -> Any:
    """``"fork"`` where it exists (what DeepHyper's process pool uses on Linux): children need
    no ``__main__`` guard. None elsewhere (ultrarun's default)."""
    return "fork" if "fork" in multiprocessing.get_all_start_methods() else None


class RawOutput:
    """A run function as an ultrarun target that hands back DeepHyper's output untouched (in
    the result's info) for DeepHyper's evaluator to read. Picklable when the function is."""

    def __init__(self, func: Callable[..., Any]):
        self.func = func

    def __call__(self, args: dict, **kwargs: Any) -> dict:
        output = call(self.func, RunningJob(None, args), **kwargs)
        return {"loss": 0.0, "info": {"output": to_plain(output, "the run function's output")}}


__all__ = ["RunningJob", "RawOutput", "call", "fork_context"]
