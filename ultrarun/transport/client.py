"""The connections: Pyro's proxy with our side of the handshake, :class:`Connection` (one remote
object) and :class:`NameServerClient`, each made with the :class:`~ultrarun.transport.Party` it
speaks for, and Pyro's errors translated into ultrarun's (docs/security.md, "The handshake").
A :class:`Connection` is used by one thread at a time.
"""
from __future__ import annotations

import contextlib
import os
import socket
import ssl
import threading
import time
from typing import Any, Callable, Iterator

import Pyro4.constants
import Pyro4.core
import Pyro4.errors
import Pyro4.message

from ..errors import (AuthenticationError, CommunicationError, CommunicationTimeout,
                      NameServerError)
from ..settings import settings
from .names import DEFAULT_NAMESERVER_PORT
from .party import Party
from .wire import (_CLIENT, _COUNTER, _FRESH, _MARSHAL_ID, _NONCE, _NONCE_SIZE, _Message,
                   _answer_token, _apply_limits)


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
        raise AuthenticationError(f"{what}: refused ({exc}); the run secrets or TLS "
                                  "certificates differ: pass the run's secret (--secret, "
                                  "ULTRARUN_SECRET) or read it from the credentials file "
                                  "(--working-dir)") from None
    except Pyro4.errors.NamingError as exc:
        raise UnknownName(f"{what}: {exc}") from None
    except Pyro4.errors.MessageTooLargeError as exc:
        raise CommunicationError(f"{what}: {exc} (the MAX_MESSAGE_SIZE setting, "
                                 f"ULTRARUN_MAX_MESSAGE_SIZE)") from None
    except (Pyro4.errors.CommunicationError, Pyro4.errors.ProtocolError) as exc:
        if "hmac" in str(exc).lower():
            raise AuthenticationError(
                f"{what}: refused, the run secrets differ ({exc}); pass the run's secret "
                "(--secret, ULTRARUN_SECRET) or read it from the credentials file "
                "(--working-dir)") from None
        raise CommunicationError(f"{what}: {exc}") from None
    except ssl.SSLError as exc:
        raise AuthenticationError(f"{what}: TLS refused ({exc}); both sides need certificates "
                                  "of the same run CA (ultrarun certs, --tls)") from None
    except OSError as exc:
        raise CommunicationError(f"{what}: {exc}") from None

class _Proxy(Pyro4.core.Proxy):
    """Pyro's proxy, with the handshake of this module (see "The handshake" above): a fresh
    client nonce in MSG_CONNECT, the server's answer checked for it, the proof sent at once,
    the token on every request and its mirror checked on every answer. Its own state lives in
    ``__dict__``: Pyro's proxy treats any other attribute as the remote object's."""

    def _pyroAnnotations(self) -> dict:
        state = self.__dict__
        if self._pyroConnection is None:  # the handshake itself
            state.update(_ur_client=os.urandom(_NONCE_SIZE), _ur_token=None)
            return {_CLIENT: state["_ur_client"]}
        return {_FRESH: self._ur_next()}

    def _ur_next(self) -> bytes:
        state = self.__dict__
        if not state.get("_ur_token"):
            raise Pyro4.errors.SecurityError("the connection's handshake did not complete")
        state["_ur_count"] += 1
        state["_ur_sent"] = state["_ur_token"] + _COUNTER.pack(state["_ur_count"])
        return state["_ur_sent"]

    def _ur_echoed(self, annotations: dict) -> bool:
        sent = self.__dict__.get("_ur_sent")
        return sent is not None and annotations.get(_FRESH) == _answer_token(sent)

    def _pyroResponseAnnotations(self, annotations: dict, msgtype: int) -> None:
        state = self.__dict__
        if msgtype == Pyro4.message.MSG_CONNECTOK:
            server = annotations.get(_NONCE)
            client = state.get("_ur_client")
            if not server or len(server) != _NONCE_SIZE or annotations.get(_CLIENT) != client:
                self._pyroRelease()
                raise Pyro4.errors.SecurityError(
                    "the server's handshake answer is not for this connection (replayed?), "
                    "or it is not an ultrarun daemon of this version")
            state.update(_ur_token=client + bytes(server), _ur_count=0, _ur_sent=None)
            with contextlib.suppress(OSError):  # small request/reply messages: no Nagle delay
                self._pyroConnection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._ur_prove()
        elif msgtype == Pyro4.message.MSG_RESULT and not self._ur_echoed(annotations):
            raise Pyro4.errors.SecurityError("an answer that does not echo this request "
                                             "(replayed?)")

    def _ur_prove(self) -> None:
        """Prove the secret on this connection now (a ping carrying the token), so that it is
        authenticated when connect returns, whenever its first request follows."""
        conn, key = self._pyroConnection, self._pyroHmacKey
        self._pyroSeq = (self._pyroSeq + 1) & 0xFFFF
        ping = _Message(Pyro4.message.MSG_PING, b"ping", _MARSHAL_ID, 0, self._pyroSeq,
                        annotations={_FRESH: self._ur_next()}, hmac_key=key)
        try:
            conn.send(ping.to_bytes())
            pong = _Message.recv(conn, [Pyro4.message.MSG_PING], hmac_key=key)
        except Exception:
            self._pyroRelease()
            raise
        if pong.seq != self._pyroSeq or not self._ur_echoed(pong.annotations):
            self._pyroRelease()
            raise Pyro4.errors.SecurityError("the server's answer to the handshake proof does "
                                             "not echo it (replayed?)")

    def _pyroRelease(self) -> None:
        for name in ("_ur_client", "_ur_token", "_ur_sent"):  # a new connection, new nonces
            self.__dict__.pop(name, None)
        super()._pyroRelease()


