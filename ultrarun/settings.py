"""Runtime defaults in one place, overridable by ``ULTRARUN_<NAME>`` environment variables.

Constructor arguments win over these; these win over the built-in defaults. Setting a name that
does not exist raises, so a typo cannot silently do nothing.
"""
from __future__ import annotations

import logging
import os
from typing import Any

from .errors import ConfigurationError

log = logging.getLogger(__name__)

_DEFAULTS: dict[str, Any] = {
    # Address every listener binds to unless a host or interface is given (closed by default).
    "HOST": "127.0.0.1",
    # Seconds any remote call may take before it counts as failed.
    "COMMTIMEOUT": 5.0,
    # Seconds between the dispatcher's pings of its workers (and name-server re-discovery).
    "PING_INTERVAL": 10.0,
    # Seconds a worker or dispatcher waits for the name server to come up before giving up.
    "NAMESERVER_WAIT": 10.0,
    # The run secret (HMAC key) when none is passed explicitly.
    "SECRET": None,
    # Per-user fallback secret, created with mode 0600 on first use.
    "SECRET_FILE": os.path.join("~", ".ultrarun", "secret"),
    # Largest message (bytes) a server reads or a connection sends; a bigger one is refused
    # before anything is allocated for it (64 KiB before a connection's handshake).
    "MAX_MESSAGE_SIZE": 4 * 1024 * 1024,
    # Connections a server keeps open; the least recently used goes first.
    "MAX_CONNECTIONS": 4096,
    # Connections that may wait for their handshake at once; the oldest goes first.
    "MAX_PENDING": 128,
    # Bytes a server buffers at once over all its connections (messages being received,
    # answers not yet read); a message that would exceed it closes its connection.
    "MAX_BUFFERED": 128 * 1024 * 1024,
    # File descriptors a server leaves to the rest of its process: it keeps at most
    # `ulimit -n` minus this many connections open.
    "FD_RESERVE": 256,
    # Seconds a connection may stay silent before its server closes it.
    "IDLE_CLOSE": 600.0,
    # Directory with the run's TLS certificates (ultrarun certs DIR): two-way TLS everywhere.
    "TLS": None,
}


class Settings:
    """Settings object; read the live values from `settings`."""

    def __init__(self) -> None:
        object.__setattr__(self, "_values", {})
        self.reset()

    def reset(self, use_environment: bool = True) -> None:
        """Back to the defaults, then apply ``ULTRARUN_*`` environment variables."""
        values = dict(_DEFAULTS)
        if use_environment:
            for key, raw in os.environ.items():
                if not key.startswith("ULTRARUN_"):
                    continue
                name = key[len("ULTRARUN_"):]
                if name not in _DEFAULTS:
                    log.warning("ignoring unknown setting %s (known: %s)", key,
                                ", ".join("ULTRARUN_" + k for k in _DEFAULTS))
                    continue
                try:
                    values[name] = self._convert(name, raw)
                except ConfigurationError as exc:  # a bad environment must not break imports
                    log.warning("ignoring %s: %s", key, exc)
        object.__setattr__(self, "_values", values)

    @staticmethod
    def _convert(name: str, raw: Any) -> Any:
        default = _DEFAULTS[name]
        if not isinstance(default, (int, float)):
            return raw
        kind, what = (int, "an integer") if isinstance(default, int) else (float, "a number")
        try:
            value = kind(raw)
        except (TypeError, ValueError):
            raise ConfigurationError(f"setting {name} must be {what}, got {raw!r}") from None
        if value <= 0:
            raise ConfigurationError(f"setting {name} must be > 0, got {value}")
        return value

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"unknown setting {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in _DEFAULTS:
            raise ConfigurationError(f"unknown setting {name!r}; known: {', '.join(_DEFAULTS)}")
        self._values[name] = self._convert(name, value)

    def __delattr__(self, name: str) -> None:
        """``del settings.NAME`` puts NAME back to its default (or environment) value."""
        if name not in _DEFAULTS:
            raise AttributeError(f"unknown setting {name!r}")
        raw = os.environ.get("ULTRARUN_" + name)
        self._values[name] = _DEFAULTS[name] if raw is None else self._convert(name, raw)

    def as_dict(self) -> dict[str, Any]:
        return dict(self._values)


settings = Settings()

__all__ = ["Settings", "settings"]
