"""Hyperband: successive-halving brackets of decreasing aggressiveness, in a cycle."""
from __future__ import annotations

from ._budgets import Bracket, bracket, max_bracket_index, validate_eta, validate_formula
from ._successive_halving import BracketIterGenerator


class HyperBandIterGenerator(BracketIterGenerator):
    """Iteration ``i`` is the successive-halving bracket ``s = s_max - (i mod (s_max + 1))``.

    The first iteration starts many configurations at ``min_budget``; the last of a cycle runs
    a few at ``max_budget`` only, which hedges against low budgets that mislead.

    Args:
        min_budget (float): The smallest budget.
        max_budget (float): The largest budget.
        eta (float): Each stage keeps the best 1/eta and multiplies the budget by eta.
        bracket_formula (str): ``"paper"`` (the paper's bracket sizes) or ``"hpbandster"``
            (HpBandSter's; docs/iterations.md).
    """

    def __init__(self, min_budget: float, max_budget: float, eta: float = 3,
                 bracket_formula: str = "paper") -> None:
        self.eta = validate_eta(eta)
        self.bracket_formula = validate_formula(bracket_formula)
        self.min_budget, self.max_budget = float(min_budget), float(max_budget)
        self.s_max = max_bracket_index(min_budget, max_budget, eta)
        super().__init__(self.bracket(0))

    def bracket(self, iteration: int) -> Bracket:
        s = self.s_max - (iteration % (self.s_max + 1))
        return bracket(s, self.s_max, self.max_budget, self.eta, self.min_budget,
                       self.bracket_formula)

    @property
    def num_brackets(self) -> int:
        """Iterations in one Hyperband cycle."""
        return self.s_max + 1


__all__ = ["HyperBandIterGenerator"]