class Connection:
    """A connection to one remote object, used by one thread at a time (hand it over, never
    share it: Pyro5 forbids sharing, and ordered delivery depends on it).

    Calls are made with :meth:`call` (an answer) and :meth:`send` (a oneway message: it only
    waits until the message is handed to the operating system). Every call has a timeout;
    errors are :class:`~ultrarun.errors.CommunicationError` and its subclasses.
    """

    def __init__(self, uri: str, party: Party | str, timeout: float | None = None,
                 what: str | None = None):
        """``timeout`` (seconds a call may take): the party's unless given."""
        _apply_limits()
        self.party = Party.of(party)
        proxy = _Proxy(uri)
        proxy._pyroHmacKey = self.party.key
        proxy._pyroSerializer = "marshal"
        proxy._pyroTimeout = timeout if timeout is not None else self.party.timeout
        self._proxy = proxy
        self.uri = uri
        self.what = what or uri

    def call(self, method: str, *args: Any) -> Any:
        """Call ``method``; a connection the server had closed (idle, or evicted) is opened
        again once. Every call ultrarun makes may run twice: they are idempotent."""
        with remote_call(f"{method} on {self.what}"):
            try:
                return getattr(self._proxy, method)(*args)
            except Pyro4.errors.ConnectionClosedError:
                self._proxy._pyroRelease()
                return getattr(self._proxy, method)(*args)

    def send(self, method: str, *args: Any) -> None:
        """A oneway call (the remote method must be declared :func:`oneway`)."""
        with remote_call(f"{method} to {self.what}"):
            getattr(self._proxy, method)(*args)

    def connect(self) -> None:
        """Open the connection now (TCP, TLS, the signed handshake), if it is not open."""
        with remote_call(f"connect to {self.what}"):
            self._proxy._pyroBind()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._proxy._pyroRelease()

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class NameServerClient:
    """Register, look up and list names; one connection, reopened once if it broke.

    Like a :class:`Connection`, a client belongs to one thread at a time.
    """

    def __init__(self, host: str, port: int | None, party: Party | str,
                 timeout: float | None = None):
        # "localhost" may resolve to ::1 first, where our IPv4 listeners are not.
        self.host = "127.0.0.1" if host == "localhost" else (host or settings.HOST)
        self.port = int(port) if port else DEFAULT_NAMESERVER_PORT
        self.party = Party.of(party)
        self._timeout = timeout
        self._conn: Connection | None = None

    @property
    def uri(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"PYRO:{Pyro4.constants.NAMESERVER_NAME}@{host}:{self.port}"

    def _call(self, method: str, *args: Any) -> Any:
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = Connection(self.uri, self.party, self._timeout,
                                        what=f"the name server at {self.host}:{self.port}")
            try:
                return self._conn.call(method, *args)
            except UnknownName:
                raise
            except (AuthenticationError, CommunicationTimeout):
                self.close()
                raise
            except CommunicationError as exc:
                self.close()
                if attempt == 2:
                    raise NameServerError(str(exc)) from None
        raise AssertionError("unreachable")

    def ping(self) -> None:
        self._call("ping")

    def wait(self, timeout: float, on_wait: Callable[[float], Any] | None = None) -> None:
        """Ping until the name server answers (parties may start before it), or raise
        :class:`NameServerError` after ``timeout`` seconds. ``on_wait(seconds_waited)`` is
        called about every 5 seconds while it waits (to say so)."""
        start = time.monotonic()
        deadline = start + timeout
        next_note = start + 5.0
        waiter = threading.Event()
        while True:
            try:
                self.ping()
                return
            except (AuthenticationError, CommunicationTimeout):
                raise
            except CommunicationError:
                now = time.monotonic()
                if now >= deadline:
                    raise NameServerError(f"no name server at {self.host}:{self.port} after "
                                          f"{timeout:g}s") from None
                if on_wait is not None and now >= next_note:
                    on_wait(now - start)
                    next_note = now + 5.0
                waiter.wait(min(0.1, max(0.0, deadline - now)))

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
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def __enter__(self) -> "NameServerClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
