"""Successive halving that starts higher where the small budgets mislead.

Every iteration is one of Hyperband's brackets (:func:`~._budgets.bracket`): the most
aggressive one (``s = s_max``, today's successive halving) while the results agree, a bracket
that starts at a larger budget once a smaller budget's ranking disagrees with the next one's.
Budget ``b`` is *distrusted* when the Spearman rank correlation of the losses at ``b`` and at
the next budget, over the configurations run at both (pooled over every iteration so far,
finished or not, so many workers running several brackets at once learn as early as one), is
below ``threshold`` with at least ``min_pairs`` of them (the same pairs ``ultrarun report`` draws
and judges: rho < 0.3 there says "use a larger min_budget"). A new iteration starts at the
smallest budget above every distrusted one.

With several workers, a bracket may start while the verdict on its first budget is still to
come from the jobs in flight (they will bring ``min_pairs`` pairs, there are fewer now). It
then starts one budget higher instead, as often as that holds, so no bracket is opened on a
budget that may turn out to mislead, and no worker waits for the verdict. One worker never
meets this case: its brackets run one after the other.

An iteration's bracket is chosen when its first configuration is sampled (not when it is
made), from the evidence then, and recorded in that configuration's ``config_info``
(``"bracket_start"``, the bracket's first budget). A resumed run (whose iterations take the
journal's configurations) takes the recorded bracket, so it runs the brackets the first run
ran. See docs/iterations.md.
"""
from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any, Callable, Sequence

from ..errors import ConfigurationError
from ..visualization import spearman
from ._base import BaseIteration, ConfigId, Datum, Fits, Run, Sampler
from ._budgets import (BUDGET_RTOL, Bracket, bracket, max_bracket_index, validate_eta,
                       validate_formula)
from ._successive_halving import BracketIterGenerator, SuccessiveHalving

#: below this rank correlation a budget's ranking is taken to disagree with the next budget's
DEFAULT_THRESHOLD = 0.5
#: configurations with losses at both budgets needed before a correlation is judged
DEFAULT_MIN_PAIRS = 8

#: configurations per pair of budgets a correlation is computed on: the most recent ones
MAX_PAIRS = 500

#: the ``config_info`` key that records the first budget of a configuration's bracket
BRACKET_START = "bracket_start"

#: ``(budget, next budget, rho, configurations)`` for each pair of neighbouring budgets
Agreement = list[tuple[float, float, float, int]]


def budget_agreement(iterations: Sequence[BaseIteration], budgets: Sequence[float]) -> Agreement:
    """The rank correlation of the losses at each budget and the next, over the configurations
    of ``iterations`` with a finite loss at both (the most recent :data:`MAX_PAIRS`)."""
    out = []
    for low, high in zip(budgets, budgets[1:]):
        pairs = [(d.losses[low], d.losses[high]) for it in iterations for d in it.data.values()
                 if _finite(d.losses.get(low)) and _finite(d.losses.get(high))][-MAX_PAIRS:]
        out.append((low, high, spearman(pairs), len(pairs)))
    return out


def promised_pairs(iterations: Sequence[BaseIteration], budgets: Sequence[float]) -> list[int]:
    """For each budget and the next: the pairs of losses the started, unfinished successive
    halving ``iterations`` will add once the stages they have not finished are over (if no job
    fails): the configurations their schedule runs at the next budget, less those in."""
    out = []
    for low, high in zip(budgets, budgets[1:]):
        promised = 0
        for it in iterations:
            if (it.is_finished or not it.data or not isinstance(it, SuccessiveHalving)
                    or high not in it.budgets or low not in it.budgets):
                continue
            stage = it.budgets.index(high)
            if it.stage <= stage:
                done = sum(_finite(d.losses.get(low)) and _finite(d.losses.get(high))
                           for d in it.data.values())
                promised += max(0, it.num_configs[stage] - done)
        out.append(promised)
    return out


def first_trusted_stage(agreement: Agreement, threshold: float = DEFAULT_THRESHOLD,
                        min_pairs: int = DEFAULT_MIN_PAIRS) -> int:
    """Index of the budget new iterations start at: one above the largest distrusted budget
    (rho < ``threshold`` over at least ``min_pairs`` configurations), 0 when none is."""
    start = 0
    for index, (_, _, rho, n) in enumerate(agreement):
        if n >= min_pairs and not math.isnan(rho) and rho < threshold:
            start = index + 1
    return start


def first_decided_stage(start: int, agreement: Agreement, promised: Sequence[int],
                        min_pairs: int = DEFAULT_MIN_PAIRS) -> int:
    """``start``, or the first budget above it whose verdict is not pending: a verdict is
    pending while fewer than ``min_pairs`` pairs are in and the jobs in flight promise enough
    (``promised``, from :func:`promised_pairs`) to reach it."""
    while (start < len(agreement)
           and agreement[start][3] < min_pairs <= agreement[start][3] + promised[start]):
        start += 1
    return start


