"""The server loop and connections of ultrarun.transport: what a party without the secret (or
with it but hostile) can and cannot do to a daemon. Real sockets on 127.0.0.1, port 0."""
from __future__ import annotations

import contextlib
import os
import socket
import struct
import subprocess
import sys
import threading

import Pyro4
import Pyro4.message

import pytest
from conftest import Collector, Recorder, wait_until
from hypothesis import HealthCheck, given, settings as examples
from hypothesis import strategies as st

from ultrarun import transport
from ultrarun.settings import settings
from ultrarun.errors import AuthenticationError, CommunicationError, ConfigurationError
from ultrarun.dispatcher import Dispatcher
from ultrarun.job import JobStatus
from ultrarun.nameserver import NameServer
from ultrarun.security import make_certificates
from ultrarun.worker import Worker

SECRET = "s3cret"
_HEADER_SIZE = Pyro4.message.Message.header_size


@transport.expose
class Counter:
    def __init__(self) -> None:
        self.n = 0

    def add(self, k: int) -> int:
        self.n += k
        return self.n

    @transport.oneway
    def poke(self, k: int) -> None:
        self.n += k

    def big(self, size: int) -> str:
        return "x" * size


@pytest.fixture
def served():
    counter = Counter()
    server = transport.Server(counter, SECRET)
    uri = server.start()
    try:
        yield counter, server, uri
    finally:
        server.shutdown()


def _header(msg_type: int, size: int, annotations: int = 0) -> bytes:
    return struct.pack("!4sHHHHiHHHH", b"PYRO", 48, msg_type, 0, 1, size, 1, annotations, 0,
                       (msg_type + 48 + size + annotations + 1 + 1 + 0x34E9) & 0xFFFF)


def test_calls_oneways_and_remote_errors(served):
    counter, _, uri = served
    with transport.Connection(uri, SECRET, 5) as conn:
        assert conn.call("add", 2) == 2
        conn.send("poke", 3)
        assert conn.call("add", 0) == 5
        with pytest.raises(AttributeError):
            conn.call("no_such_method")


def test_importing_ultrarun_leaves_pyro4s_settings_as_they_were():
    """Another Pyro4 user in the same process keeps its serializer, Nagle and oneway threads:
    importing ultrarun changes none of Pyro4's global settings (docs/architecture.md)."""
    code = ("import Pyro4; before = Pyro4.config.asDict(); import ultrarun, ultrarun.transport; "
            "after = Pyro4.config.asDict(); "
            "print(sorted(k for k in before if before[k] != after[k]))")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ULTRARUN_TLS", "PYRO_"))}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_connections_keep_their_own_settings_whatever_pyro4s_globals_say(served, monkeypatch):
    """Marshal and no Nagle delay are set per connection: a process whose Pyro4 default is
    serpent with Nagle still talks to ultrarun servers (which accept marshal only)."""
    monkeypatch.setattr(Pyro4.config, "SERIALIZER", "serpent")
    monkeypatch.setattr(Pyro4.config, "SOCK_NODELAY", False)
    counter, _, uri = served
    with transport.Connection(uri, SECRET, 5) as conn:
        assert conn.call("add", 4) == 4
        sock = conn._proxy._pyroConnection.sock
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_a_server_refuses_to_expose_unmarked_methods(monkeypatch):
    monkeypatch.setattr(Pyro4.config, "REQUIRE_EXPOSE", False)
    with pytest.raises(ConfigurationError, match="REQUIRE_EXPOSE"):
        transport.Server(Counter(), SECRET).start()


def test_a_wrong_secret_is_refused_with_a_clear_error(served):
    _, server, uri = served
    with transport.Connection(uri, "not-it", 5) as conn:
        with pytest.raises(AuthenticationError, match="secrets differ"):
            conn.call("add", 1)
    assert server.stats()["refused_unsigned"] == 1


def test_a_recorded_request_sent_again_is_refused_on_any_connection(served):
    counter, server, uri = served
    host, port = server.location
    relay = Recorder((host, port))
    relayed = uri.rsplit("@", 1)[0] + f"@127.0.0.1:{relay.address[1]}"
    with transport.Connection(relayed, SECRET, 5) as conn:
        assert conn.call("add", 1) == 1
    wait_until(lambda: len(relay.sent) > 0, message="the recorded bytes")
    recorded = bytes(relay.sent)
    with socket.create_connection((host, port), timeout=5) as sock:  # a new connection
        sock.sendall(recorded)
        with contextlib.suppress(OSError):
            while sock.recv(65536):
                pass
    with contextlib.suppress(OSError):
        relay.upstream.sendall(recorded)  # the same connection, once more
    wait_until(lambda: server.stats().get("refused_replay", 0) >= 1, message="the refusal")
    assert counter.n == 1, "the call ran once"


