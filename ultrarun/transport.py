"""The one door to Pyro4: daemons, proxies, the name server, HMAC keys, timeouts and names.

Pyro4 is frozen upstream; keeping every Pyro detail here makes a move to Pyro5 (or a Python that
breaks Pyro4) a change in this file only. Nothing else in ultrarun imports Pyro4.

Settings applied to every daemon and proxy made here:
- the run secret is the HMAC key of every message, and there is always one: Pyro checks a
  message's HMAC before it deserialises anything, so only the run's parties are ever parsed;
- proxies speak marshal, daemons accept marshal and serpent (serpent for Pyro's own tools, such
  as ``python -m Pyro4.nsc``); pickle is refused even if ``PYRO_SERIALIZERS_ACCEPTED`` asks for
  it. marshal is C code and carries plain data exactly (tuples stay tuples); serpent parses
  every message with ``ast.literal_eval``, which cost a third of a worker's CPU per job and a
  fifth of the master's (docs/benchmarks.md);
- daemons use Pyro's multiplex server: one thread serves any number of connections, so hundreds
  of workers do not pin hundreds of threads;
- every proxy has a timeout.
"""
from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
import urllib.parse
from typing import Any, Callable, Iterator

import Pyro4
import Pyro4.errors
import Pyro4.naming

from .config import config
from .errors import (AuthenticationError, CommunicationError, CommunicationTimeout,
                     ConfigurationError, NameServerError)

log = logging.getLogger(__name__)

# Process-wide Pyro settings that cannot be given per daemon. Oneway calls run inline: ours only
# enqueue work, and a thread per call would cost more than the call.
Pyro4.config.ONEWAY_THREADED = False
Pyro4.config.SERIALIZER = "marshal"
Pyro4.config.REQUIRE_EXPOSE = True
Pyro4.config.SOCK_NODELAY = True  # small request/reply messages: no Nagle delay

_settings_lock = threading.Lock()
_ACCEPTED = frozenset({"marshal", "serpent"})
DEFAULT_NAMESERVER_PORT = 9090

expose = Pyro4.expose
oneway = Pyro4.oneway

# ---------------------------------------------------------------------------------------- names
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
    return re.sub(r"[^A-Za-z0-9_\-]", "-", str(value))


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


# --------------------------------------------------------------------------------------- errors
class UnknownName(NameServerError):
    """The name server answered: no such name (as opposed to: no answer)."""


@contextlib.contextmanager
def remote_call(what: str) -> Iterator[None]:
    """Translate Pyro's transport errors into ultrarun's (exceptions raised by the remote method
    itself pass through unchanged)."""
    try:
        yield
    except Pyro4.errors.TimeoutError as exc:
        raise CommunicationTimeout(f"{what}: no answer in time ({exc})") from None
    except Pyro4.errors.SecurityError as exc:
        raise AuthenticationError(f"{what}: refused, the run secrets differ ({exc})") from None
    except Pyro4.errors.NamingError as exc:
        raise UnknownName(f"{what}: {exc}") from None
    except (Pyro4.errors.CommunicationError, Pyro4.errors.ProtocolError) as exc:
        if "hmac" in str(exc).lower():
            raise AuthenticationError(
                f"{what}: refused, the run secrets differ ({exc}); pass the run's secret "
                "(--secret, ULTRARUN_SECRET) or read it from the credentials file "
                "(--working-dir)") from None
        raise CommunicationError(f"{what}: {exc}") from None
    except OSError as exc:
        raise CommunicationError(f"{what}: {exc}") from None


# -------------------------------------------------------------------------------------- daemons
@contextlib.contextmanager
def _daemon_settings() -> Iterator[None]:
    with _settings_lock:
        saved = Pyro4.config.SERVERTYPE, Pyro4.config.SERIALIZERS_ACCEPTED
        Pyro4.config.SERVERTYPE = "multiplex"
        Pyro4.config.SERIALIZERS_ACCEPTED = set(_ACCEPTED)
        try:
            yield
        finally:
            Pyro4.config.SERVERTYPE, Pyro4.config.SERIALIZERS_ACCEPTED = saved


class Server:
    """A Pyro daemon serving one object in a background thread.

    ``start()`` binds and starts serving; ``shutdown()`` is idempotent. The object's methods run
    in the daemon's single thread, so they must return quickly.
    """

    def __init__(self, obj: Any, secret: str, host: str | None = None, port: int = 0,
                 object_id: str | None = None, daemon_factory: Callable[..., Any] | None = None):
        self._obj = obj
        self._secret = secret
        self._host = host or config.HOST
        self._port = port
        self._object_id = object_id
        self._factory = daemon_factory or Pyro4.Daemon
        self._daemon: Any = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.uri: str | None = None

    def start(self) -> str:
        with self._lock:
            if self._daemon is not None:
                return self.uri  # type: ignore[return-value]
            key = _signing_key(self._secret)
            with _daemon_settings():
                try:
                    daemon = self._factory(host=self._host, port=self._port)
                except OSError as exc:
                    raise CommunicationError(f"cannot listen on {self._host}:{self._port}: {exc}") from None
            daemon._pyroHmacKey = key
            if self._obj is not None:
                self.uri = str(daemon.register(self._obj, objectId=self._object_id))
            self._daemon = daemon
            self._thread = threading.Thread(target=self._loop, name=f"pyro-{self._host}",
                                            daemon=True)
            self._thread.start()
            return self.uri  # type: ignore[return-value]

    def _loop(self) -> None:
        try:
            self._daemon.requestLoop()
        except Exception:  # the loop must never die silently
            log.exception("Pyro request loop failed")

    @property
    def location(self) -> tuple[str, int]:
        host, port = self._daemon.locationStr.rsplit(":", 1)
        return host.strip("[]"), int(port)

    def shutdown(self) -> None:
        with self._lock:
            daemon, self._daemon = self._daemon, None
            thread, self._thread = self._thread, None
        if daemon is None:
            return
        daemon.shutdown()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def __enter__(self) -> "Server":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()


