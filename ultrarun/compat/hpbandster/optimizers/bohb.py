"""``hpbandster.optimizers.bohb``: see :mod:`ultrarun.compat.hpbandster.optimizers`."""
from . import BOHB

__all__ = ["BOHB"]