def test_an_answer_that_does_not_echo_its_request_is_refused(served):
    """The client checks the echo too: an on-path party cannot feed it an old answer."""
    _, _, uri = served
    conn = transport.Connection(uri, SECRET, 5)
    try:
        conn.connect()
        conn._proxy.__dict__["_ur_count"] += 10  # as if an older answer came back
        state = conn._proxy.__dict__
        original = type(conn._proxy)._pyroAnnotations

        def stale(self):
            annotations = original(self)
            state["_ur_sent"] = b"\0" * 24  # what the client will expect back: not the echo
            return annotations

        type(conn._proxy)._pyroAnnotations = stale
        try:
            with pytest.raises(AuthenticationError, match="echo"):
                conn.call("add", 1)
        finally:
            type(conn._proxy)._pyroAnnotations = original
    finally:
        conn.close()


class _Relay:
    """A TCP relay on 127.0.0.1 that records both directions of one connection (an on-path
    party without the secret)."""

    def __init__(self, target: tuple[str, int]):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.target = target
        self.sent, self.answered = bytearray(), bytearray()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        client, _ = self.listener.accept()
        upstream = socket.create_connection(self.target)

        def pump(src: socket.socket, dst: socket.socket, record: bytearray) -> None:
            with contextlib.suppress(OSError):
                while data := src.recv(65536):
                    record += data
                    dst.sendall(data)
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

        threading.Thread(target=pump, args=(client, upstream, self.sent), daemon=True).start()
        pump(upstream, client, self.answered)

    def uri(self, uri: str) -> str:
        return uri.rsplit("@", 1)[0] + f"@127.0.0.1:{self.port}"


def _frames(data: bytes) -> list[bytes]:
    """Split a recorded byte stream into Pyro messages."""
    frames = []
    while len(data) >= _HEADER_SIZE:
        header = Pyro4.message.Message.from_header(data[:_HEADER_SIZE])
        size = _HEADER_SIZE + header.annotations_size + header.data_size
        frames.append(data[:size])
        data = data[size:]
    return frames


def _record_session(uri: str, server: transport.Server, add: int = 0) -> _Relay:
    """One legitimate connection through a recording relay: the handshake and a call of
    ``add(add)`` (the relay records before it forwards, so all is recorded when they return)."""
    relay = _Relay(server.location)
    with transport.Connection(relay.uri(uri), SECRET, 5) as conn:
        conn.connect()
        conn.call("add", add)
    return relay


def _drain(sock: socket.socket) -> bytes:
    """Everything the server sends until it hangs up (or 5 s of silence)."""
    got = bytearray()
    with contextlib.suppress(OSError):
        while data := sock.recv(65536):
            got += data
    return bytes(got)


def test_a_recorded_handshake_authenticates_nothing(served):
    """The handshake of one connection, recorded and sent again on new ones: the server
    answers the hello with a fresh nonce and refuses the recorded proof; a replayed hello alone
    stays in the handshake class (no more than 64 KiB may follow it). None is authenticated."""
    counter, server, uri = served
    relay = _record_session(uri, server)
    hello, proof = _frames(bytes(relay.sent))[:2]
    wait_until(lambda: server.stats()["open"] == 0, message="the recorded connection to close")
    attacks = {"the hello and its proof": hello + proof,
               "the hello and a large message": hello + _header(4, 1024 * 1024) + b"x" * 1000}
    for name, replay in attacks.items():
        for _ in range(20):
            with socket.create_connection(server.location, timeout=5) as sock:
                sock.sendall(replay)
                assert len(_frames(_drain(sock))) == 1, f"{name}: only the hello is answered"
    held = [socket.create_connection(server.location, timeout=5) for _ in range(20)]
    try:
        for sock in held:
            sock.sendall(hello)
            assert _frames(sock.recv(65536)), "a fresh server nonce"
        stats = server.stats()
        assert stats["open"] == 20 and stats["authenticated_open"] == 0
    finally:
        for sock in held:
            sock.close()
    assert stats["authenticated"] == 1, "no replayed handshake was authenticated"
    assert stats["refused_replay"] == 20 and stats["refused_size"] == 20
    with transport.Connection(uri, SECRET, 5) as conn:
        assert conn.call("add", 1) == counter.n == 1


