"""Names in the run's phone book and where parties are: run ids, dotted Pyro names and the
local address that faces the name server (docs/architecture.md, "Names")."""
from __future__ import annotations

import re
import socket
import urllib.parse
from typing import Any

from ..errors import ConfigurationError
from ..settings import settings

DEFAULT_NAMESERVER_PORT = 9090
_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]")


def check_run_id(run_id: Any) -> str:
    """A run id is any printable text (``'exp.1'``, ``'job 12'``), not empty and without '/'
    (it also names files: the credentials file, the journal). Pyro names escape it."""
    text = str(run_id)
    if not text or not text.isprintable() or "/" in text:
        raise ConfigurationError(f"run_id {text!r} must be printable text, not empty and without "
                                 "'/' (it is part of file names)")
    return text


def _escape(text: str) -> str:
    """``text`` as one part of a dotted Pyro name: letters, digits, '_' and '-' stay, every
    other character becomes %XX of its UTF-8 bytes (reversible, so distinct ids stay distinct)."""
    return _UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), text)


def _name_part(value: Any) -> str:
    return _UNSAFE.sub("-", str(value))


def dispatcher_name(run_id: Any) -> str:
    return f"ultrarun.{_escape(check_run_id(run_id))}.dispatcher"


def worker_prefix(run_id: Any) -> str:
    return f"ultrarun.{_escape(check_run_id(run_id))}.worker."


def worker_name(run_id: Any, host: str, pid: int, worker_id: Any) -> str:
    """``ultrarun.<run_id>.worker.<host>.<pid>.<worker_id>``: unique per run, readable in logs."""
    return f"{worker_prefix(run_id)}{_name_part(host)}.{int(pid)}.{_name_part(worker_id)}"


def parse_worker_name(name: str) -> dict[str, Any]:
    """Split a worker name into run_id, host, pid and worker_id."""
    parts = name.split(".")
    if len(parts) != 6 or parts[0] != "ultrarun" or parts[2] != "worker":
        raise ConfigurationError(f"{name!r} is not an ultrarun worker name")
    return {"run_id": urllib.parse.unquote(parts[1]), "host": parts[3], "pid": int(parts[4]),
            "worker_id": parts[5]}


def local_address_towards(host: str) -> str:
    """The local IP address a connection to ``host`` leaves from (no packet is sent).

    A worker told only where the name server is binds here, so a name server on another node
    can reach it; a loopback name server keeps everything on loopback.
    """
    try:
        infos = socket.getaddrinfo(host, 9, type=socket.SOCK_DGRAM)
    except socket.gaierror as exc:
        raise ConfigurationError(f"cannot resolve host {host!r}: {exc}") from None
    family, _, _, _, sockaddr = infos[0]
    if family == socket.AF_INET and sockaddr[0].startswith("127."):
        return sockaddr[0]
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(sockaddr)
            return sock.getsockname()[0]
        except OSError:
            return settings.HOST
