"""Budget schedules (successive halving, Hyperband, ASHA) as state machines the master drives.

The Hyperband budget formula lives in :mod:`ultrarun.iterations._budgets`; see
``docs/iterations.md``.
"""
from __future__ import annotations

from ._adaptive import (AdaptiveIterGenerator, budget_agreement, first_decided_stage,
                        first_trusted_stage, promised_pairs)
from ._asha import ASHA, ASHAIterGenerator
from ._base import BaseIteration, BaseIterGenerator, ConfigId, ConfigStatus, Datum, Fits, Sampler
from ._budgets import (BRACKET_FORMULAS, Bracket, bracket, hyperband_brackets,
                       max_bracket_index)
from ._hyperband import HyperBandIterGenerator
from ._successive_halving import (BracketIterGenerator, CustomIterGenerator, SuccessiveHalving,
                                  SuccessiveHalvingIterGenerator)

__all__ = [
    "BaseIteration", "BaseIterGenerator", "BracketIterGenerator",
    "SuccessiveHalving", "SuccessiveHalvingIterGenerator", "HyperBandIterGenerator",
    "CustomIterGenerator", "ASHA", "ASHAIterGenerator", "AdaptiveIterGenerator",
    "budget_agreement", "first_trusted_stage", "first_decided_stage", "promised_pairs",
    "ConfigId", "ConfigStatus", "Datum", "Fits", "Sampler",
    "Bracket", "bracket", "hyperband_brackets", "max_bracket_index", "BRACKET_FORMULAS",
]
