"""``ultraopt.async_comm.worker``: see :mod:`ultrarun.compat.ultraopt.async_comm`."""
from . import Worker

__all__ = ["Worker"]
