"""The one door to Pyro4: servers, connections, the name server, keys, limits, TLS and names.

No other module imports Pyro4 or touches a ``_pyro`` name (``tests/test_architecture.py``
checks it), so a move to Pyro5 is a change in this file only. What every server and connection
made here guarantees (authentication bound to each connection, signed and fresh messages,
marshal only, our own selector loop that hands Pyro only complete messages, size limits and a
buffer budget, deadlines, connection and descriptor bounds, optional two-way TLS)
is stated once, with the test of each guarantee, in docs/security.md and docs/architecture.md
("The servers: our loop, Pyro's messages"). A :class:`Connection` is used by one thread at a time.
"""
from __future__ import annotations

import collections
import contextlib
import errno
import logging
import marshal
import math
import os
import re
import resource
import selectors
import socket
import ssl
import struct
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any, Callable, Iterator

import Pyro4
import Pyro4.core
import Pyro4.errors
import Pyro4.message
import Pyro4.naming
import Pyro4.socketutil
import Pyro4.util

from .settings import settings
from .errors import (AuthenticationError, CommunicationError, CommunicationTimeout,
                     ConfigurationError, NameServerError)

log = logging.getLogger(__name__)

# Importing ultrarun changes none of Pyro4's settings: serializer and Nagle are set per
# connection. Two process-wide ones are set when this module first serves or connects (Pyro4
# reads them from its global config only; docs/architecture.md, "The servers"): ONEWAY_THREADED
# off (our oneway methods only enqueue work) and MAX_MESSAGE_SIZE; with TLS also SSL.
_settings_lock = threading.Lock()
DEFAULT_NAMESERVER_PORT = 9090

expose = Pyro4.expose
oneway = Pyro4.oneway

_Message = Pyro4.message.Message
_HEADER = _Message.header_size
_PREAUTH_LIMIT = 64 * 1024  # a handshake is a few hundred bytes
_CLIENT = "CNCE"  # annotation keys: 4 characters, Pyro's rule
_NONCE = "NONC"
_FRESH = "UNCE"
_COUNTER = struct.Struct("!Q")
_NONCE_SIZE = 16
_MARSHAL_ID = Pyro4.util.MarshalSerializer.serializer_id
_TOKEN_SIZE = 2 * _NONCE_SIZE + _COUNTER.size
_IDLE_SWEEP = 30.0  # seconds between sweeps of a server whose connections are all idle
_WARN_EVERY = 10.0  # seconds between two warnings of one kind from one server
_ACCEPT_PAUSE = (0.05, 1.0)  # seconds accepting pauses when the process is out of descriptors
_OUT_OF_FDS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


# ------------------------------------------------------------------------------- the handshake
# Every connection proves the secret afresh (docs/security.md, "The handshake"):
#   client -> server  MSG_CONNECT   CNCE = c                (c: the client's fresh nonce)
#   server -> client  MSG_CONNECTOK CNCE = c, NONC = s      (s: the server's fresh nonce)
#   client -> server  MSG_PING      UNCE = c + s + counter  (the proof, then every request)
#   server -> client  MSG_PING      UNCE = s + c + counter  (every answer: the mirrored token)
# Pyro's HMAC covers the data and every annotation value, so only a holder of the secret can
# write a message that carries both of this connection's nonces; the counter must grow, and
# answers mirror the token, so neither side takes a message recorded elsewhere, an old one, or
# its own sent back. A connection is authenticated when its proof arrives, not at MSG_CONNECT
# (which anyone who recorded one can send again). The HMAC is over the values concatenated
# (keys and header are not covered), so signed bytes can be re-cut between data and
# annotations: no signed message but this connection's own requests holds c + s + a counter
# in a row, and those are used up (test_transport.py fuzzes exactly this).
def _answer_token(request: bytes) -> bytes:
    """The token an answer to ``request`` carries: the two nonces swapped, the same counter."""
    return (request[_NONCE_SIZE:2 * _NONCE_SIZE] + request[:_NONCE_SIZE]
            + request[2 * _NONCE_SIZE:])

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


