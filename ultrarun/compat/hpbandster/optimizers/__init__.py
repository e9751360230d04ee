"""``hpbandster.optimizers``: BOHB, HyperBand, RandomSearch and H2BO with HpBandSter's arguments.

The positional order is HpBandSter's, ``(configspace, eta, min_budget, max_budget, ...)``; the
master's arguments (``run_id``, ``nameserver``, ``nameserver_port``, ``result_logger``,
``previous_result``, ...) and ultrarun's own (``seed``, ``secret``, ...) are keywords. Brackets
are sized with HpBandSter's formula (pass ``bracket_formula="paper"`` for the paper's), and the
Result's ``HB_config`` carries HpBandSter's keys. See docs/migrating.md.
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np

from ultrarun import frontends as _fronts
from ultrarun import optimizers as _optimizers
from ultrarun.errors import ConfigurationError
from ultrarun.iterations import Bracket, BracketIterGenerator, max_bracket_index
from ultrarun.compat import pyro_port
from ..core.master import ResultConfig


def _master_kwargs(kwargs: dict) -> dict:
    kwargs = dict(kwargs)
    if kwargs.get("executor") is None:
        kwargs["nameserver_port"] = pyro_port(kwargs.get("nameserver_port"))
    kwargs.setdefault("bracket_formula", "hpbandster")
    return kwargs


def _require_space(configspace: Any) -> None:
    if configspace is None:
        raise ConfigurationError("configspace is None; pass the ConfigSpace.ConfigurationSpace "
                                 "to search")


def _hyperband_config(master: Any, eta: float, min_budget: float, max_budget: float,
                      **extra: Any) -> None:
    """The attributes and ``config`` entries HpBandSter's masters have."""
    master.eta, master.min_budget, master.max_budget = eta, min_budget, max_budget
    master.budgets = np.array(master.iter_generator.budgets)
    master.max_SH_iter = len(master.budgets)
    master.config.update(eta=eta, min_budget=min_budget, max_budget=max_budget,
                         budgets=master.budgets, max_SH_iter=master.max_SH_iter, **extra)


class BOHB(ResultConfig, _fronts.BOHB):
    """HpBandSter's BOHB: Hyperband brackets with the BOHB sampler."""

    def __init__(self, configspace: Any = None, eta: float = 3, min_budget: float = 0.01,
                 max_budget: float = 1, min_points_in_model: int | None = None,
                 top_n_percent: float = 15, num_samples: int = 64,
                 random_fraction: float = 1 / 3, bandwidth_factor: float = 3,
                 min_bandwidth: float = 1e-3, **kwargs: Any):
        _require_space(configspace)
        model = dict(min_points_in_model=min_points_in_model, top_n_percent=top_n_percent,
                     num_samples=num_samples, random_fraction=random_fraction,
                     bandwidth_factor=bandwidth_factor, min_bandwidth=min_bandwidth)
        super().__init__(configspace, eta=eta, min_budget=min_budget, max_budget=max_budget,
                         **model, **_master_kwargs(kwargs))
        _hyperband_config(self, eta, min_budget, max_budget, **model)


class HyperBand(ResultConfig, _fronts.HyperBand):
    """HpBandSter's HyperBand: Hyperband brackets with random sampling."""

    def __init__(self, configspace: Any = None, eta: float = 3, min_budget: float = 0.01,
                 max_budget: float = 1, **kwargs: Any):
        _require_space(configspace)
        super().__init__(configspace, eta=eta, min_budget=min_budget, max_budget=max_budget,
                         **_master_kwargs(kwargs))
        _hyperband_config(self, eta, min_budget, max_budget)


