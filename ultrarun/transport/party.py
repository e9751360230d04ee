"""Who this process is in a run: the :class:`Party` every server and connection it makes is
handed (the secret, the TLS certificates, the call timeout), and the process's two-way TLS
(docs/security.md; docs/architecture.md, "The servers: our loop, Pyro's messages")."""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import ssl
from pathlib import Path

import Pyro4.socketutil

from ..errors import ConfigurationError
from ..settings import settings
from .wire import _settings_lock, _signing_key

log = logging.getLogger(__name__)

_TLS_FILES = ("ca.pem", "party.pem", "party.key")


@dataclasses.dataclass(frozen=True)
class Tls:
    """The process's two-way TLS: its certificate directory and the contexts made from it."""

    directory: Path
    server: ssl.SSLContext
    client: ssl.SSLContext


_tls: list[Tls] = []  # the process's, once configured


def configure_tls(directory: str | os.PathLike | None) -> Tls | None:
    """Use two-way TLS for every server and connection of this process (``None``: no change);
    returns the process's TLS (None: none).

    ``directory`` holds ``ca.pem``, ``party.pem`` and ``party.key`` (``ultrarun certs DIR``
    makes them). TLS is a property of the process, as in Pyro; asking for another directory
    once one is in use is an error.
    """
    if directory is None:
        return _tls[0] if _tls else None
    path = Path(directory).expanduser().resolve()
    with _settings_lock:
        if _tls:
            if _tls[0].directory != path:
                raise ConfigurationError(f"this process already uses TLS from "
                                         f"{_tls[0].directory}; one process uses one run's "
                                         f"certificates")
            return _tls[0]
        missing = [name for name in _TLS_FILES if not (path / name).is_file()]
        if missing:
            raise ConfigurationError(f"{path} lacks {', '.join(missing)}; create them with "
                                     f"`ultrarun certs {path}`")
        ca, cert, key = (str(path / name) for name in _TLS_FILES)
        server, client = (ssl.SSLContext(p) for p in (ssl.PROTOCOL_TLS_SERVER,
                                                        ssl.PROTOCOL_TLS_CLIENT))
        # Parties are reached by IP address on clusters; what proves a peer is a certificate
        # signed by this run's private CA, not a host name.
        client.check_hostname = False
        for context in (server, client):  # two-way: each side shows a certificate
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(cert, key)
            context.load_verify_locations(cafile=ca)
            context.verify_mode = ssl.CERT_REQUIRED
        _tls.append(Tls(path, server, client))
        # Pyro builds client sockets from its global SSL settings: hand it our context.
        Pyro4.socketutil.getSSLcontext = lambda *args, **kwargs: client
        Pyro4.config.SSL = True
        log.info("two-way TLS with the certificates in %s", path)
        return _tls[0]


if settings.TLS:  # ULTRARUN_TLS, read when ultrarun is imported, like every setting
    configure_tls(settings.TLS)


@dataclasses.dataclass(frozen=True)
class Party:
    """What every server and connection of one role in a process needs, made once by that role
    (a dispatcher, a worker, a name server, ``ultrarun status``) and handed to each
    :class:`~ultrarun.transport.Server`, :class:`~ultrarun.transport.Connection` and
    :class:`~ultrarun.transport.NameServerClient` it makes. A new field here reaches all of
    them; only the transport reads it.

    Args:
        secret: The run secret every message is signed with (checked when a server starts or a
            connection is made: an empty one is refused).
        tls: The process's two-way TLS (default: as configured, ``configure_tls``).
        timeout: Seconds a remote call may take (default: the COMMTIMEOUT setting).
    """

    secret: str | bytes = dataclasses.field(repr=False)
    tls: Tls | None = dataclasses.field(default_factory=lambda: configure_tls(None))
    timeout: float = dataclasses.field(default_factory=lambda: settings.COMMTIMEOUT)

    def __post_init__(self) -> None:
        if isinstance(self.timeout, bool) or not (isinstance(self.timeout, (int, float))
                                                  and 0 < self.timeout < math.inf):
            raise ConfigurationError(f"timeout must be a positive, finite number of seconds, "
                                     f"got {self.timeout!r}")

    @classmethod
    def of(cls, party: "Party | str") -> "Party":
        """``party`` itself, or for a bare secret a party with the process's defaults."""
        return party if isinstance(party, Party) else cls(party)

    @property
    def key(self) -> bytes:
        """The HMAC key, read when a server starts or a connection is made: an empty secret is
        refused, and so is a party whose TLS is not the process's (made before
        ``configure_tls``: its servers would listen without TLS)."""
        if self.tls is not configure_tls(None):
            mine, process = (t.directory if t else "none" for t in (self.tls, configure_tls(None)))
            raise ConfigurationError(f"this party's TLS ({mine}) is not the process's "
                                     f"({process}): make the party after configure_tls")
        return _signing_key(self.secret)