def test_a_replayed_hello_without_its_proof_expires(served):
    _, server, uri = served
    relay = _record_session(uri, server)
    hello = _frames(bytes(relay.sent))[0]
    saved = settings.COMMTIMEOUT
    settings.COMMTIMEOUT = 0.3
    try:
        with socket.create_connection(server.location, timeout=5) as sock:
            sock.sendall(hello)
            assert _frames(_drain(sock)), "answered, then closed at the handshake deadline"
        assert server.stats().get("expired_handshake", 0) == 1
        assert server.stats()["authenticated"] == 1
    finally:
        settings.COMMTIMEOUT = saved


def test_a_client_refuses_a_recorded_server(served):
    """A fake server that plays back what a real one answered on another connection (its
    handshake answer, the proof's echo, a call's answer) is refused at connect: the recorded
    answer does not carry this connection's client nonce, so no recorded answer is taken."""
    _, server, uri = served
    relay = _record_session(uri, server)
    recorded = bytes(relay.answered)
    fake = socket.create_server(("127.0.0.1", 0))

    def play() -> None:
        with contextlib.suppress(OSError):
            sock, _ = fake.accept()
            with sock:
                sock.recv(65536)
                sock.sendall(recorded)
                _drain(sock)

    threading.Thread(target=play, daemon=True).start()
    fake_uri = uri.rsplit("@", 1)[0] + f"@127.0.0.1:{fake.getsockname()[1]}"
    try:
        with transport.Connection(fake_uri, SECRET, 5) as conn:
            with pytest.raises(AuthenticationError, match="replayed"):
                conn.call("add", 0)
    finally:
        fake.close()


def _read_frame(sock: socket.socket) -> bytes:
    data = b""
    while len(data) < _HEADER_SIZE:
        data += sock.recv(_HEADER_SIZE - len(data)) or _closed()
    header = Pyro4.message.Message.from_header(data)
    rest = header.annotations_size + header.data_size
    while len(data) < _HEADER_SIZE + rest:
        data += sock.recv(_HEADER_SIZE + rest - len(data)) or _closed()
    return data


def _closed() -> bytes:
    raise OSError("closed")


def _as_type(frame: bytes, msg_type: int) -> bytes:
    """``frame`` with another message type (and the header checksum to match): Pyro's HMAC
    covers the data and annotation values, not the header."""
    fields = list(struct.unpack("!4sHHHHiHHHH", frame[:_HEADER_SIZE]))
    fields[2] = msg_type
    _, ver, t, flags, seq, size, ser, ann, _, _ = fields
    fields[-1] = (t + ver + size + ann + flags + ser + seq + 0x34E9) & 0xFFFF
    return struct.pack("!4sHHHHiHHHH", *fields) + frame[_HEADER_SIZE:]


def test_a_client_refuses_its_own_request_sent_back_as_an_answer(served):
    """Reflection: an on-path party relays the handshake, then sends the client's own signed
    request back as the answer. Answers carry the mirrored token, so the client refuses it."""
    counter, server, uri = served
    listener = socket.create_server(("127.0.0.1", 0))

    def reflect() -> None:
        with contextlib.suppress(OSError):
            client, _ = listener.accept()
            with client, socket.create_connection(server.location) as upstream:
                for _ in range(2):  # the hello and the proof: relayed both ways
                    upstream.sendall(_read_frame(client))
                    client.sendall(_read_frame(upstream))
                request = _read_frame(client)
                client.sendall(_as_type(request, Pyro4.message.MSG_RESULT))
                _drain(client)

    threading.Thread(target=reflect, daemon=True).start()
    try:
        with transport.Connection(uri.rsplit("@", 1)[0]
                                  + f"@127.0.0.1:{listener.getsockname()[1]}", SECRET, 5) as conn:
            with pytest.raises(AuthenticationError, match="echo"):
                conn.call("add", 5)
        assert counter.n == 0, "the server never saw the call"
    finally:
        listener.close()


