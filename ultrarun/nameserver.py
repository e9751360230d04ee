"""The run's phone book: a Pyro name server where long-lived workers and the dispatcher register.

``NameServer`` runs it in a background thread of the current process; ``ultrarun nameserver``
runs it in the foreground. With a working directory, ``start()`` writes the run's credentials
file (host, port, run id, secret; JSON, mode 0600) so workers on other nodes can join.
"""
from __future__ import annotations

import errno
import fcntl
import logging
import os
import socket
import struct
import threading
from pathlib import Path
from typing import Any

from . import transport
from .config import config
from .errors import ConfigurationError
from .security import (Credentials, credentials_path, forget_secret, new_secret, remember_secret,
                       user_secret)

log = logging.getLogger(__name__)

_SIOCGIFADDR = 0x8915  # Linux ioctl: an interface's IPv4 address


def nic_name_to_host(nic_name: str) -> str:
    """The IPv4 address of a network interface (``eth0``, ``ib0``, ``lo``...)."""
    names = sorted(name for _, name in socket.if_nameindex())
    if nic_name not in names:
        raise ConfigurationError(f"no network interface named {nic_name!r}; "
                                 f"this machine has: {', '.join(names)}")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            packed = fcntl.ioctl(sock.fileno(), _SIOCGIFADDR,
                                 struct.pack("256s", nic_name[:15].encode()))
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:
                raise ConfigurationError(f"interface {nic_name!r} has no IPv4 address") from None
            raise ConfigurationError(f"cannot read the address of {nic_name!r}: {exc}") from None
    return socket.inet_ntoa(packed[20:24])


class NameServer:
    """A Pyro name server for one run, in a background thread.

    The secret is ``secret`` if given, else ``ULTRARUN_SECRET``; else a fresh random secret when
    a working directory distributes it through the credentials file, else the per-user secret
    (so HpBandSter-style workers that know only host and port still get in).
    """

    def __init__(self, run_id: Any, working_directory: str | os.PathLike | None = None,
                 host: str | None = None, port: int = 0, nic_name: str | None = None,
                 secret: str | None = None):
        if host and nic_name:
            raise ConfigurationError("give either host or nic_name, not both")
        self.run_id = transport.check_run_id(run_id)
        self.working_directory = working_directory
        self.host = nic_name_to_host(nic_name) if nic_name else (host or config.HOST)
        self.port = int(port or 0)
        if secret:
            self.secret = secret
        elif config.SECRET:
            self.secret = config.SECRET
        else:
            self.secret = new_secret() if working_directory is not None else user_secret()
        self._server: transport.Server | None = None
        self._lock = threading.Lock()
        self.credentials_file: Path | None = None

    def start(self) -> tuple[str, int]:
        """Start serving; returns ``(host, port)``. Idempotent."""
        with self._lock:
            if self._server is None:
                self._server = transport.start_nameserver(self.secret, self.host, self.port)
                self.host, self.port = self._server.location
                remember_secret(self.port, self.secret)
                if self.working_directory is not None:
                    self.credentials_file = Credentials(self.host, self.port, self.run_id,
                                                        self.secret).write(self.working_directory)
                log.info("name server for run %s listening on %s:%d", self.run_id, self.host,
                         self.port)
            return self.host, self.port

    def client(self, timeout: float | None = None) -> transport.NameServerClient:
        return transport.NameServerClient(self.host, self.port, self.secret, timeout)

    def shutdown(self) -> None:
        """Stop serving and remove the credentials file. Idempotent."""
        with self._lock:
            server, self._server = self._server, None
            if server is None:
                return
            forget_secret(self.port)
            if self.credentials_file is not None:
                try:
                    self.credentials_file.unlink()
                except FileNotFoundError:
                    pass
                self.credentials_file = None
        server.shutdown()
        log.info("name server for run %s stopped", self.run_id)

    @property
    def running(self) -> bool:
        return self._server is not None

    def __enter__(self) -> "NameServer":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()


__all__ = ["NameServer", "nic_name_to_host", "credentials_path"]
