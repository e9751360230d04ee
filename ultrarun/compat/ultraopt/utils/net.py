"""``ultraopt.utils.net``: ``get_a_free_port``."""
from __future__ import annotations

import socket

#: ports tried after the one asked for before the operating system is asked for any
TRIES = 100


def get_a_free_port(start_port: int = 9090, host: str = "127.0.0.1") -> int:
    """``start_port`` if nothing listens there on ``host``, else the next free port after it
    (ultraopt's rule), else any free port the operating system gives."""
    for port in range(int(start_port), min(int(start_port) + TRIES, 65536)):
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


__all__ = ["get_a_free_port"]
