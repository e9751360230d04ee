"""``hpbandster.optimizers.h2bo``: see :mod:`ultrarun.compat.hpbandster.optimizers`."""
from . import H2BO

__all__ = ["H2BO"]
