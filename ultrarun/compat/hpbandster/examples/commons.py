"""``hpbandster.examples.commons``: ``MyWorker``, the toy worker of HpBandSter's examples 1-3.

Its loss is ``x`` with noise that shrinks with the budget, clipped to ``[x/2, 1.5 x]``;
``sleep_interval`` seconds pass in each ``compute``, and ``get_configspace()`` is one uniform
float ``x`` in [0, 1], as in HpBandSter's.
"""
from __future__ import annotations

import time
from typing import Any

import ConfigSpace as CS
import numpy

from ..core.worker import Worker


class MyWorker(Worker):
    """HpBandSter's example worker."""

    def __init__(self, *args: Any, sleep_interval: float = 0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.sleep_interval = sleep_interval

    def compute(self, config: dict, budget: float, **kwargs: Any) -> dict:
        res = numpy.clip(config["x"] + numpy.random.randn() / budget, config["x"] / 2,
                         1.5 * config["x"])
        time.sleep(self.sleep_interval)
        return {"loss": float(res), "info": float(res)}

    @staticmethod
    def get_configspace() -> CS.ConfigurationSpace:
        config_space = CS.ConfigurationSpace()
        config_space.add(CS.UniformFloatHyperparameter("x", lower=0, upper=1))
        return config_space


__all__ = ["MyWorker"]
