"""The Hyperband budget formula, written once and imported by every schedule.

Li, Jamieson, DeSalvo, Rostamizadeh and Talwalkar, "Hyperband: A Novel Bandit-Based Approach to
Hyperparameter Optimization", JMLR 18(185), 2018, Algorithm 1:

    s_max  = floor(log_eta(max_budget / min_budget))
    n_0    = ceil((s_max + 1) / (s + 1) * eta**s)          configurations in bracket s
    n_i    = floor(n_0 * eta**-i)                           configurations at stage i
    b_i    = max_budget * eta**(i - s)                      budget at stage i, i = 0..s

HpBandSter (and ultraopt) round before multiplying, ``n_0 = floor((s_max + 1) / (s + 1)) * eta**s``,
which gives fewer configurations in some brackets (65 runs instead of 69 for budgets 9..243,
eta=3, four iterations). ``formula="hpbandster"`` selects that rule, for runs that must match
theirs; the paper's is the default.

Counts are computed with exact rational arithmetic (``fractions.Fraction``) and the number of
brackets with a relative tolerance, because ``log(27) / log(3)`` is ``3.0000000000000004`` and
``4 / 3 * 9`` is ``12.000000000000002`` in floating point.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from numbers import Real

from ..errors import ConfigurationError

#: The rules for a bracket's first stage: the paper's, or HpBandSter's (see the module docstring).
BRACKET_FORMULAS = ("paper", "hpbandster")

#: Relative tolerance under which two budgets are taken as equal (float noise, not intent).
BUDGET_RTOL = 1e-9


@dataclass(frozen=True)
class Bracket:
    """One successive-halving bracket: how many configurations run at which budget."""

    num_configs: tuple[int, ...]
    budgets: tuple[float, ...]

    @property
    def num_jobs(self) -> int:
        """Jobs the bracket runs when every stage is full."""
        return sum(self.num_configs)


def validate_eta(eta: float) -> float:
    """Return ``eta`` as a float, or raise if it is not a real number >= 2."""
    if isinstance(eta, bool) or not isinstance(eta, Real) or not math.isfinite(eta) or eta < 2:
        raise ConfigurationError(f"eta is {eta!r}; it must be a number >= 2 (3 is usual)")
    return float(eta)


def validate_budget_range(min_budget: float, max_budget: float) -> tuple[float, float]:
    """Return the budgets as floats, or raise unless ``0 < min_budget < max_budget``."""
    for name, value in (("min_budget", min_budget), ("max_budget", max_budget)):
        if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
            raise ConfigurationError(f"{name} is {value!r}; it must be a finite positive number")
    if not 0 < min_budget < max_budget:
        raise ConfigurationError(f"min_budget={min_budget!r}, max_budget={max_budget!r}; "
                                 "they must satisfy 0 < min_budget < max_budget")
    return float(min_budget), float(max_budget)


def max_bracket_index(min_budget: float, max_budget: float, eta: float) -> int:
    """``s_max``: the largest ``s`` with ``min_budget * eta**s <= max_budget`` (up to float noise)."""
    min_budget, max_budget = validate_budget_range(min_budget, max_budget)
    eta = validate_eta(eta)
    s = 0
    while min_budget * eta ** (s + 1) <= max_budget * (1 + BUDGET_RTOL):
        s += 1
    return s


def validate_formula(formula: str) -> str:
    """Return ``formula``, or raise if it is not one of :data:`BRACKET_FORMULAS`."""
    if formula not in BRACKET_FORMULAS:
        raise ConfigurationError(f"bracket_formula is {formula!r}; it must be one of "
                                 f"{list(BRACKET_FORMULAS)}")
    return formula


def bracket(s: int, s_max: int, max_budget: float, eta: float,
            min_budget: float | None = None, formula: str = "paper") -> Bracket:
    """Bracket ``s`` (0 <= s <= s_max) of Hyperband, with plain Python ints and floats.

    ``formula`` is ``"paper"`` (Li et al.) or ``"hpbandster"`` (HpBandSter's rounding).

    The last budget is ``max_budget`` exactly; one within float noise of ``min_budget`` is
    ``min_budget`` exactly, so ``(0.1, 8.1, eta=3)`` starts at ``0.1``, not
    ``0.09999999999999999``.
    """
    if not 0 <= s <= s_max:
        raise ConfigurationError(f"bracket index s={s!r}; it must be between 0 and s_max={s_max}")
    eta_q = Fraction(eta)
    if validate_formula(formula) == "paper":
        n0 = math.ceil(Fraction(s_max + 1, s + 1) * eta_q ** s)
    else:
        n0 = math.floor(math.floor(Fraction(s_max + 1, s + 1)) * eta_q ** s)
    num_configs = tuple(math.floor(n0 / eta_q ** i) for i in range(s + 1))
    budgets = []
    for i in range(s + 1):
        # 12 significant digits drop float noise (0.09000000000000001 -> 0.09) for logs and keys
        budget = float(f"{float(max_budget) / float(eta) ** (s - i):.12g}")
        if i == s:
            budget = float(max_budget)
        elif min_budget is not None and math.isclose(budget, min_budget, rel_tol=BUDGET_RTOL):
            budget = float(min_budget)
        budgets.append(budget)
    return Bracket(num_configs=num_configs, budgets=tuple(budgets))


def hyperband_brackets(min_budget: float, max_budget: float, eta: float,
                       formula: str = "paper") -> list[Bracket]:
    """All brackets of Hyperband, most aggressive first (s = s_max .. 0)."""
    s_max = max_bracket_index(min_budget, max_budget, eta)
    return [bracket(s, s_max, max_budget, eta, min_budget, formula) for s in range(s_max, -1, -1)]


__all__ = ["Bracket", "bracket", "hyperband_brackets", "max_bracket_index",
           "validate_budget_range", "validate_eta", "validate_formula", "BUDGET_RTOL",
           "BRACKET_FORMULAS"]
