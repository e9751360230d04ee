"""``hpbandster.utils``: ``start_local_nameserver`` and ``nic_name_to_host``."""
from __future__ import annotations

from typing import Any

from ...nameserver import nic_name_to_host
from .core.nameserver import NameServer

#: name servers started by start_local_nameserver, kept alive for the life of the process
_STARTED: list[NameServer] = []


def start_local_nameserver(host: str | None = None, port: int = 0,
                           nic_name: str | None = None, run_id: Any = "local") -> tuple[str, int]:
    """Start a name server in a daemon thread of this process and return ``(host, port)``.

    As in HpBandSter it runs until the process ends (call ``shutdown_local_nameservers()`` to
    stop it sooner); workers and masters of this process find its secret by its port.
    """
    ns = NameServer(run_id, host=host, port=port, nic_name=nic_name)
    address = ns.start()
    _STARTED.append(ns)
    return address


def shutdown_local_nameservers() -> None:
    """Stop every name server :func:`start_local_nameserver` started (ultrarun's addition)."""
    while _STARTED:
        _STARTED.pop().shutdown()


__all__ = ["start_local_nameserver", "shutdown_local_nameservers", "nic_name_to_host"]