class RandomSearch(ResultConfig, _fronts.RandomSearch):
    """Random configurations at ``max_budget``, as many per iteration as Hyperband's brackets."""

    def __init__(self, configspace: Any = None, eta: float = 3, min_budget: float = 1,
                 max_budget: float = 1, **kwargs: Any):
        _require_space(configspace)
        kwargs = _master_kwargs(kwargs)
        kwargs.pop("bracket_formula")
        super().__init__(configspace, eta=eta, min_budget=min_budget, max_budget=max_budget,
                         **kwargs)
        self.eta, self.min_budget, self.max_budget = eta, max_budget, max_budget
        self.budgets = np.array([float(max_budget)])
        self.config.update(eta=eta, min_budget=max_budget, max_budget=max_budget)


class _H2BOIterations(BracketIterGenerator):
    """H2BO's schedule: every iteration is one bracket from the largest budget the model has
    enough results on (at least ``min_budget``) up to ``max_budget``, with as many
    configurations as fit in Hyperband's budget per iteration (``max_budget * (s_max + 1)``)."""

    def __init__(self, optimizer: Any, min_budget: float, max_budget: float, eta: float):
        self.optimizer, self.eta = optimizer, float(eta)
        self.min_budget, self.max_budget = float(min_budget), float(max_budget)
        self.s_max = max_bracket_index(min_budget, max_budget, eta)
        self.budget_per_iteration = self.max_budget * (self.s_max + 1)
        super().__init__(self.bracket(0))

    def bracket(self, iteration: int) -> Bracket:
        lowest = max(self.min_budget, self.optimizer.current_model_budget() or 0.0)
        s = max_bracket_index(lowest, self.max_budget, self.eta) if lowest < self.max_budget else 0
        budgets = tuple(float(f"{self.max_budget / self.eta ** (s - i):.12g}") for i in range(s + 1))
        eta = Fraction(self.eta)

        def counts(n0: int) -> tuple[int, ...]:
            return tuple(max(math.floor(n0 / eta ** i), 1) for i in range(s + 1))

        n0 = 1
        while sum(n * b for n, b in zip(counts(n0 + 1), budgets)) <= self.budget_per_iteration:
            n0 += 1
        return Bracket(num_configs=counts(n0), budgets=budgets)


class H2BO(ResultConfig, _fronts.FrontEnd):
    """BOHB's sampler on brackets that start where the model is (see ``_H2BOIterations``).

    ultrarun's density estimate is the product kernel over all dimensions with the normal
    reference bandwidth: ``bw_estimator='scott'`` and ``fully_dimensional=True`` only.
    """

    def __init__(self, configspace: Any = None, eta: float = 3, min_budget: float = 0.01,
                 max_budget: float = 1, min_points_in_model: int | None = None,
                 top_n_percent: float = 15, num_samples: int = 32,
                 random_fraction: float = 1 / 3, bandwidth_factor: float = 1,
                 min_bandwidth: float = 1e-3, bw_estimator: str = "scott",
                 fully_dimensional: bool = True, **kwargs: Any):
        _require_space(configspace)
        if bw_estimator != "scott" or fully_dimensional is not True:
            raise ConfigurationError(f"bw_estimator={bw_estimator!r}, fully_dimensional="
                                     f"{fully_dimensional!r}: ultrarun's H2BO supports "
                                     "bw_estimator='scott' with fully_dimensional=True only")
        kwargs = _master_kwargs(kwargs)
        kwargs.pop("bracket_formula")
        model = dict(min_points_in_model=min_points_in_model, top_n_percent=top_n_percent,
                     num_samples=num_samples, random_fraction=random_fraction,
                     bandwidth_factor=bandwidth_factor, min_bandwidth=min_bandwidth)
        optimizer = _optimizers.BOHB(configspace, seed=kwargs.pop("seed", None), **model)
        super().__init__(kwargs.pop("run_id", "0"), optimizer,
                         _H2BOIterations(optimizer, min_budget, max_budget, eta), **kwargs)
        _hyperband_config(self, eta, min_budget, max_budget, bw_estimator=bw_estimator,
                          fully_dimensional=fully_dimensional)


__all__ = ["BOHB", "HyperBand", "RandomSearch", "H2BO"]
