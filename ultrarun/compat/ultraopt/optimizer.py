"""``ultraopt.optimizer``: ``ETPEOptimizer`` and ``RandomOptimizer`` with ultraopt's interface.

Made without a search space, then ``initialize(config_space, budgets=(1,), random_state=42,
initial_points=None)``; ``ask(budget=1, n_points=None)`` gives ``(config, info)`` (a list of
them with ``n_points``), ``tell(config, loss, budget=1)`` and ``new_result(job)`` report results,
and ``budget2obvs`` / ``runId2info`` hold what was observed, as in ultraopt.
"""
from __future__ import annotations

import math
import time
from collections import defaultdict
from typing import Any, Iterable

from ultrarun import optimizers as _optimizers
from ultrarun.errors import ConfigurationError
from ultrarun.optimizers import BaseOptimizer as _NativeOptimizer


def _config_id(config: dict) -> str:
    return repr(sorted(config.items()))


def _new_run_info() -> dict:  # a named function: the optimizer pickles (ultraopt's checkpoints)
    return {"start_time": time.time(), "end_time": -1}


class BaseOptimizer:
    """An ultraopt optimizer over one of ultrarun's (built at :meth:`initialize`)."""

    def __init__(self, **options: Any):
        self.options = options
        self.is_init = False
        self.native: _NativeOptimizer | None = None
        self.budget2obvs: dict[float, dict[str, list]] = {}
        self.runId2info: dict[tuple[str, float], dict] = defaultdict(_new_run_info)
        self.configId2config: dict[str, dict] = {}

    def _native_class(self) -> type:
        raise NotImplementedError

    def initialize(self, config_space: Any, budgets: Iterable[float] = (1,),
                   random_state: int | None = 42, initial_points: list | None = None,
                   budget2obvs: dict | None = None) -> None:
        if self.is_init:
            return
        self.is_init = True
        self.config_space = config_space
        self.budgets = [float(b) for b in budgets]
        self.random_state = random_state
        self.initial_points = [dict(p) for p in initial_points or []]
        self.native = self._native_class()(config_space, seed=random_state, **self.options)
        self.budget2obvs = budget2obvs or {b: {"losses": [], "configs": []} for b in self.budgets}

    def _check(self) -> _NativeOptimizer:
        if self.native is None:
            raise ConfigurationError(f"{type(self).__name__} is not initialized; call "
                                     "optimizer.initialize(config_space, budgets) first")
        return self.native

    # -- ultraopt's interface --------------------------------------------------------------
    def ask(self, budget: float = 1, n_points: int | None = None) -> Any:
        """One ``(config, config_info)``, or a list of ``n_points`` of them."""
        pairs = self.suggest(budget, 1 if n_points is None else n_points)
        return pairs[0] if n_points is None else pairs

    def get_config(self, budget: float) -> tuple[dict, dict]:
        return self.ask(budget)

    def tell(self, config: Any, loss: float | None, budget: float = 1,
             update_model: bool = True) -> None:
        config = dict(config)
        self._check().tell(config, loss, budget)
        self.observe(config, loss, budget)

    def new_result(self, job: Any, update_model: bool = True) -> None:
        """A finished job (``job.result`` None or without a finite loss counts as a failure)."""
        result = job.result
        loss = None if result is None else result.get("loss")
        self.tell(job.kwargs["config"], loss, job.kwargs["budget"], update_model)

    def get_available_max_budget(self) -> float:
        """The largest budget with a result (else the smallest budget)."""
        seen = [b for b, obvs in self.budget2obvs.items() if obvs["losses"]]
        return max(seen) if seen else min(self.budget2obvs, default=1.0)

    # -- what ultrarun's master needs ------------------------------------------------------
    def suggest(self, budget: float, n: int) -> list[tuple[dict, dict]]:
        pairs = []
        while self.initial_points and len(pairs) < n:
            pairs.append((self.initial_points.pop(0), {"origin": "User Defined"}))
        if len(pairs) < n:
            pairs += self._check().ask(budget, n - len(pairs))
        for config, _ in pairs:
            key = (_config_id(config), float(budget))
            self.configId2config[key[0]] = config
            self.runId2info[key]["start_time"] = time.time()
        return pairs

    def observe(self, config: dict, loss: float | None, budget: float) -> None:
        value = math.inf if loss is None or not math.isfinite(loss) else float(loss)
        obvs = self.budget2obvs.setdefault(float(budget), {"losses": [], "configs": []})
        obvs["losses"].append(value)
        obvs["configs"].append(config)
        info = self.runId2info[(_config_id(config), float(budget))]
        info.update(end_time=time.time(), loss=value)

    def as_native(self) -> "_Recording":
        """This optimizer as the ask/tell optimizer ultrarun's master drives."""
        return _Recording(self)


class _Recording(_NativeOptimizer):
    """Delegates to the ultraopt optimizer's native one and records every result in it."""

    def __init__(self, owner: BaseOptimizer):  # the native optimizer owns the space
        self.owner = owner
        native = owner._check()
        self.configspace, self.seed = native.configspace, native.seed

    def ask(self, budget: float, n_points: int = 1) -> list[tuple[dict, dict]]:
        return self.owner.suggest(budget, n_points)

    def tell(self, config: Any, loss: Any, budget: float) -> None:
        self.owner.tell(config, loss, budget)

    def replay(self, results: Any, random_picks: int = 0) -> None:
        self.owner._check().replay([], random_picks)
        for result in results:  # recorded one by one, as told
            self.tell(*result)

    def mark_running(self, config: Any, budget: float) -> None:
        self.owner._check().mark_running(config, budget)
        self.owner.runId2info[(_config_id(dict(config)), float(budget))]["start_time"] = time.time()

    def cancel(self, config: Any, budget: float) -> None:
        self.owner._check().cancel(config, budget)

    def _suggest(self, budget: float) -> Any:
        raise NotImplementedError


class ETPEOptimizer(BaseOptimizer):
    """ultraopt's TPE optimizer on ultrarun's (:class:`ultrarun.optimizers.TPE`); options go to
    its constructor."""

    def _native_class(self) -> type:
        return _optimizers.TPE


class RandomOptimizer(BaseOptimizer):
    def _native_class(self) -> type:
        return _optimizers.RandomSearch


__all__ = ["BaseOptimizer", "ETPEOptimizer", "RandomOptimizer"]
