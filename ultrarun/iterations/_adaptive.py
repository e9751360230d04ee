"""Successive halving that starts higher where the small budgets mislead.

Every iteration is one of Hyperband's brackets (:func:`~._budgets.bracket`): the most
aggressive one (``s = s_max``, today's successive halving) while the results agree, a bracket
that starts at a larger budget once a smaller budget's ranking disagrees with the next one's.
Budget ``b`` is *distrusted* when the Spearman rank correlation of the losses at ``b`` and at
the next budget, over the configurations run at both (pooled over every iteration so far,
finished or not, so many workers running several brackets at once learn as early as one), is
below ``threshold`` with at least ``min_pairs`` of them (the same pairs ``ultrarun report`` draws
and judges: rho < 0.3 there says "use a larger min_budget"). A new iteration starts at the
smallest budget above every distrusted one. See docs/iterations.md.
"""
from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any, Sequence

from ..errors import ConfigurationError
from ..visualization import spearman
from ._base import BaseIteration
from ._budgets import Bracket, bracket, max_bracket_index, validate_eta, validate_formula
from ._successive_halving import BracketIterGenerator, SuccessiveHalving

#: below this rank correlation a budget's ranking is taken to disagree with the next budget's
DEFAULT_THRESHOLD = 0.5
#: configurations with losses at both budgets needed before a correlation is judged
DEFAULT_MIN_PAIRS = 8

#: configurations per pair of budgets a correlation is computed on: the most recent ones
MAX_PAIRS = 500

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


def first_trusted_stage(agreement: Agreement, threshold: float = DEFAULT_THRESHOLD,
                        min_pairs: int = DEFAULT_MIN_PAIRS) -> int:
    """Index of the budget new iterations start at: one above the largest distrusted budget
    (rho < ``threshold`` over at least ``min_pairs`` configurations), 0 when none is."""
    start = 0
    for index, (_, _, rho, n) in enumerate(agreement):
        if n >= min_pairs and not math.isnan(rho) and rho < threshold:
            start = index + 1
    return start


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

    def bracket(self, iteration: int) -> Bracket:
        """The bracket iteration ``iteration`` ran, or would run if it started now."""
        if iteration < len(self._iterations):
            made = self._iterations[iteration]
            return Bracket(tuple(made.num_configs), tuple(made.budgets))
        return self._bracket(first_trusted_stage(self.agreement(), self.threshold,
                                                 self.min_pairs))

    def get_next_iteration(self, iteration: int, sampler: Any,
                           **iteration_kwargs: Any) -> SuccessiveHalving:
        made = super().get_next_iteration(iteration, sampler, **iteration_kwargs)
        if iteration == len(self._iterations):
            self._iterations.append(made)
        return made


def _finite(loss: float | None) -> bool:
    return loss is not None and math.isfinite(loss)


__all__ = ["AdaptiveIterGenerator", "budget_agreement", "first_trusted_stage",
           "DEFAULT_THRESHOLD", "DEFAULT_MIN_PAIRS"]
