"""``hpbandster.optimizers.hyperband``: see :mod:`ultrarun.compat.hpbandster.optimizers`."""
from . import HyperBand

__all__ = ["HyperBand"]
