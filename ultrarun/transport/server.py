"""The servers: our own selector loop over Pyro's daemon, which hands Pyro only complete, signed
and fresh messages, bounds connections, buffers and deadlines, and does the server side of the
handshake and of TLS (docs/architecture.md, "The servers: our loop, Pyro's messages";
docs/security.md). A :class:`Server` is given the :class:`~ultrarun.transport.Party` it serves as.
"""
from __future__ import annotations

import collections
import contextlib
import errno
import logging
import math
import os
import resource
import selectors
import socket
import ssl
import threading
import time
from typing import Any, Callable

import Pyro4.errors
import Pyro4.message
import Pyro4.naming

from ..errors import CommunicationError
from ..settings import settings
from .party import Party
from .wire import (_CLIENT, _COUNTER, _FRESH, _HEADER, _MARSHAL_ID, _NONCE, _NONCE_SIZE,
                   _PREAUTH_LIMIT, _TOKEN_SIZE, _Message, _answer_token, _apply_limits,
                   _buffer_budget, _settings_lock)

log = logging.getLogger(__name__)

_IDLE_SWEEP = 30.0  # seconds between sweeps of a server whose connections are all idle
_WARN_EVERY = 10.0  # seconds between two warnings of one kind from one server
_ACCEPT_PAUSE = (0.05, 1.0)  # seconds accepting pauses when the process is out of descriptors
_OUT_OF_FDS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


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

    def __init__(self, obj: Any, party: Party | str, host: str | None = None, port: int = 0,
                 object_id: str | None = None, daemon_factory: Callable[..., Any] | None = None,
                 on_peer_closed: Callable[[Any], None] | None = None):
        self._on_peer_closed = on_peer_closed
        self._obj = obj
        self.party = Party.of(party)
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
            key = self.party.key
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
            tls = self.party.tls.server if self.party.tls else None
            self._loop = _Loop(daemon, key, tls, f"server {daemon.locationStr}")
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


def start_nameserver(party: Party | str, host: str | None = None, port: int = 0) -> Server:
    """A Pyro name server (no UDP broadcast responder) served from a background thread."""
    server = Server(None, party, host=host, port=port,
                    daemon_factory=Pyro4.naming.NameServerDaemon)
    server.start()
    return server
