"""Run a Python function as the target, optionally under hard time and memory limits."""
from __future__ import annotations

import copy
import inspect
import math
import time
from typing import Any, Callable, Mapping, Sequence

from ..errors import ConfigurationError
from ..job import JobStatus, parse_result
from ..limits import LimitedCaller, check_limits
from ._base import AbstractSerialRunner, Cost

#: Trial fields passed to a target whose signature names them (as SMAC's required arguments).
TRIAL_ARGUMENTS = ("seed", "instance", "budget")


class TargetFunctionRunner(AbstractSerialRunner):
    """Runs ``target_function(config, **kwargs)`` for each trial (SMAC3's TargetFunctionRunner).

    The target receives the configuration, then ``seed``, ``instance`` and ``budget`` if its
    signature names them (or the names in ``required_arguments``), then ``target_kwargs``. It
    returns a float, a list of floats, a dict (``{'loss' | 'cost': ..., 'info': {...}}``) or a
    tuple ``(cost, info)``.

    With ``walltime_limit`` (seconds) or ``memory_limit`` (MiB, enforced with RLIMIT_AS) the target
    runs in a reusable child process that is killed on the limit: TIMEOUT or MEMOUT. Without
    limits it runs in the calling process, which is fastest.
    """

    def __init__(self, target_function: Callable[..., Any], *,
                 required_arguments: Sequence[str] | None = None,
                 target_kwargs: Mapping[str, Any] | None = None,
                 walltime_limit: float | None = None, memory_limit: int | None = None,
                 objectives: Sequence[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not callable(target_function):
            raise ConfigurationError("target_function must be callable, got "
                                     f"{type(target_function).__name__}")
        check_limits(walltime_limit, memory_limit)
        self._target_function = target_function
        self._required = tuple(self._detect_arguments(target_function) if required_arguments is None
                               else required_arguments)
        unknown = set(self._required) - set(TRIAL_ARGUMENTS)
        if unknown:
            raise ConfigurationError(f"required_arguments {sorted(unknown)} are not trial fields; "
                                     f"allowed: {list(TRIAL_ARGUMENTS)}")
        self._target_kwargs = dict(target_kwargs or {})
        self._objectives = list(objectives) if objectives is not None else None
        self._walltime_limit = walltime_limit
        self._memory_limit = memory_limit
        self._caller: LimitedCaller | None = None
        if walltime_limit is not None or memory_limit is not None:
            self._caller = LimitedCaller(target_function, walltime_limit, memory_limit)

    @staticmethod
    def _detect_arguments(function: Callable[..., Any]) -> list[str]:
        try:
            parameters = inspect.signature(function).parameters
        except (TypeError, ValueError):
            return []
        return [name for name in TRIAL_ARGUMENTS if name in parameters]

    @property
    def target_function(self) -> Callable[..., Any]:
        return self._target_function

    def run(self, config: Any, instance: str | None = None, budget: float | None = None,
            seed: int | None = None, additional_info: dict[str, Any] | None = None,
            ) -> tuple[JobStatus, Cost, float, float, dict[str, Any]]:
        """Call the target once; limits, if any, are enforced in a child process."""
        trial = {"seed": seed, "instance": instance, "budget": budget}
        kwargs = {name: trial[name] for name in self._required}
        kwargs.update(self._target_kwargs)
        config = copy.deepcopy(config)  # the target must not change the caller's config
        if self._caller is None:
            start, cpu_start = time.monotonic(), time.process_time()
            rval = self._target_function(config, **kwargs)
            runtime, cpu_time = time.monotonic() - start, time.process_time() - cpu_start
        else:
            result = self._caller.call(config, **kwargs)
            if result.status is not JobStatus.SUCCESS:
                return result.status, math.inf, result.runtime, result.cpu_time, result.info or {}
            rval, runtime, cpu_time = result.value, result.runtime, result.cpu_time
        cost, info = parse_result(rval, self._objectives)
        return JobStatus.SUCCESS, cost, runtime, cpu_time, info

    @property
    def meta(self) -> dict[str, Any]:
        return {**super().meta, "target": getattr(self._target_function, "__qualname__",
                                                  repr(self._target_function)),
                "walltime_limit": self._walltime_limit, "memory_limit": self._memory_limit}

    def close(self) -> None:
        """Kill idle limit children; the runner can still run trials via ``run_wrapper``."""
        super().close()
        if self._caller is not None:
            self._caller.close()


__all__ = ["TargetFunctionRunner", "TRIAL_ARGUMENTS"]
