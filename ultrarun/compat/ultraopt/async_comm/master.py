"""``ultraopt.async_comm.master``: see :mod:`ultrarun.compat.ultraopt.async_comm`."""
from . import Master

__all__ = ["Master"]