class AdaptiveBracket(SuccessiveHalving):
    """A successive-halving iteration whose bracket is chosen (``plan(iteration)``) when its
    first configuration is sampled, and recorded in that configuration's ``config_info``."""

    def __init__(self, iteration: int, schedule: Bracket,
                 plan: Callable[["AdaptiveBracket"], Bracket], sampler: Sampler) -> None:
        super().__init__(iteration, schedule.num_configs, schedule.budgets, sampler)
        self._plan: Callable[[AdaptiveBracket], Bracket] | None = plan

    def get_next_run(self, fits: Fits | None = None) -> Run | None:
        if self._plan is not None and not self.data:
            schedule = self._plan(self)
            self.num_configs, self.budgets = list(schedule.num_configs), list(schedule.budgets)
            self.actual_num_configs = [0] * len(self.budgets)
        return super().get_next_run(fits)

    def _sample(self, budget: float, config_id: ConfigId) -> Datum:
        self._plan = None  # the first configuration fixes the bracket
        datum = super()._sample(budget, config_id)
        datum.config_info.setdefault(BRACKET_START, self.budgets[0])
        return datum


class AdaptiveIterGenerator(BracketIterGenerator):
    """Iteration ``i`` is the Hyperband bracket that starts at the smallest budget the results
    so far trust (see the module docstring); with nothing distrusted, successive halving's
    ``s = s_max`` bracket. ``iterations="adaptive"`` on the front ends."""

    def __init__(self, min_budget: float, max_budget: float, eta: float = 3,
                 bracket_formula: str = "paper", threshold: float = DEFAULT_THRESHOLD,
                 min_pairs: int = DEFAULT_MIN_PAIRS) -> None:
        self.eta = validate_eta(eta)
        self.bracket_formula = validate_formula(bracket_formula)
        if (isinstance(threshold, bool) or not isinstance(threshold, Real)
                or not -1 <= threshold <= 1):
            raise ConfigurationError(f"threshold is {threshold!r}; it must be a rank correlation "
                                     "between -1 and 1")
        if isinstance(min_pairs, bool) or not isinstance(min_pairs, Integral) or min_pairs < 3:
            raise ConfigurationError(f"min_pairs is {min_pairs!r}; it must be an integer >= 3")
        self.threshold, self.min_pairs = float(threshold), int(min_pairs)
        self.min_budget, self.max_budget = float(min_budget), float(max_budget)
        self.s_max = max_bracket_index(min_budget, max_budget, eta)
        self._iterations: list[SuccessiveHalving] = []
        super().__init__(self._bracket(0))

    def _bracket(self, start: int) -> Bracket:
        return bracket(self.s_max - start, self.s_max, self.max_budget, self.eta, self.min_budget,
                       self.bracket_formula)

    def agreement(self) -> Agreement:
        """What the iterations so far say about each pair of neighbouring budgets."""
        return budget_agreement(self._iterations, self.budgets)

    def _start(self) -> int:
        """The stage a bracket started now starts at."""
        agreement = self.agreement()
        trusted = first_trusted_stage(agreement, self.threshold, self.min_pairs)
        promised = promised_pairs(self._iterations, self.budgets)
        return first_decided_stage(trusted, agreement, promised, self.min_pairs)

    def bracket(self, iteration: int) -> Bracket:
        """The bracket iteration ``iteration`` ran, or would run if it started now."""
        if iteration < len(self._iterations) and self._iterations[iteration].data:
            made = self._iterations[iteration]
            return Bracket(tuple(made.num_configs), tuple(made.budgets))
        return self._bracket(self._start())

    def _plan(self, iteration: Any) -> Bracket:
        """The bracket of ``iteration``, which samples its first configuration now: the one the
        journal recorded (a resumed run), else the one the evidence so far chooses."""
        journaled = iteration.decided.get((iteration.iteration, 0, 0))
        info = journaled[1] if journaled is not None else None
        if isinstance(info, dict) and BRACKET_START in info:
            return self._bracket(self._stage_of(info[BRACKET_START], iteration.iteration))
        return self._bracket(self._start())

    def _stage_of(self, budget: Any, iteration: int) -> int:
        for stage, known in enumerate(self.budgets):
            if (isinstance(budget, Real) and not isinstance(budget, bool)
                    and math.isclose(budget, known, rel_tol=BUDGET_RTOL)):
                return stage
        raise ConfigurationError(
            f"the journal says iteration {iteration} started at budget {budget!r}, which is not "
            f"one of this run's budgets {self.budgets}; resume with the journal of this run")

    def get_next_iteration(self, iteration: int, sampler: Any,
                           **iteration_kwargs: Any) -> SuccessiveHalving:
        made = AdaptiveBracket(iteration, self.bracket(iteration), self._plan, sampler,
                               **iteration_kwargs)
        if iteration == len(self._iterations):
            self._iterations.append(made)
        return made


def _finite(loss: float | None) -> bool:
    return loss is not None and math.isfinite(loss)


__all__ = ["AdaptiveIterGenerator", "AdaptiveBracket", "budget_agreement", "promised_pairs",
           "first_trusted_stage", "first_decided_stage", "BRACKET_START", "DEFAULT_THRESHOLD",
           "DEFAULT_MIN_PAIRS"]
