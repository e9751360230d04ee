"""Run a command-line program as the target (SMAC3's script runner); see docs/runners.md."""
from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from typing import Any, Mapping, Sequence

from ..errors import ConfigurationError, ResultError
from ..job import JobStatus, parse_result
from ..limits import check_limits, child_env, exit_status
from ._base import AbstractSerialRunner, Cost

#: Runs the program under RLIMIT_AS: ``python -c _RLIMIT_EXEC <MB> <program> <args...>``.
_RLIMIT_EXEC = ("import os, sys; from ultrarun.limits import set_memory_limit; "
                "set_memory_limit(float(sys.argv[1])); os.execvp(sys.argv[2], sys.argv[2:])")
_TAIL = 2000


def parse_script_output(stdout: str) -> tuple[Any, dict[str, Any]]:
    """Find the result in a program's stdout: the last JSON object or ``cost=``/``loss=`` line."""
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                data = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(data, dict):
                return parse_result(data)
        key, sep, value = line.partition("=")
        if sep and key.strip() in ("cost", "loss"):
            try:
                return float(value), {}
            except ValueError as exc:
                raise ResultError(f"cannot read the cost in the line {line!r}: {exc}") from None
    raise ResultError("the program printed no result line; print a JSON object such as "
                      '{"cost": 0.25} or a line cost=0.25 as the last result line')


class ScriptRunner(AbstractSerialRunner):
    """Runs a command-line program per trial, with the same limits as the function runner.

    The program is called as ``<command> --<name>=<value> ... [--seed=S] [--instance=I]
    [--budget=B]``; the **last** result line of its stdout counts: a JSON object
    (``{"cost": 0.25, "info": {...}}``; ``"loss"`` for ``"cost"``, a list for several
    objectives) or ``cost=0.25`` (``loss=0.25``). A non-zero exit is CRASHED with the end of
    stderr; the walltime limit kills the program's process group (TIMEOUT); the memory limit is
    RLIMIT_AS, set before the program starts, and a ``MemoryError`` or SIGKILL under it is MEMOUT.
    """

    def __init__(self, command: str | Sequence[str], *, walltime_limit: float | None = None,
                 memory_limit: int | None = None, cwd: str | None = None,
                 env: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._command = shlex.split(command) if isinstance(command, str) else list(command)
        if not self._command:
            raise ConfigurationError("command must name a program to run")
        check_limits(walltime_limit, memory_limit)
        self._walltime_limit = walltime_limit
        self._memory_limit = memory_limit
        self._cwd = cwd
        self._env = dict(env) if env is not None else None

    def arguments(self, config: Any, instance: str | None, budget: float | None,
                  seed: int | None) -> list[str]:
        """The command line of one trial (configuration entries, then the trial fields)."""
        items = list(dict(config).items())
        items += [(k, v) for k, v in (("seed", seed), ("instance", instance), ("budget", budget))
                  if v is not None]
        prefix = [] if self._memory_limit is None else [
            sys.executable, "-c", _RLIMIT_EXEC, str(self._memory_limit)]
        return prefix + self._command + [f"--{key}={value}" for key, value in items]

    def run(self, config: Any, instance: str | None = None, budget: float | None = None,
            seed: int | None = None, additional_info: dict[str, Any] | None = None,
            ) -> tuple[JobStatus, Cost, float, float, dict[str, Any]]:
        """Run the program once and read its result line."""
        env = child_env(self._memory_limit)
        if self._env:
            env.update(self._env)
        before = os.times()
        start = time.monotonic()
        proc = subprocess.Popen(self.arguments(config, instance, budget, seed), cwd=self._cwd,
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, start_new_session=True)
        try:
            stdout, stderr = proc.communicate(timeout=self._walltime_limit)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            timed_out = True
        runtime = time.monotonic() - start
        after = os.times()
        cpu_time = (after.children_user - before.children_user
                    + after.children_system - before.children_system)
        tail = {"stderr": stderr[-_TAIL:]} if stderr else {}
        if timed_out:
            return (JobStatus.TIMEOUT, float("inf"), runtime, cpu_time, {
                "error": f"the program exceeded the walltime limit of {self._walltime_limit} s",
                **tail})
        if proc.returncode != 0:
            if self._memory_limit is not None and "MemoryError" in stderr:
                status, info = JobStatus.MEMOUT, {"error": "the program ran out of memory "
                                                  f"(limit {self._memory_limit:g} MiB)"}
            else:
                status, info = exit_status(proc.returncode, self._memory_limit)
            return status, float("inf"), runtime, cpu_time, {**info, **tail}
        cost, info = parse_script_output(stdout)
        return JobStatus.SUCCESS, cost, runtime, cpu_time, info

    @property
    def meta(self) -> dict[str, Any]:
        return {**super().meta, "command": self._command,
                "walltime_limit": self._walltime_limit, "memory_limit": self._memory_limit}


#: SMAC3's name for the same runner.
TargetFunctionScriptRunner = ScriptRunner

__all__ = ["ScriptRunner", "TargetFunctionScriptRunner", "parse_script_output"]
