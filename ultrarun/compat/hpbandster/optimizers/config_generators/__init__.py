"""``hpbandster.optimizers.config_generators``: samplers for a custom ``Master``.

``RandomSampling(configspace)`` and ``bohb.BOHB(configspace, ...)`` are ultrarun's random and
BOHB optimizers behind HpBandSter's ``get_config(budget)`` / ``new_result(job)`` interface.
"""
from __future__ import annotations

from typing import Any

from ultrarun.optimizers import BaseOptimizer, RandomSearch
from ...core.base_config_generator import base_config_generator


class OptimizerGenerator(base_config_generator):
    """An ultrarun optimizer (ask/tell) as an HpBandSter config generator."""

    def __init__(self, optimizer: BaseOptimizer, **kwargs: Any):
        super().__init__(**kwargs)
        self.optimizer = optimizer
        self.configspace = optimizer.configspace

    def get_config(self, budget: float | None) -> tuple[dict, dict]:
        """A configuration for ``budget``. ``None`` (Ray Tune's ``TuneBOHB`` passes it) samples
        as for any budget, as in HpBandSter, whose model is the largest budget's anyway; the
        configuration is not kept as in flight, since its result comes with its own budget."""
        if budget is None:
            ((config, info),) = self.optimizer.ask(1.0)
            self.optimizer.cancel(config, 1.0)
            return config, info
        ((config, info),) = self.optimizer.ask(budget)
        return config, info

    def new_result(self, job: Any, update_model: bool = True) -> None:
        super().new_result(job, update_model)
        result = job.result
        self.optimizer.tell(job.kwargs["config"], None if result is None else result["loss"],
                            job.kwargs["budget"])


class RandomSampling(OptimizerGenerator):
    """``RandomSampling(configspace)``: uniform random configurations."""

    def __init__(self, configspace: Any, seed: int | None = None, **kwargs: Any):
        super().__init__(RandomSearch(configspace, seed=seed), **kwargs)

    def new_result(self, job: Any, update_model: bool = True) -> None:
        base_config_generator.new_result(self, job, update_model)
        self.optimizer.cancel(job.kwargs["config"], job.kwargs["budget"])


__all__ = ["RandomSampling", "OptimizerGenerator"]
