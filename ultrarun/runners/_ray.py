"""The Ray backend (optional: ``pip install ultrarun[ray]``).

Each trial is a Ray task running ``single_worker.run_wrapper``. Ray retries tasks whose worker
died (``max_retries`` of the task, default 3); when it gives up the trial is LOST.
"""
from __future__ import annotations

import os
import sys
from typing import Any, Sequence

from ..errors import ConfigurationError
from ._base import AbstractParallelRunner, AbstractRunner, Outcome, TrialInfo, WorkerLost, check_n_workers


def _run_wrapper(single_worker: AbstractRunner, trial_info: TrialInfo) -> Any:
    return single_worker.run_wrapper(trial_info)


class RayRunner(AbstractParallelRunner):
    """Runs trials as Ray tasks; connects with ``ray.init(**init_kwargs)`` on first use
    unless Ray is already initialised (then it is left running on close)."""

    def __init__(self, single_worker: AbstractRunner, n_workers: int | None = None, *,
                 num_cpus_per_task: float = 1, init_kwargs: dict[str, Any] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(single_worker, **kwargs)
        try:
            import ray  # noqa: F401
        except ImportError as exc:
            raise ConfigurationError("the ray backend needs ray: pip install 'ultrarun[ray]'") from exc
        self._n_requested = check_n_workers(n_workers, None)
        self._num_cpus = num_cpus_per_task
        self._init_kwargs = dict(init_kwargs or {})
        self._own_ray = False
        self._remote: Any = None
        self._refs: dict[Any, int] = {}
        self._worker_ref: Any = None

    def _ray(self) -> Any:
        import ray

        if self._remote is None:
            if not ray.is_initialized():
                if self._n_requested is not None:
                    self._init_kwargs.setdefault("num_cpus", self._n_requested * self._num_cpus)
                # Ray's workers import the target as this process does, and stay on this host.
                self._init_kwargs.setdefault("runtime_env", {"env_vars": {
                    "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}})
                self._init_kwargs.setdefault("include_dashboard", False)
                ray.init(**self._init_kwargs)
                self._own_ray = True
            self._remote = ray.remote(num_cpus=self._num_cpus)(_run_wrapper)
            self._worker_ref = ray.put(self._single_worker)
        return ray

    @property
    def num_workers(self) -> int:
        if self._n_requested is not None:
            return self._n_requested
        return max(1, int(self._ray().cluster_resources().get("CPU", 1) // self._num_cpus))

    def _submit(self, token: int, trial_info: TrialInfo) -> None:
        self._ray()
        self._refs[self._remote.remote(self._worker_ref, trial_info)] = token

    def _poll(self, timeout: float | None) -> list[tuple[int, Outcome]]:
        if not self._refs:
            return []
        ray = self._ray()
        done, _ = ray.wait(list(self._refs), num_returns=1, timeout=timeout)
        if done:  # take everything else that is ready too
            done, _ = ray.wait(list(self._refs), num_returns=len(self._refs), timeout=0)
        out: list[tuple[int, Outcome]] = []
        for ref in done:
            token = self._refs.pop(ref)
            try:
                out.append((token, ray.get(ref)))
            except ray.exceptions.WorkerCrashedError as exc:
                out.append((token, WorkerLost(f"the Ray worker died: {exc}", retry=False)))
            except ray.exceptions.TaskCancelledError as exc:
                out.append((token, exc))
            except ray.exceptions.RayTaskError as exc:
                out.append((token, exc.as_instanceof_cause()))
        return out

    def _cancel(self, tokens: Sequence[int]) -> None:
        ray = self._ray()
        wanted = set(tokens)
        for ref, token in list(self._refs.items()):
            if token in wanted:
                ray.cancel(ref, force=True)
                del self._refs[ref]

    def _close(self) -> None:
        if self._remote is None:
            return
        self._cancel(list(self._refs.values()))
        if self._own_ray:
            self._ray().shutdown()
        self._remote = None


__all__ = ["RayRunner"]
