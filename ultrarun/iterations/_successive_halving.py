"""Successive halving: one bracket, run stage by stage with a barrier between stages."""
from __future__ import annotations

import collections
import logging
import math
from numbers import Integral, Real
from typing import Any, Sequence

from ..errors import ConfigurationError
from ._base import (BaseIteration, BaseIterGenerator, ConfigId, ConfigStatus, Datum, Fits, Run,
                    Sampler, top_k)
from ._budgets import Bracket, bracket, max_bracket_index, validate_eta

logger = logging.getLogger(__name__)


def validate_schedule(num_configs: Sequence[int], budgets: Sequence[float]) -> Bracket:
    """Check an explicit schedule and return it as a :class:`Bracket` of plain ints and floats."""
    num_configs, budgets = list(num_configs), list(budgets)
    if not num_configs or len(num_configs) != len(budgets):
        raise ConfigurationError(f"num_configs has {len(num_configs)} stages and budgets "
                                 f"{len(budgets)}; give the same number (at least one) of each")
    if any(isinstance(n, bool) or not isinstance(n, Integral) or n < 1 for n in num_configs):
        raise ConfigurationError(f"num_configs is {num_configs!r}; each stage needs a positive "
                                 "integer number of configurations")
    if any(b > a for a, b in zip(num_configs, num_configs[1:])):
        raise ConfigurationError(f"num_configs is {num_configs!r}; it must not increase from one "
                                 "stage to the next (a stage can only promote what it ran)")
    if any(isinstance(b, bool) or not isinstance(b, Real) or not math.isfinite(b) or b <= 0
           for b in budgets):
        raise ConfigurationError(f"budgets is {budgets!r}; each must be a finite positive number")
    if any(b <= a for a, b in zip(budgets, budgets[1:])):
        raise ConfigurationError(f"budgets is {budgets!r}; they must strictly increase")
    return Bracket(num_configs=tuple(int(n) for n in num_configs),
                   budgets=tuple(float(b) for b in budgets))


class SuccessiveHalving(BaseIteration):
    """One successive-halving bracket (HpBandSter's ``SuccessiveHalving`` iteration).

    Stage ``i`` runs ``num_configs[i]`` configurations at ``budgets[i]``; when every job of the
    stage has reported, the best ``num_configs[i + 1]`` successful ones go on. New configurations
    are sampled lazily, one per ``get_next_run``, so a model-based sampler sees every result
    that arrived before. Failed configurations are never promoted; a stage can therefore run
    fewer configurations than scheduled, and the iteration ends early if none succeeded.

    Args:
        iteration (int): The iteration's index; the first element of its config ids.
        num_configs (Sequence[int]): Configurations per stage, not increasing.
        budgets (Sequence[float]): The budget of each stage, strictly increasing.
        sampler (Sampler): ``sampler(budget, n) -> [(config, config_info), ...]``: where new
            configurations come from (the master passes its optimizer's).
    """

    def __init__(self, iteration: int, num_configs: Sequence[int], budgets: Sequence[float],
                 sampler: Sampler) -> None:
        super().__init__(iteration, sampler)
        schedule = validate_schedule(num_configs, budgets)
        self.num_configs = list(schedule.num_configs)
        self.budgets = list(schedule.budgets)
        self.stage = 0
        self.actual_num_configs = [0] * len(self.budgets)
        self._queue: collections.deque[ConfigId] = collections.deque()

    def get_next_run(self, fits: Fits | None = None) -> Run | None:
        if self.is_finished or (fits is not None and not fits(self.budgets[self.stage])):
            return None
        if self._queue:
            return self._start(self._queue.popleft())
        if self._can_sample:
            config_id = (self.iteration, self.stage, self.actual_num_configs[self.stage])
            self.actual_num_configs[self.stage] += 1
            self._sample(self.budgets[self.stage], config_id)
            return self._start(config_id)
        return None

    @property
    def is_blocked(self) -> bool:
        return not self.is_finished and not self._queue and not self._can_sample

    @property
    def barrier(self) -> tuple[float, int] | None:
        if self.is_blocked and self.stage + 1 < len(self.budgets):  # the last stage releases none
            return self.budgets[self.stage], self.num_configs[self.stage + 1] - self.num_running
        return None

    @property
    def _can_sample(self) -> bool:
        # only the first stage samples; later ones are filled by promotion
        return self.stage == 0 and self.actual_num_configs[0] < self.num_configs[0]

    def _on_result(self, config_id: ConfigId, datum: Datum) -> None:
        if self.num_running == 0 and not self._queue and not self._can_sample:
            self._advance()

    def _advance(self) -> None:
        """The stage's barrier: every job reported, so promote the best and start the next."""
        budget = self.budgets[self.stage]
        reviewed = [(cid, d.loss_for_ranking(budget)) for cid, d in self.data.items()
                    if d.status in (ConfigStatus.REVIEW, ConfigStatus.CRASHED) and d.budget == budget]
        if self.stage + 1 == len(self.budgets):
            self._finish()
            return
        promoted = self._promote(reviewed, self.num_configs[self.stage + 1])
        self.stage += 1
        for cid, _ in reviewed:
            datum = self.data[cid]
            if datum.status is ConfigStatus.REVIEW:
                datum.status = ConfigStatus.TERMINATED
        for cid in promoted:
            datum = self.data[cid]
            datum.status, datum.budget = ConfigStatus.QUEUED, self.budgets[self.stage]
            self._queue.append(cid)
        self.actual_num_configs[self.stage] = len(promoted)
        logger.debug("iteration %s: stage %d at budget %s with %d configurations", self.iteration,
                     self.stage, self.budgets[self.stage], len(promoted))
        if not promoted:
            logger.warning("iteration %s: no configuration succeeded at budget %s; ending early",
                           self.iteration, budget)
            self._finish()

    def _promote(self, reviewed: list[tuple[ConfigId, float]], k: int) -> list[ConfigId]:
        """Which of the stage's ``(config id, loss)`` go on: the best ``k`` successful ones."""
        return top_k(reviewed, k)


