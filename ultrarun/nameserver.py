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
from .settings import settings
from .errors import CommunicationError, ConfigurationError, UnsafeFileError
from .security import (Credentials, credentials_path, forget_secret, new_secret, remember_secret,
                       user_secret)

log = logging.getLogger(__name__)

_SIOCGIFADDR = 0x8915  # Linux ioctl: an interface's IPv4 address


def nic_name_to_host(nic_name: str) -> str:
    """The IPv4 address of a network interface.

    Args:
        nic_name (str): The interface's name (``eth0``, ``ib0``, ``lo``...; ``ip -brief
            address`` lists them).

    Returns:
        str: Its IPv4 address.

    Raises:
        ConfigurationError: No such interface (the message lists this machine's), or it has no
            IPv4 address.
    """
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

    The secret is ``secret`` if given, else ``ULTRARUN_SECRET``; else, with a working directory,
    the secret of the credentials file a crashed name server of the same run left there (and
    its port, so the run's workers and dispatcher find their phone book again), or a fresh
    random one; without a working directory, the per-user secret (so HpBandSter-style workers
    that know only host and port still get in).

    Args:
        run_id (Any): The run's id; its name server, workers and master share it.
        working_directory (str | PathLike | None): Shared directory for the credentials file
            (JSON, mode 0600) that workers on other nodes read.
        host (str | None): Address to listen on (default 127.0.0.1: this machine only).
        port (int): Port (0: the port a crashed name server of this run left in the credentials
            file, else any free port).
        nic_name (str | None): Listen on this network interface's address instead of ``host``.
        secret (str | None): The run secret.
        fresh (bool): Ignore a credentials file left in ``working_directory``: a fresh secret
            and any free port.
        tls (Any): A directory of certificates (``ultrarun certs``) for two-way TLS.
    """

    def __init__(self, run_id: Any, working_directory: str | os.PathLike | None = None,
                 host: str | None = None, port: int = 0, nic_name: str | None = None,
                 secret: str | None = None, *, fresh: bool = False, tls: Any = None):
        if host and nic_name:
            raise ConfigurationError("give either host or nic_name, not both")
        transport.configure_tls(tls)
        self.run_id = transport.check_run_id(run_id)
        self.working_directory = working_directory
        self.host = nic_name_to_host(nic_name) if nic_name else (host or None)
        self.port = int(port or 0)
        self.reused: Credentials | None = None
        earlier = None if fresh or working_directory is None else _earlier(working_directory,
                                                                           self.run_id)
        if secret:
            self.secret = secret
        elif settings.SECRET:
            self.secret = settings.SECRET
        elif earlier is not None:
            self.secret, self.reused = earlier.secret, earlier
        else:
            self.secret = new_secret() if working_directory is not None else user_secret()
        if earlier is not None and earlier.secret == self.secret:
            self.reused = earlier
            self.port = self.port or earlier.port
            self.host = self.host or earlier.host
        self.host = self.host or settings.HOST
        self.party: transport.Party | None = None  # made by start()
        self._server: transport.Server | None = None
        self._lock = threading.Lock()
        self.credentials_file: Path | None = None

    def start(self) -> tuple[str, int]:
        """Start serving; returns ``(host, port)``. Idempotent."""
        with self._lock:
            if self._server is None:
                self.party = transport.Party(self.secret)
                try:
                    self._server = transport.start_nameserver(self.party, self.host, self.port)
                except CommunicationError as exc:
                    if self.reused is None:
                        raise
                    raise CommunicationError(
                        f"{exc}; this is the port of run {self.run_id}'s credentials file in "
                        f"{self.working_directory}: is its name server still running? (use "
                        f"--fresh for a new secret and port)") from None
                self.host, self.port = self._server.location
                remember_secret(self.port, self.secret)
                if self.working_directory is not None:
                    self.credentials_file = Credentials(self.host, self.port, self.run_id,
                                                        self.secret).write(self.working_directory)
                if self.reused is not None:
                    log.info("name server for run %s restarted on %s:%d with the secret of "
                             "its credentials file: the run's parties find it again",
                             self.run_id, self.host, self.port)
                log.info("name server for run %s listening on %s:%d", self.run_id, self.host,
                         self.port)
            return self.host, self.port

    def client(self, timeout: float | None = None) -> transport.NameServerClient:
        return transport.NameServerClient(self.host, self.port, self.party, timeout)

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


def _earlier(directory: str | os.PathLike, run_id: str) -> Credentials | None:
    """The credentials a name server of ``run_id`` left in ``directory`` (it crashed: a name
    server that stops removes its file), or None; a file someone else could have planted or
    read is refused (``UnsafeFileError``), never adopted."""
    try:
        return Credentials.read(directory, run_id)
    except UnsafeFileError:
        raise
    except (FileNotFoundError, ConfigurationError):
        return None


__all__ = ["NameServer", "nic_name_to_host", "credentials_path"]
