"""``ultraopt.async_comm.dispatcher``: see :mod:`ultrarun.compat.ultraopt.async_comm`."""
from . import Dispatcher

__all__ = ["Dispatcher"]