class BracketIterGenerator(BaseIterGenerator):
    """Base of the generators whose iterations are successive-halving brackets.

    ``largest`` is the bracket that uses every budget; subclasses whose iterations differ
    override :meth:`bracket`.
    """

    def __init__(self, largest: Bracket) -> None:
        self._largest = largest

    def bracket(self, iteration: int) -> Bracket:
        """The schedule (configurations and budgets per stage) of iteration ``iteration``."""
        return self._largest

    @property
    def budgets(self) -> list[float]:
        return list(self._largest.budgets)

    def get_next_iteration(self, iteration: int, sampler: Sampler,
                           **iteration_kwargs: Any) -> SuccessiveHalving:
        schedule = self.bracket(iteration)
        return SuccessiveHalving(iteration, schedule.num_configs, schedule.budgets, sampler,
                                 **iteration_kwargs)

    def num_jobs(self, iteration: int) -> int:
        return self.bracket(iteration).num_jobs

    def num_configs(self, iteration: int) -> list[int]:
        """Configurations per stage of iteration ``iteration``."""
        return list(self.bracket(iteration).num_configs)


class SuccessiveHalvingIterGenerator(BracketIterGenerator):
    """Every iteration is the most aggressive bracket (``s = s_max``) between the two budgets.

    Args:
        min_budget (float): The smallest budget.
        max_budget (float): The largest budget.
        eta (float): Each stage keeps the best 1/eta and multiplies the budget by eta.
        bracket_formula (str): ``"paper"`` or ``"hpbandster"`` (docs/iterations.md).
    """

    def __init__(self, min_budget: float, max_budget: float, eta: float = 3,
                 bracket_formula: str = "paper") -> None:
        self.eta = validate_eta(eta)
        self.s_max = max_bracket_index(min_budget, max_budget, eta)
        super().__init__(bracket(self.s_max, self.s_max, max_budget, eta, min_budget,
                                 bracket_formula))


class CustomIterGenerator(BracketIterGenerator):
    """Every iteration runs the explicit schedule given (HpBandSter's custom budgets).

    Args:
        budgets (Sequence[float]): The budget of each stage, strictly increasing.
        num_configs (Sequence[int]): Configurations per stage, not increasing.
    """

    def __init__(self, budgets: Sequence[float], num_configs: Sequence[int]) -> None:
        super().__init__(validate_schedule(num_configs, budgets))


__all__ = ["SuccessiveHalving", "SuccessiveHalvingIterGenerator", "CustomIterGenerator",
           "BracketIterGenerator", "validate_schedule"]
