"""``ultraopt.async_comm.nameserver``: see :mod:`ultrarun.compat.ultraopt.async_comm`."""
from . import NameServer

__all__ = ["NameServer"]
