"""``ultraopt.multi_fidelity``: iteration generators with ultraopt's arguments.

``HyperBandIterGenerator(min_budget, max_budget, eta, SH_only=False)`` sizes brackets with
ultraopt's (HpBandSter's) formula; ``get_budgets()`` is every budget it uses, which is what an
optimizer is initialised with. ``CustomIterGenerator(num_configs_list, budgets_list)`` takes one
schedule, or a list of schedules run in turn (note the order: counts first, as in ultraopt).
"""
from __future__ import annotations

from fractions import Fraction
from typing import Any, Sequence

from ultrarun.iterations import Bracket, BracketIterGenerator
from ultrarun.iterations import HyperBandIterGenerator as _HyperBand
from ultrarun.iterations._successive_halving import validate_schedule


def _fraction(budget: float, top: float) -> str:
    """``budget`` as ultraopt prints it: a fraction such as ``1/4`` when the largest budget is
    1, else the number."""
    if top != 1:
        return f"{budget:g}"
    return str(Fraction(budget).limit_denominator(1000))


class _UltraoptGenerator:
    """ultraopt's extras on a bracket generator: budgets, counts and ``initialize``."""

    optimizer: Any = None

    def initialize(self, optimizer: Any) -> None:
        self.optimizer = optimizer

    def get_budgets(self) -> list[float]:
        return list(self.budgets)  # type: ignore[attr-defined]

    @property
    def iter_cycle(self) -> int:
        return getattr(self, "num_brackets", 1)

    def get_table(self) -> Any:
        """The schedule as ultraopt shows it: a pandas DataFrame with a column per stage of
        each iteration of one cycle (``("iter 0", "stage 0")``, ...) and rows ``num_config``
        and ``budget`` (budgets as fractions of the largest, e.g. ``1/4``)."""
        import pandas as pd

        columns, counts, budgets = [], [], []
        top = max(self.get_budgets())
        for i in range(self.iter_cycle):
            bracket = self.bracket(i)  # type: ignore[attr-defined]
            for stage, (n, b) in enumerate(zip(bracket.num_configs, bracket.budgets)):
                columns.append((f"iter {i}", f"stage {stage}"))
                counts.append(n)
                budgets.append(_fraction(b, top))
        return pd.DataFrame([counts, budgets], index=["num_config", "budget"],
                            columns=pd.MultiIndex.from_tuples(columns))

    def num_all_configs(self, n_iterations: int) -> int:
        """Jobs ``n_iterations`` iterations run if nothing fails (the progress bar's total)."""
        return sum(self.num_jobs(i) for i in range(n_iterations))  # type: ignore[attr-defined]


class HyperBandIterGenerator(_UltraoptGenerator, _HyperBand):
    def __init__(self, min_budget: float, max_budget: float, eta: float, SH_only: bool = False,
                 iter_klass: Any = None):
        self.SH_only = SH_only
        super().__init__(min_budget, max_budget, eta, bracket_formula="hpbandster")

    def bracket(self, iteration: int) -> Bracket:
        return super().bracket(0 if self.SH_only else iteration)

    @property
    def iter_cycle(self) -> int:
        return 1 if self.SH_only else self.num_brackets


class SuccessiveHalvingIterGenerator(HyperBandIterGenerator):
    def __init__(self, min_budget: float, max_budget: float, eta: float, iter_klass: Any = None):
        super().__init__(min_budget, max_budget, eta, SH_only=True)


class CustomIterGenerator(_UltraoptGenerator, BracketIterGenerator):
    def __init__(self, num_configs_list: Sequence[Any], budgets_list: Sequence[Any],
                 iter_klass: Any = None):
        if num_configs_list and isinstance(num_configs_list[0], (list, tuple)):
            pairs = list(zip(num_configs_list, budgets_list))
        else:
            pairs = [(num_configs_list, budgets_list)]
        self._schedules = [validate_schedule(n, b) for n, b in pairs]
        self.num_brackets = len(self._schedules)
        super().__init__(max(self._schedules, key=lambda s: len(s.budgets)))

    def bracket(self, iteration: int) -> Bracket:
        return self._schedules[iteration % len(self._schedules)]

    @property
    def budgets(self) -> list[float]:
        return sorted({b for s in self._schedules for b in s.budgets})


BaseIterGenerator = BracketIterGenerator

__all__ = ["HyperBandIterGenerator", "SuccessiveHalvingIterGenerator", "CustomIterGenerator",
           "BaseIterGenerator"]