def _signing_key(secret: str) -> bytes:
    """Every message is signed: an unsigned connection would parse anyone's marshal data."""
    if not secret:
        raise ConfigurationError("a run secret is required: every message is signed with it")
    return secret.encode("utf-8") if isinstance(secret, str) else secret


def encoded_size(value: Any) -> int:
    """Bytes ``value`` (plain data) takes on the wire, to check it against MAX_MESSAGE_SIZE
    before sending it."""
    return len(marshal.dumps(value))


def _buffer_budget() -> int:
    """Bytes one server buffers over all its connections (MAX_BUFFERED); one message of the
    largest size always fits."""
    return max(int(settings.MAX_BUFFERED), int(settings.MAX_MESSAGE_SIZE))


def _apply_limits() -> None:
    """The process-wide settings this module needs once it serves or connects (see the top of
    this module): proxies refuse answers over the size limit as well, and oneway calls run
    inline. A daemon that would expose unmarked methods (``PYRO_REQUIRE_EXPOSE=False``) is
    refused rather than changed back."""
    if not Pyro4.config.REQUIRE_EXPOSE:
        raise ConfigurationError("Pyro4's REQUIRE_EXPOSE is off (PYRO_REQUIRE_EXPOSE): every "
                                 "method of ultrarun's servers would be callable; unset it")
    Pyro4.config.MAX_MESSAGE_SIZE = int(settings.MAX_MESSAGE_SIZE)
    Pyro4.config.ONEWAY_THREADED = False


# ------------------------------------------------------------------------------------------ TLS
_tls: dict[str, Any] = {"dir": None, "server": None}

_TLS_FILES = ("ca.pem", "party.pem", "party.key")


def configure_tls(directory: str | os.PathLike | None) -> None:
    """Use two-way TLS for every server and connection of this process (``None``: no change).

    ``directory`` holds ``ca.pem``, ``party.pem`` and ``party.key`` (``ultrarun certs DIR``
    makes them). TLS is a property of the process, as in Pyro; asking for another directory
    once one is in use is an error.
    """
    if directory is None:
        return
    path = Path(directory).expanduser().resolve()
    with _settings_lock:
        if _tls["dir"] is not None:
            if _tls["dir"] != path:
                raise ConfigurationError(f"this process already uses TLS from {_tls['dir']}; "
                                         f"one process uses one run's certificates")
            return
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
        _tls.update(dir=path, server=server)
        # Pyro builds client sockets from its global SSL settings: hand it our context.
        Pyro4.socketutil.getSSLcontext = lambda *args, **kwargs: client
        Pyro4.config.SSL = True
        log.info("two-way TLS with the certificates in %s", path)


if settings.TLS:  # ULTRARUN_TLS, read when ultrarun is imported, like every setting
    configure_tls(settings.TLS)


# -------------------------------------------------------------------------------------- servers
class _Peer:
    """One client connection of a server, as the loop sees it."""

    __slots__ = ("sock", "address", "inbox", "need", "began", "last", "opened", "authed",
                 "token", "count", "outbox", "out_since", "tls_pending", "dead")

    def __init__(self, sock: socket.socket, address: Any, now: float, tls: bool):
        self.sock = sock
        self.address = address
        self.inbox = bytearray()
        self.need = 0  # size of the message being received, once its header is in (reserved)
        self.began: float | None = None  # when the message being received started
        self.last = now  # last activity
        self.opened = now
        self.authed = False  # proved the secret on this connection
        self.token = b""  # client nonce + server nonce, once the server answered MSG_CONNECT
        self.count = 0
        self.outbox = bytearray()
        self.out_since: float | None = None
        self.tls_pending = tls
        self.dead = False