def test_the_buffer_budget_bounds_authenticated_peers(served):
    """Authenticated peers that start large messages and never finish them: once the server's
    MAX_BUFFERED is reserved, the next is refused at its header, and a party that sends a
    normal call is served."""
    counter, server, uri = served
    saved = settings.MAX_MESSAGE_SIZE, settings.MAX_BUFFERED
    settings.MAX_MESSAGE_SIZE, settings.MAX_BUFFERED = 256 * 1024, 512 * 1024
    conns = []
    try:
        for _ in range(3):  # 3 x 200 KiB announced: the third does not fit in 512 KiB
            conn = transport.Connection(uri, SECRET, 5)
            conn.connect()
            conn._proxy._pyroConnection.sock.sendall(_header(4, 200 * 1024) + b"x" * 1000)
            conns.append(conn)
        wait_until(lambda: server.stats().get("refused_budget", 0) == 1,
                   message="the third message to be refused")
        with transport.Connection(uri, SECRET, 5) as conn:
            assert conn.call("add", 1) == 1
        assert server.stats()["authenticated"] == 4
    finally:
        settings.MAX_MESSAGE_SIZE, settings.MAX_BUFFERED = saved
        for conn in conns:
            conn.close()


_OUT_OF_FDS = r"""
import logging, os, resource, socket, sys, threading
from ultrarun import transport
from ultrarun.settings import settings

logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format="%(levelname)s %(message)s")
calls = [0]
accept = transport.server._Loop._accept
def counted(self):
    calls[0] += 1
    return accept(self)
transport.server._Loop._accept = counted
resource.setrlimit(resource.RLIMIT_NOFILE, (256, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
settings.FD_RESERVE = 16

@transport.expose
class Echo:
    def hi(self):
        return "hi"

with transport.Server(Echo(), "k") as server:
    hog = []
    try:
        while True:  # the rest of the process takes every descriptor
            hog.append(os.open(os.devnull, os.O_RDONLY))
    except OSError:
        pass
    os.close(hog.pop())  # one for the client socket below
    client = socket.create_connection(server.location, timeout=5)
    before = calls[0]
    threading.Event().wait(1.5)  # the fault lasts this long
    print("ACCEPT-CALLS", calls[0] - before, flush=True)
    for fd in hog:
        os.close(fd)
    with transport.Connection(server.uri, "k", 5) as conn:
        print("CALL", conn.call("hi"), flush=True)
    print("PAUSED", server.stats().get("accept_paused", 0), flush=True)
    client.close()
"""


