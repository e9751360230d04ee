"""Drop-in modules for scripts written for HpBandSter, ultraopt and DeepHyper.

``ultrarun.compat.hpbandster`` mirrors ``hpbandster``'s module paths, ``ultrarun.compat.ultraopt``
ultraopt's ``async_comm``, optimizers and ``fmin``, and ``ultrarun.compat.deephyper`` DeepHyper's
evaluators. Each keeps its library's constructor parameters and positional order, so a script
changes only its imports (or calls ``ultrarun.compat.hpbandster.install()`` and changes nothing).
What differs on purpose is listed in docs/migrating.md.
"""
from __future__ import annotations

import os
from typing import Any

from ..transport import DEFAULT_NAMESERVER_PORT as PYRO_DEFAULT_PORT  # Pyro's 9090


def pyro_port(port: Any) -> int:
    """``port``, or for None the port Pyro4's ``locateNS``/``startNS`` would use: the
    ``PYRO_NS_PORT`` environment variable if set, else 9090."""
    if port is not None:
        return int(port)
    raw = os.environ.get("PYRO_NS_PORT")
    if raw is None:
        return PYRO_DEFAULT_PORT
    try:
        return int(raw)
    except ValueError:
        from ..errors import ConfigurationError

        raise ConfigurationError(f"PYRO_NS_PORT is {raw!r}; it must be a port number") from None


__all__ = ["pyro_port", "PYRO_DEFAULT_PORT"]