class _Frame:
    """One complete message, as Pyro's daemon reads it, with answers written to the peer."""

    def __init__(self, loop: "_Loop", peer: _Peer, frame: bytes):
        self._loop = loop
        self._peer = peer
        self._view = memoryview(frame)
        self._pos = 0
        self.sock = peer.sock
        self.objectId = None
        self.pyroInstances: dict = {}
        self.keep_open = True

    def recv(self, size: int) -> bytes:
        chunk = self._view[self._pos:self._pos + size]
        if len(chunk) < size:
            raise Pyro4.errors.ConnectionClosedError("incomplete message")
        self._pos += size
        return bytes(chunk)

    def send(self, data: bytes) -> None:
        self._loop.write(self._peer, data)

    def close(self) -> None:
        self._loop.close(self._peer, "closed by the daemon")

    def family(self) -> str:
        return "IPv4"


_reply = threading.local()  # annotations of the answer being written (the loop's thread)


def _reply_annotations() -> dict:
    return dict(getattr(_reply, "annotations", {}))


class _Loop:
    """The server loop: a selector over the listening socket and every peer.

    Only complete messages reach the daemon (see the module docstring for every limit).
    """

    def __init__(self, daemon: Any, secret: bytes, tls: ssl.SSLContext | None, name: str):
        self.daemon = daemon
        self.key = secret
        self.tls = tls
        self.name = name
        self.listener: socket.socket = daemon.transportServer.sock
        self.listener.setblocking(False)
        with contextlib.suppress(OSError):
            self.listener.listen(1024)  # Pyro listens with a backlog of 100
        self.selector = selectors.DefaultSelector()
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.wake_w.setblocking(False)
        self.selector.register(self.listener, selectors.EVENT_READ, "accept")
        self.selector.register(self.wake_r, selectors.EVENT_READ, "wake")
        self.pending: collections.OrderedDict[_Peer, None] = collections.OrderedDict()
        self.authed: collections.OrderedDict[_Peer, None] = collections.OrderedDict()
        self.stats: collections.Counter = collections.Counter()
        self.buffered = 0  # bytes reserved for messages being received and unread answers
        self.paused_until: float | None = None  # accepting paused: out of file descriptors
        self.pause = _ACCEPT_PAUSE[0]
        self.warned: dict[str, list] = {}  # kind -> [when it may warn again, suppressed]
        self.stopping = False
        self.urgent = False  # a handshake, message or answer began: sweep on the short period
        self.on_peer_closed: Callable[[Any], None] | None = None  # see Server
        daemon.annotations = _reply_annotations  # answers (errors too) carry our annotations

    # ------------------------------------------------------------------------------ running
    def run(self) -> None:
        sweep_every = max(0.05, min(0.5, settings.COMMTIMEOUT / 4))
        next_sweep = time.monotonic() + sweep_every
        while not self.stopping:
            wake_at = next_sweep if self.paused_until is None else min(next_sweep,
                                                                       self.paused_until)
            timeout = max(0.0, wake_at - time.monotonic())
            try:
                events = self.selector.select(timeout)
            except (OSError, ValueError):
                events = []
            for key, mask in events:
                if self.stopping:
                    break
                try:
                    if key.data == "accept":
                        self._accept()
                    elif key.data == "wake":
                        with contextlib.suppress(OSError):
                            self.wake_r.recv(4096)
                    else:
                        self._event(key.data, mask)
                except Exception:  # the loop must never die
                    log.exception("%s: error serving a connection", self.name)
                    if isinstance(key.data, _Peer):
                        self.close(key.data, "error")
            now = time.monotonic()
            if self.paused_until is not None and now >= self.paused_until:
                self._resume_accepting()
            if self.urgent:
                self.urgent = False
                next_sweep = min(next_sweep, now + sweep_every)
            if now >= next_sweep:  # idle connections only: wake when the first may be closed
                next_sweep = max(now + sweep_every, self._sweep(now))
        self._close_all()

    def wake(self) -> None:
        with contextlib.suppress(OSError):
            self.wake_w.send(b"x")

    def warn(self, kind: str, message: str, *args: Any) -> None:
        """Log at WARNING, at most once every few seconds per kind, with how many were held
        back (an attacker must not be able to flood the log)."""
        now = time.monotonic()
        due = self.warned.setdefault(kind, [0.0, 0])
        if now < due[0]:
            due[1] += 1
            return
        held, due[:] = due[1], [now + _WARN_EVERY, 0]
        suffix = f" ({held} more like it in the last {_WARN_EVERY:g}s)" if held else ""
        log.warning("%s: " + message + suffix, self.name, *args)

    @staticmethod
    def _fd_capacity() -> float:
        """Connections this server may hold and still leave FD_RESERVE file descriptors to the
        rest of its process (its files, its own calls out)."""
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        return math.inf if soft == resource.RLIM_INFINITY else max(1, soft - settings.FD_RESERVE)

    def _make_room(self) -> None:
        """Before a new connection is taken: at most MAX_PENDING in their handshake (the oldest
        goes), and file descriptors left to the process (the oldest handshake goes, else the
        least recently used authenticated connection)."""
        while len(self.pending) >= settings.MAX_PENDING:
            self.stats["evicted_pending"] += 1
            self.close(next(iter(self.pending)), "too many connections waiting for their "
                                                 "handshake")
        while self.connections >= self._fd_capacity():
            self.stats["evicted_pending" if self.pending else "evicted_idle"] += 1
            self.close(next(iter(self.pending or self.authed)),
                       "too many connections for `ulimit -n` minus FD_RESERVE")

    def _pause_accepting(self, exc: OSError) -> None:
        """Out of file descriptors: stop watching the listener for a while (no spinning on a
        listener that stays readable) and free the oldest handshake's descriptor."""
        if self.pending:
            self.stats["evicted_pending"] += 1
            self.close(next(iter(self.pending)), "out of file descriptors")
        self.stats["accept_paused"] += 1
        self.warn("accept", "cannot accept connections (%s) with %d open; pausing for %.2fs "
                  "(raise `ulimit -n`, or lower MAX_CONNECTIONS)", exc, self.connections,
                  self.pause)
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(self.listener)
        self.paused_until = time.monotonic() + self.pause
        self.pause = min(_ACCEPT_PAUSE[1], 2 * self.pause)

    def _resume_accepting(self) -> None:
        self.paused_until = None
        with contextlib.suppress(KeyError, ValueError, OSError):
            self.selector.register(self.listener, selectors.EVENT_READ, "accept")

    def _accept(self) -> None:
        for _ in range(256):  # bounded: other peers get their turn
            try:
                sock, address = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _OUT_OF_FDS:
                    self._pause_accepting(exc)
                else:
                    log.debug("%s: accept failed: %s", self.name, exc)
                return
            self.pause = _ACCEPT_PAUSE[0]
            now = time.monotonic()
            sock.setblocking(False)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.tls is not None:
                try:
                    sock = self.tls.wrap_socket(sock, server_side=True,
                                                do_handshake_on_connect=False)
                except (OSError, ssl.SSLError):
                    sock.close()
                    continue
            peer = _Peer(sock, address, now, self.tls is not None)
            self.stats["accepted"] += 1
            self._make_room()
            self.pending[peer] = None
            self.urgent = True
            self.selector.register(sock, selectors.EVENT_READ, peer)

    def _event(self, peer: _Peer, mask: int) -> None:
        if peer.dead:
            return
        if peer.tls_pending:
            self._tls_handshake(peer)
            if peer.tls_pending or peer.dead:
                return
        if mask & selectors.EVENT_WRITE:
            self._flush(peer)
        if mask & selectors.EVENT_READ and not peer.dead:
            self._read(peer)

    def _tls_handshake(self, peer: _Peer) -> None:
        try:
            peer.sock.do_handshake()
        except ssl.SSLWantReadError:
            self._want(peer, write=False)
            return
        except ssl.SSLWantWriteError:
            self._want(peer, write=True)
            return
        except (ssl.SSLError, OSError) as exc:
            self.stats["refused_tls"] += 1
            self.close(peer, f"TLS handshake failed: {exc}")
            return
        peer.tls_pending = False
        self._want(peer, write=bool(peer.outbox))

    def _want(self, peer: _Peer, write: bool) -> None:
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if write else 0)
        with contextlib.suppress(KeyError, ValueError):
            self.selector.modify(peer.sock, events, peer)

    def _read(self, peer: _Peer) -> None:
        try:
            data = peer.sock.recv(65536)
            if isinstance(peer.sock, ssl.SSLSocket):
                while peer.sock.pending():  # bytes TLS decrypted already: the selector
                    data += peer.sock.recv(peer.sock.pending())  # will not wake us for them
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return
        except OSError as exc:
            self._closed_by_peer(peer)
            self.close(peer, f"read failed: {exc}")
            return
        if not data:
            self._closed_by_peer(peer)
            self.close(peer, "closed by the peer")
            return
        now = time.monotonic()
        peer.last = now
        peer.inbox += data
        if peer.authed:
            self.authed.move_to_end(peer)
        while not peer.dead:
            size = self._frame_size(peer)
            if size is None:
                return
            if len(peer.inbox) < size:
                if peer.began is None:
                    peer.began, self.urgent = now, True
                return
            frame = bytes(peer.inbox[:size])
            del peer.inbox[:size]
            self.buffered -= peer.need
            peer.need = 0
            peer.began = now if peer.inbox else None
            self.urgent = self.urgent or bool(peer.inbox)
            self._handle(peer, frame)

    def _frame_size(self, peer: _Peer) -> int | None:
        """The size of the message at the head of the peer's bytes, once its header is in; the
        peer is closed if the header is not Pyro's or announces too much (for its class, or for
        the server's buffer budget). The size is reserved in the budget until it is in."""
        if peer.need:
            return peer.need
        if len(peer.inbox) < _HEADER:
            if peer.inbox and peer.began is None:
                peer.began, self.urgent = time.monotonic(), True
            return None
        try:
            header = _Message.from_header(bytes(peer.inbox[:_HEADER]))
        except Pyro4.errors.ProtocolError as exc:
            self.stats["refused_malformed"] += 1
            self.close(peer, f"not a Pyro message: {exc}")
            return None
        size = _HEADER + header.annotations_size + header.data_size
        limit = settings.MAX_MESSAGE_SIZE if peer.authed else _PREAUTH_LIMIT
        if size > limit or header.data_size < 0 or header.annotations_size < 0:
            self.stats["refused_size"] += 1
            self.close(peer, f"message of {size} bytes announced, the limit is {limit}")
            return None
        budget = _buffer_budget()
        if self.buffered + size > budget:
            self.stats["refused_budget"] += 1
            self.warn("budget", "refused a message of %d bytes from %s: %d bytes are buffered "
                      "already, the budget is %d (MAX_BUFFERED)", size, peer.address,
                      self.buffered, budget)
            self.close(peer, "the server's buffer budget is used up")
            return None
        peer.need = size
        self.buffered += size
        return size

    def _handle(self, peer: _Peer, frame: bytes) -> None:
        try:
            message = _Message.recv(_Frame(self, peer, frame), hmac_key=self.key)
        except Pyro4.errors.SecurityError:
            self.stats["refused_unsigned"] += 1
            if not peer.token:  # tell a party with the wrong secret why; then hang up
                _reply.annotations = {}
                with contextlib.suppress(Exception):
                    self.daemon._handshake(_Frame(self, peer, frame),
                                           denied_reason="message hmac mismatch")
            self.close(peer, "not signed with the run secret", flush=True)
            return
        except Pyro4.errors.PyroError as exc:
            self.stats["refused_malformed"] += 1
            self.close(peer, f"malformed message: {exc}")
            return
        if "HMAC" not in message.annotations:
            self.stats["refused_unsigned"] += 1
            self.close(peer, "unsigned message")
            return
        if not peer.token:
            self._hello(peer, frame, message)
            return
        fresh = message.annotations.get(_FRESH, b"")
        if (len(fresh) != _TOKEN_SIZE or fresh[:2 * _NONCE_SIZE] != peer.token
                or _COUNTER.unpack(fresh[2 * _NONCE_SIZE:])[0] <= peer.count):
            self.stats["refused_replay"] += 1
            self.warn("replay", "refused a replayed or stale message from %s", peer.address)
            self.close(peer, "replayed or stale message")
            return
        peer.count = _COUNTER.unpack(fresh[2 * _NONCE_SIZE:])[0]
        if not peer.authed:
            self._authenticated(peer)
        _reply.annotations = {_FRESH: _answer_token(fresh)}
        try:
            self.daemon.handleRequest(_Frame(self, peer, frame))
        except Pyro4.errors.MessageTooLargeError as exc:  # the answer: say so, keep the peer
            with contextlib.suppress(Exception):
                self.daemon._sendExceptionResponse(_Frame(self, peer, frame), message.seq,
                                                   message.serializer_id, exc, None)
        except Exception as exc:  # Pyro re-raises communication errors: drop the peer
            self.close(peer, f"request failed: {exc}")
        finally:
            _reply.annotations = {}

    def _hello(self, peer: _Peer, frame: bytes, message: Any) -> None:
        """A signed MSG_CONNECT: answer it with a fresh server nonce. It proves nothing (it may
        be a recording), so the peer stays in the handshake class until its proof arrives."""
        client = message.annotations.get(_CLIENT, b"")
        if message.type != Pyro4.message.MSG_CONNECT:
            self.stats["refused_malformed"] += 1
            self.close(peer, "a request before the handshake")
            return
        refusal = None  # a party we cannot talk to: say why, then hang up
        if message.serializer_id != _MARSHAL_ID:
            refusal = (f"message used serializer that is not accepted: {message.serializer_id} "
                       "(ultrarun speaks marshal only)")
        elif len(client) != _NONCE_SIZE:
            refusal = ("no client nonce: connect with ultrarun's own connections, of the same "
                       "version as this server")
        if refusal is not None:
            self.stats["refused_malformed"] += 1
            _reply.annotations = {}
            with contextlib.suppress(Exception):
                self.daemon._handshake(_Frame(self, peer, frame), denied_reason=refusal)
            self.close(peer, refusal, flush=True)
            return
        server = os.urandom(_NONCE_SIZE)
        _reply.annotations = {_CLIENT: bytes(client), _NONCE: server}
        try:
            accepted = self.daemon._handshake(_Frame(self, peer, frame))
        finally:
            _reply.annotations = {}
        if accepted:
            peer.token = bytes(client) + server
        else:
            self.close(peer, "handshake refused", flush=True)

    def _authenticated(self, peer: _Peer) -> None:
        """The peer proved the secret on this connection: it joins the authenticated class
        (MAX_MESSAGE_SIZE messages, the idle deadline, MAX_CONNECTIONS)."""
        peer.authed = True
        self.pending.pop(peer, None)
        self.authed[peer] = None
        self.stats["authenticated"] += 1
        while len(self.authed) > settings.MAX_CONNECTIONS:
            self.stats["evicted_idle"] += 1
            self.close(next(iter(self.authed)), "too many connections (least recently used)")

    # ------------------------------------------------------------------------------ writing
    def write(self, peer: _Peer, data: bytes) -> None:
        if peer.dead:
            return
        if not peer.outbox:
            sent = self._send(peer, data)
            if sent is None or sent == len(data):
                return
            data = data[sent:]
            peer.out_since, self.urgent = time.monotonic(), True
            self._want(peer, write=True)
        peer.outbox += data
        self.buffered += len(data)
        if len(peer.outbox) > 4 * settings.MAX_MESSAGE_SIZE:
            self.close(peer, "does not read its answers")
        elif self.buffered > _buffer_budget():
            self.stats["refused_budget"] += 1
            self.warn("budget", "closed %s: it does not read its answers and the server's "
                      "buffer budget is used up (MAX_BUFFERED)", peer.address)
            self.close(peer, "does not read its answers (buffer budget)")

    def _flush(self, peer: _Peer) -> None:
        while peer.outbox:
            sent = self._send(peer, peer.outbox)
            if not sent:  # the socket is full (0), or the peer was closed (None)
                return
            del peer.outbox[:sent]
            self.buffered -= sent
        peer.out_since = None
        self._want(peer, write=False)

    def _send(self, peer: _Peer, data: bytes | bytearray) -> int | None:
        """Bytes of ``data`` the socket took without blocking; None if the peer was closed."""
        try:
            return peer.sock.send(data)
        except (BlockingIOError, InterruptedError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            return 0
        except OSError as exc:
            self.close(peer, f"write failed: {exc}")
            return None

    # ------------------------------------------------------------------------------ closing
    def _sweep(self, now: float) -> float:
        """Close what overstayed: handshakes and messages after COMMTIMEOUT, answers nobody
        reads, connections idle for IDLE_CLOSE. Returns when the next sweep is due: at once
        while a handshake, message or answer is under way, else when the first idle connection
        may be closed (a thousand idle workers' loops then sleep, not wake twice a second)."""
        deadline = settings.COMMTIMEOUT
        due = now + _IDLE_SWEEP if not self.pending else now
        for peer in list(self.pending):
            if now - peer.opened > deadline:
                self.stats["expired_handshake"] += 1
                self.close(peer, f"no handshake within {deadline}s")
        for peer in list(self.authed):
            if peer.began is not None and now - peer.began > deadline:
                self.stats["expired_message"] += 1
                self.close(peer, f"a message did not complete within {deadline}s")
            elif peer.out_since is not None and now - peer.out_since > deadline:
                self.close(peer, f"an answer was not read within {deadline}s")
            elif now - peer.last > settings.IDLE_CLOSE:
                self.stats["closed_idle"] += 1
                self.close(peer, f"idle for {settings.IDLE_CLOSE}s")
            elif peer.began is not None or peer.out_since is not None:
                due = now
            else:
                due = min(due, peer.last + settings.IDLE_CLOSE)
        return due

    def _closed_by_peer(self, peer: _Peer) -> None:
        """Tell ``on_peer_closed`` (the server's hook) that an authenticated peer hung up."""
        if peer.authed and not peer.dead and self.on_peer_closed is not None:
            try:
                self.on_peer_closed(peer.address)
            except Exception:  # the loop must never die
                log.exception("%s: the on_peer_closed hook failed", self.name)

    def close(self, peer: _Peer, reason: str, flush: bool = False) -> None:
        if peer.dead:
            return
        peer.dead = True
        log.debug("%s: closing the connection from %s: %s", self.name, peer.address, reason)
        self.buffered -= peer.need + len(peer.outbox)
        self.pending.pop(peer, None)
        self.authed.pop(peer, None)
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(peer.sock)
        if flush and peer.outbox:
            with contextlib.suppress(OSError, ssl.SSLError):
                peer.sock.send(peer.outbox)
        with contextlib.suppress(OSError):
            peer.sock.close()

    def _close_all(self) -> None:
        for peer in list(self.pending) + list(self.authed):
            self.close(peer, "server shut down")
        with contextlib.suppress(Exception):
            self.selector.close()
        for sock in (self.wake_r, self.wake_w):
            sock.close()
        with contextlib.suppress(Exception):
            self.daemon.close()

    @property
    def connections(self) -> int:
        return len(self.pending) + len(self.authed)


class Server:
    """A Pyro daemon serving one object from a background thread (see the module docstring).

    ``start()`` binds and starts serving; ``shutdown()`` is idempotent. The object's methods run
    in the server's single thread, so they must return quickly. ``on_peer_closed(address)`` is
    called (in that thread, so it must return quickly too) when an authenticated client hangs
    up; :func:`caller_address` is that address, read inside a served method.
    """

    def __init__(self, obj: Any, secret: str, host: str | None = None, port: int = 0,
                 object_id: str | None = None, daemon_factory: Callable[..., Any] | None = None,
                 on_peer_closed: Callable[[Any], None] | None = None):
        self._on_peer_closed = on_peer_closed
        self._obj = obj
        self._secret = secret
        self._host = host or settings.HOST
        self._port = port
        self._object_id = object_id
        self._factory = daemon_factory or Pyro4.Daemon
        self._loop: _Loop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.uri: str | None = None

    def start(self) -> str:
        with self._lock:
            if self._loop is not None:
                return self.uri  # type: ignore[return-value]
            key = _signing_key(self._secret)
            _apply_limits()
            with _settings_lock:  # our loop does TLS itself: Pyro must not wrap the listener
                saved = (Pyro4.config.SERVERTYPE, Pyro4.config.SSL,
                         Pyro4.config.SERIALIZERS_ACCEPTED)
                Pyro4.config.SERVERTYPE, Pyro4.config.SSL = "multiplex", False
                Pyro4.config.SERIALIZERS_ACCEPTED = {"marshal"}  # whatever PYRO_* says
                try:
                    daemon = self._factory(host=self._host, port=self._port)
                except OSError as exc:
                    raise CommunicationError(
                        f"cannot listen on {self._host}:{self._port}: {exc}") from None
                finally:
                    (Pyro4.config.SERVERTYPE, Pyro4.config.SSL,
                     Pyro4.config.SERIALIZERS_ACCEPTED) = saved
            daemon._pyroHmacKey = key
            if self._obj is not None:
                self.uri = str(daemon.register(self._obj, objectId=self._object_id))
            self._daemon = daemon
            self._loop = _Loop(daemon, key, _tls["server"], f"server {daemon.locationStr}")
            self._loop.on_peer_closed = self._on_peer_closed
            self._thread = threading.Thread(target=self._loop.run, daemon=True,
                                            name=f"pyro-{self._host}")
            self._thread.start()
            return self.uri  # type: ignore[return-value]

    @property
    def location(self) -> tuple[str, int]:
        host, port = self._daemon.locationStr.rsplit(":", 1)
        return host.strip("[]"), int(port)

    def stats(self) -> dict[str, int]:
        """What the server refused and closed so far, and how many connections are open."""
        loop = self._loop
        if loop is None:
            return {}
        return {**loop.stats, "open": loop.connections, "authenticated_open": len(loop.authed)}

    def shutdown(self) -> None:
        with self._lock:
            loop, self._loop = self._loop, None
            thread, self._thread = self._thread, None
        if loop is None:
            return
        loop.stopping = True
        loop.wake()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def __enter__(self) -> "Server":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()


def caller_address() -> Any:
    """Inside a served method: the address of the connection the call came on (the one
    ``Server``'s ``on_peer_closed`` names when it closes)."""
    return getattr(Pyro4.current_context, "client_sock_addr", None)


def start_nameserver(secret: str, host: str | None = None, port: int = 0) -> Server:
    """A Pyro name server (no UDP broadcast responder) served from a background thread."""
    server = Server(None, secret, host=host, port=port,
                    daemon_factory=Pyro4.naming.NameServerDaemon)
    server.start()
    return server


# ---------------------------------------------------------------------------------- connections
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

    def __init__(self, uri: str, secret: str, timeout: float | None = None,
                 what: str | None = None):
        _apply_limits()
        proxy = _Proxy(uri)
        proxy._pyroHmacKey = _signing_key(secret)
        proxy._pyroSerializer = "marshal"
        proxy._pyroTimeout = timeout if timeout is not None else settings.COMMTIMEOUT
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

    def __init__(self, host: str, port: int | None, secret: str, timeout: float | None = None):
        # "localhost" may resolve to ::1 first, where our IPv4 listeners are not.
        self.host = "127.0.0.1" if host == "localhost" else (host or settings.HOST)
        self.port = int(port) if port else DEFAULT_NAMESERVER_PORT
        self._secret = secret
        self._timeout = timeout
        self._conn: Connection | None = None

    @property
    def uri(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"PYRO:{Pyro4.constants.NAMESERVER_NAME}@{host}:{self.port}"

    def _call(self, method: str, *args: Any) -> Any:
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = Connection(self.uri, self._secret, self._timeout,
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


__all__ = ["Server", "Connection", "NameServerClient", "start_nameserver", "remote_call",
           "expose", "oneway", "configure_tls", "encoded_size", "check_run_id",
           "dispatcher_name", "worker_prefix", "worker_name", "parse_worker_name",
           "local_address_towards", "caller_address", "DEFAULT_NAMESERVER_PORT"]
