"""``hpbandster.core.nameserver``: the run's name server with HpBandSter's arguments.

``port=None`` means Pyro's default port, as in HpBandSter: ``PYRO_NS_PORT`` if set, else 9090;
``port=0`` (HpBandSter's default) picks a free one. The credentials file is ultrarun's (JSON with
the run secret, mode 0600), not HpBandSter's pickle: see docs/migrating.md.
"""
from __future__ import annotations

import os
from typing import Any

from ultrarun import nameserver as _native
from ultrarun.nameserver import nic_name_to_host
from ultrarun.compat import pyro_port


class NameServer(_native.NameServer):
    """``NameServer(run_id, working_directory=None, host=None, port=0, nic_name=None)``."""

    def __init__(self, run_id: Any, working_directory: str | os.PathLike | None = None,
                 host: str | None = None, port: int | None = 0, nic_name: str | None = None,
                 **kwargs: Any):
        if host and nic_name:  # HpBandSter uses nic_name only when no host is given
            nic_name = None
        super().__init__(run_id, working_directory=working_directory,
                         host="127.0.0.1" if host == "localhost" else host,
                         port=pyro_port(port), nic_name=nic_name, **kwargs)


__all__ = ["NameServer", "nic_name_to_host"]