def test_out_of_file_descriptors_the_accept_loop_pauses_and_warns_once():
    """A process out of file descriptors: the loop stops watching the listener for a while
    instead of spinning on EMFILE, warns once (rate-limited), and serves again when
    descriptors are free."""
    out = subprocess.run([sys.executable, "-c", _OUT_OF_FDS], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    calls = int(out.stdout.split("ACCEPT-CALLS")[1].split()[0])
    assert calls <= 15, f"the accept loop ran {calls} times in 1.5 s out of descriptors"
    assert "CALL hi" in out.stdout
    assert out.stdout.count("cannot accept connections") == 1, out.stdout


def test_oversized_messages_are_refused_before_anything_is_allocated(served):
    _, server, uri = served
    host, port = server.location
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(_header(1, 100 * 1024 * 1024))  # before the handshake: 64 KiB at most
        assert sock.recv(10) == b""
    assert server.stats()["refused_size"] == 1
    with transport.Connection(uri, SECRET, 5) as conn:
        with pytest.raises(CommunicationError, match="MAX_MESSAGE_SIZE"):
            conn.call("big", settings.MAX_MESSAGE_SIZE + 10)  # the answer would be too big
        assert conn.call("add", 0) == 0  # a new connection works


def test_silent_half_open_and_idle_connections_are_closed_on_their_deadlines(served):
    _, server, uri = served
    host, port = server.location
    saved = settings.COMMTIMEOUT, settings.IDLE_CLOSE
    settings.COMMTIMEOUT, settings.IDLE_CLOSE = 0.3, 0.6
    socks = []
    try:
        socks = [socket.create_connection((host, port), timeout=5) for _ in range(20)]
        socks[0].sendall(b"PYRO\x00")
        with transport.Connection(uri, SECRET, 5) as conn:
            assert conn.call("add", 1) == 1
            wait_until(lambda: server.stats().get("expired_handshake", 0) == 20,
                       message="handshakes past their deadline closed")
            wait_until(lambda: server.stats().get("closed_idle", 0) == 1,
                       message="the idle authenticated connection closed")
            assert conn.call("add", 1) == 2, "a closed idle connection is opened again"
    finally:
        settings.COMMTIMEOUT, settings.IDLE_CLOSE = saved
        for sock in socks:
            sock.close()


def test_pending_and_open_connections_are_bounded(served):
    _, server, uri = served
    host, port = server.location
    saved = settings.MAX_PENDING, settings.MAX_CONNECTIONS
    settings.MAX_PENDING, settings.MAX_CONNECTIONS = 10, 3
    socks, conns = [], []
    try:
        socks = [socket.create_connection((host, port), timeout=5) for _ in range(50)]
        wait_until(lambda: server.stats().get("evicted_pending", 0) >= 40, message="evictions")
        conns = [transport.Connection(uri, SECRET, 5) for _ in range(5)]
        for conn in conns:
            conn.call("add", 1)
        assert server.stats()["authenticated_open"] == 3
        assert conns[0].call("add", 0) == 5, "an evicted connection comes back"
    finally:
        settings.MAX_PENDING, settings.MAX_CONNECTIONS = saved
        for thing in socks + conns:
            thing.close()


def test_connections_leave_fd_reserve_descriptors_to_the_process(served):
    """A server never holds so many connections that fewer than FD_RESERVE of the process's
    descriptors are left; the least recently used goes and comes back when it calls again."""
    import resource

    counter, server, uri = served
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    saved = settings.FD_RESERVE
    settings.FD_RESERVE = soft - 4  # room for 4 connections
    conns = [transport.Connection(uri, SECRET, 5) for _ in range(10)]
    try:
        for conn in conns:
            conn.call("add", 1)
            assert server.stats()["open"] <= 4
        assert server.stats()["evicted_idle"] >= 6
        assert conns[0].call("add", 0) == counter.n == 10, "an evicted connection comes back"
    finally:
        settings.FD_RESERVE = saved
        for conn in conns:
            conn.close()


_FRAMES = st.one_of(
    st.binary(max_size=200),
    st.builds(lambda t, size, rest: _header(t, size) + rest, st.integers(0, 7),
              st.integers(-5, 2 ** 31 - 1), st.binary(max_size=100)),
)


@examples(max_examples=60, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(frames=st.lists(_FRAMES, min_size=1, max_size=4))
def test_random_frames_never_stop_a_daemon(served, frames):
    """Whatever arrives on the wire (junk, headers with any type and size, truncated
    messages), a party with the secret is answered at once afterwards."""
    counter, server, uri = served
    host, port = server.location
    with socket.create_connection((host, port), timeout=5) as sock:
        for frame in frames:
            with contextlib.suppress(OSError):
                sock.sendall(frame)
        with transport.Connection(uri, SECRET, 5) as conn:
            assert conn.call("add", 0) == counter.n


_recorded: dict[str, list[bytes]] = {}
_KEYS = st.sampled_from(["CNCE", "NONC", "UNCE", "CORR", "HMAC", "ABCD", "ZZZZ"])
_TYPES = st.sampled_from([Pyro4.message.MSG_CONNECT, Pyro4.message.MSG_CONNECTOK,
                          Pyro4.message.MSG_INVOKE, Pyro4.message.MSG_RESULT,
                          Pyro4.message.MSG_PING, 0, 99])


def _recording(uri: str, server: transport.Server) -> list[bytes]:
    """The frames of one legitimate session (hello, proof, a call of add(1)), both
    directions."""
    if uri not in _recorded:
        relay = _record_session(uri, server, add=1)
        _recorded[uri] = _frames(bytes(relay.sent)) + _frames(bytes(relay.answered))
    return _recorded[uri]


def _resplit(frame: bytes, msg_type: int, keys: list[str], cuts: list[int]) -> bytes:
    """``frame`` with its HMAC kept valid but its signed bytes cut differently into data and
    annotation values (Pyro's HMAC is over their concatenation) and another type."""
    header = Pyro4.message.Message.from_header(frame[:_HEADER_SIZE])
    chunks, annotations = frame[_HEADER_SIZE:_HEADER_SIZE + header.annotations_size], {}
    while chunks:
        key, length = struct.unpack("!4sH", chunks[:6])
        annotations[key.decode()], chunks = chunks[6:6 + length], chunks[6 + length:]
    data = frame[_HEADER_SIZE + header.annotations_size:]
    signed = data + b"".join(v for k, v in sorted(annotations.items()) if k != "HMAC")
    bounds = sorted({min(c, len(signed)) for c in cuts})[:len(keys)]
    names = sorted(set(keys) - {"HMAC"})[:len(bounds)]
    bounds = bounds[:len(names)]
    pieces = [signed[a:b] for a, b in zip(bounds, bounds[1:] + [len(signed)])]
    return Pyro4.message.Message(msg_type, signed[:bounds[0]] if bounds else signed,
                                 header.serializer_id, 0, header.seq,
                                 {**dict(zip(names, pieces)), "HMAC": annotations["HMAC"]}
                                 ).to_bytes()


@st.composite
def _attacks(draw, frames: list[bytes]) -> bytes:
    """What a party without the secret can send, built from one recorded session."""
    pick = st.integers(0, len(frames) - 1)
    kind = draw(st.sampled_from(["replay", "flip", "truncate", "resplit", "forge"]))
    if kind == "replay":  # recorded frames, either direction, any order, repeated
        return b"".join(frames[i] for i in draw(st.lists(pick, min_size=1, max_size=5)))
    if kind == "flip":
        frame = bytearray(frames[draw(pick)])
        position = draw(st.integers(0, len(frame) - 1))
        frame[position] ^= draw(st.integers(1, 255))
        return frames[0] + bytes(frame)
    if kind == "truncate":
        frame = frames[draw(pick)]
        return frames[0] + frame[:draw(st.integers(0, len(frame) - 1))]
    if kind == "resplit":
        return b"".join(_resplit(frames[draw(pick)], draw(_TYPES),
                                 draw(st.lists(_KEYS, min_size=0, max_size=4, unique=True)),
                                 draw(st.lists(st.integers(0, 400), max_size=4)))
                        for _ in range(draw(st.integers(1, 3))))
    values = st.one_of(st.binary(max_size=48), st.sampled_from(
        [m[-20:] for m in frames] + [m[_HEADER_SIZE:_HEADER_SIZE + 40] for m in frames]))
    return Pyro4.message.Message(draw(_TYPES), draw(st.binary(max_size=64)), 3, 0,
                                 draw(st.integers(0, 0xFFFF)),
                                 draw(st.dictionaries(_KEYS, values, max_size=4)),
                                 hmac_key=draw(st.sampled_from([None, b"wrong"]))).to_bytes()


@examples(max_examples=80, deadline=None, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_and_replayed_handshakes_never_authenticate(served, data):
    """Recorded frames of a legitimate session replayed in any order and either direction,
    with a byte flipped, truncated, their signed bytes cut differently under the same HMAC,
    or forged with any type and annotations, on a new connection or after a legitimate
    handshake on the same one: the server never authenticates the sender, never runs the
    recorded call again, never stops, and serves a party with the secret right afterwards."""
    counter, server, uri = served
    frames = _recording(uri, server)
    attack = data.draw(_attacks(frames))
    hijack = data.draw(st.booleans())  # on a connection a party with the secret opened
    before, n = server.stats()["authenticated"], counter.n
    conn = transport.Connection(uri, SECRET, 5)
    try:
        if hijack:
            conn.connect()
            sock = conn._proxy._pyroConnection.sock
        else:
            sock = socket.create_connection(server.location, timeout=5)
        with contextlib.suppress(OSError):
            sock.sendall(attack)
            sock.shutdown(socket.SHUT_WR)
        _drain(sock)
        sock.close()
    finally:
        conn.close()
    assert server.stats()["authenticated"] == before + hijack, "authenticated without the secret"
    assert counter.n == n, "a recorded call ran again"
    assert server._thread.is_alive()
    with transport.Connection(uri, SECRET, 5) as conn:
        assert conn.call("add", 0) == counter.n


def test_two_way_tls_refuses_a_party_without_a_certificate(tmp_path):
    """With TLS on (a property of the process), the daemon completes no handshake with a
    party that shows no certificate of the run's CA; parties that do work as usual."""
    import subprocess
    import sys

    certs = make_certificates(tmp_path / "certs")
    code = f"""
import socket, ssl, sys
from ultrarun import transport
from ultrarun.errors import ConfigurationError
early = transport.Party("k")  # made before the process configured TLS
transport.configure_tls({str(certs)!r})

@transport.expose
class Echo:
    def hi(self):
        return "hi"

try:
    transport.Server(Echo(), early).start()
except ConfigurationError as exc:
    print("EARLY-PARTY", exc)

with transport.Server(Echo(), "k") as server:
    with transport.Connection(server.uri, "k", 5) as conn:
        assert conn.call("hi") == "hi"
        assert server.party.tls is conn.party.tls is transport.configure_tls(None)
        print("PARTY-TLS", server.party.tls.directory)
    host, port = server.location
    bare = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    bare.check_hostname, bare.verify_mode = False, ssl.CERT_NONE
    try:
        with bare.wrap_socket(socket.create_connection((host, port), 5),
                              server_hostname=host) as sock:
            sock.sendall(b"PYRO")
            sock.recv(10)
        print("NO-CERT-ACCEPTED")
    except (ssl.SSLError, OSError):
        print("NO-CERT-REFUSED")
    with socket.create_connection((host, port), 5) as plain:
        plain.sendall(b"PYRO" + bytes(20))
        try:
            print("PLAIN-ANSWERED" if plain.recv(10) else "PLAIN-CLOSED")
        except OSError:
            print("PLAIN-CLOSED")
    print("TLS-STATS", server.stats().get("refused_tls", 0))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert "NO-CERT-REFUSED" in out.stdout and "PLAIN-CLOSED" in out.stdout
    assert f"PARTY-TLS {certs.resolve()}" in out.stdout
    assert "EARLY-PARTY this party's TLS (none) is not the process's" in out.stdout, out.stdout
    assert "TLS-STATS 2" in out.stdout


def test_each_role_hands_its_one_party_to_every_server_and_connection(tmp_path, monkeypatch):
    """A name server, a dispatcher and a worker each make one Party (secret, TLS, timeout) and
    every server and connection each of them opens carries that very object, so a field added
    to Party reaches all of them with no change to the roles."""
    made: list = []
    for cls in (transport.Server, transport.Connection):
        def recording(self, *args, _init=cls.__init__, **kwargs):
            _init(self, *args, **kwargs)
            made.append(self)
        monkeypatch.setattr(cls, "__init__", recording)
    results = Collector()
    with NameServer("party", working_directory=tmp_path) as ns:
        d = Dispatcher(results, run_id="party", nameserver=ns.host, nameserver_port=ns.port,
                       ping_interval=0.25, timeout=3)
        worker = Worker("party", nameserver=ns.host, nameserver_port=ns.port, secret=ns.secret)
        worker.initialize(lambda config, budget: config["x"] * budget)
        try:
            d.start()
            worker.run(background=True)
            wait_until(lambda: d.number_of_workers() == 1, message="the worker to join")
            d.submit_job("one", config={"x": 2.0}, budget=3.0)
            (job,) = results.wait_for(1)
            worker_party = worker._rt.party
            with ns.client() as client:  # the name server's own connection
                client.list("ultrarun.")
        finally:
            d.shutdown()
            worker.shutdown()
    assert job.status is JobStatus.SUCCESS and job.result["loss"] == 6.0
    roles = {id(ns.party): "name server", id(d._party): "dispatcher", id(worker_party): "worker"}
    assert len(roles) == 3
    carried = {(roles.get(id(obj.party), repr(obj.party)), type(obj).__name__) for obj in made}
    assert carried == {(role, kind) for role in ("name server", "dispatcher", "worker")
                       for kind in ("Server", "Connection")}
    assert d._party.secret == worker_party.secret == ns.secret
    assert (d._party.timeout, worker_party.timeout) == (3.0, settings.COMMTIMEOUT)
    assert ns.secret not in repr(d._party), "a party's repr never shows the secret"


def test_a_bare_secret_is_a_party_with_the_process_defaults():
    party = transport.Party.of(SECRET)
    assert party == transport.Party(SECRET) and transport.Party.of(party) is party
    assert (party.tls, party.timeout, party.key) == (transport.configure_tls(None),
                                                     settings.COMMTIMEOUT, SECRET.encode())
    with pytest.raises(ConfigurationError, match="secret is required"):
        transport.Party("").key


@given(st.one_of(st.floats(), st.integers(), st.booleans(), st.none(), st.text(max_size=5)))
@examples(max_examples=300, deadline=None)
def test_a_party_takes_a_positive_finite_timeout_and_refuses_anything_else(timeout):
    good = (type(timeout) in (int, float) and timeout > 0 and timeout != float("inf"))
    if good:
        assert transport.Party(SECRET, timeout=timeout).timeout == timeout
    else:
        with pytest.raises(ConfigurationError, match="timeout must be a positive"):
            transport.Party(SECRET, timeout=timeout)
