"""``hpbandster.optimizers.randomsearch``: see :mod:`ultrarun.compat.hpbandster.optimizers`."""
from . import RandomSearch

__all__ = ["RandomSearch"]