def start_nameserver(secret: str, host: str | None = None, port: int = 0) -> Server:
    """A Pyro name server (no UDP broadcast responder) served in a background thread."""
    server = Server(None, secret, host=host, port=port,
                    daemon_factory=Pyro4.naming.NameServerDaemon)
    server.start()
    return server


def _signing_key(secret: str) -> str:
    """Every message is signed: an unsigned connection would parse anyone's marshal data."""
    if not secret:
        raise ConfigurationError("a run secret is required: every message is signed with it")
    return secret


# -------------------------------------------------------------------------------------- proxies
def make_proxy(uri: str, secret: str, timeout: float | None = None) -> Any:
    """A proxy that speaks marshal, signs with the run secret and never waits forever."""
    proxy = Pyro4.Proxy(uri)
    proxy._pyroHmacKey = _signing_key(secret)
    proxy._pyroSerializer = "marshal"
    proxy._pyroTimeout = timeout if timeout is not None else config.COMMTIMEOUT
    return proxy


def close_proxy(proxy: Any) -> None:
    with contextlib.suppress(Exception):
        proxy._pyroRelease()


class NameServerClient:
    """Register, look up and list names; one connection, reopened once if it broke."""

    def __init__(self, host: str, port: int | None, secret: str, timeout: float | None = None):
        # "localhost" may resolve to ::1 first, where our IPv4 listeners are not.
        self.host = "127.0.0.1" if host == "localhost" else (host or config.HOST)
        self.port = int(port) if port else DEFAULT_NAMESERVER_PORT
        self._secret = secret
        self._timeout = timeout
        self._lock = threading.Lock()
        self._proxy: Any = None

    @property
    def uri(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"PYRO:{Pyro4.constants.NAMESERVER_NAME}@{host}:{self.port}"

    def _call(self, method: str, *args: Any) -> Any:
        what = f"name server {self.host}:{self.port} {method}"
        with self._lock:
            for attempt in (1, 2):
                if self._proxy is None:
                    self._proxy = make_proxy(self.uri, self._secret, self._timeout)
                try:
                    with remote_call(what):
                        return getattr(self._proxy, method)(*args)
                except UnknownName:
                    raise
                except (AuthenticationError, CommunicationTimeout):
                    self._drop()
                    raise
                except CommunicationError as exc:
                    self._drop()
                    if attempt == 2:
                        raise NameServerError(str(exc)) from None
        raise AssertionError("unreachable")

    def _drop(self) -> None:
        if self._proxy is not None:
            close_proxy(self._proxy)
            self._proxy = None

    def ping(self) -> None:
        self._call("ping")

    def wait(self, timeout: float) -> None:
        """Ping until the name server answers (parties may start before it), or raise
        :class:`NameServerError` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        waiter = threading.Event()
        while True:
            try:
                self.ping()
                return
            except (AuthenticationError, CommunicationTimeout):
                raise
            except CommunicationError:
                if time.monotonic() >= deadline:
                    raise NameServerError(f"no name server at {self.host}:{self.port}") from None
                waiter.wait(0.1)

    def register(self, name: str, uri: str) -> None:
        self._call("register", name, str(uri))

    def remove(self, name: str) -> None:
        self._call("remove", name)

    def lookup(self, name: str) -> str | None:
        """The URI registered as ``name``, or None if there is none."""
        try:
            return str(self._call("lookup", name))
        except UnknownName:
            return None

    def list(self, prefix: str) -> dict[str, str]:
        return {k: str(v) for k, v in self._call("list", prefix).items()}

    def close(self) -> None:
        with self._lock:
            self._drop()

    def __enter__(self) -> "NameServerClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


__all__ = ["Server", "NameServerClient", "start_nameserver", "make_proxy", "close_proxy",
           "remote_call", "expose", "oneway", "check_run_id", "dispatcher_name", "worker_prefix",
           "worker_name", "parse_worker_name", "DEFAULT_NAMESERVER_PORT"]


def local_address_towards(host: str) -> str:
    """The local IP address a connection to ``host`` leaves from (no packet is sent).

    A worker told only where the name server is binds here, so a name server on another node
    can reach it; a loopback name server keeps everything on loopback.
    """
    import socket

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
            return config.HOST
