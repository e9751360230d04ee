"""The server loop and connections of ultrarun.transport: what a party without the secret (or
with it but hostile) can and cannot do to a daemon. Real sockets on 127.0.0.1, port 0."""
from __future__ import annotations

import contextlib
import socket
import struct

import pytest
from conftest import Recorder, wait_until
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ultrarun import transport
from ultrarun.config import config
from ultrarun.errors import AuthenticationError, CommunicationError
from ultrarun.security import make_certificates

SECRET = "s3cret"


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


def test_oversized_messages_are_refused_before_anything_is_allocated(served):
    _, server, uri = served
    host, port = server.location
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(_header(1, 100 * 1024 * 1024))  # before the handshake: 64 KiB at most
        assert sock.recv(10) == b""
    assert server.stats()["refused_size"] == 1
    with transport.Connection(uri, SECRET, 5) as conn:
        with pytest.raises(CommunicationError, match="MAX_MESSAGE_SIZE"):
            conn.call("big", config.MAX_MESSAGE_SIZE + 10)  # the answer would be too big
        assert conn.call("add", 0) == 0  # a new connection works


def test_silent_half_open_and_idle_connections_are_closed_on_their_deadlines(served):
    _, server, uri = served
    host, port = server.location
    saved = config.COMMTIMEOUT, config.IDLE_CLOSE
    config.COMMTIMEOUT, config.IDLE_CLOSE = 0.3, 0.6
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
        config.COMMTIMEOUT, config.IDLE_CLOSE = saved
        for sock in socks:
            sock.close()


def test_pending_and_open_connections_are_bounded(served):
    _, server, uri = served
    host, port = server.location
    saved = config.MAX_PENDING, config.MAX_CONNECTIONS
    config.MAX_PENDING, config.MAX_CONNECTIONS = 10, 3
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
        config.MAX_PENDING, config.MAX_CONNECTIONS = saved
        for thing in socks + conns:
            thing.close()


_FRAMES = st.one_of(
    st.binary(max_size=200),
    st.builds(lambda t, size, rest: _header(t, size) + rest, st.integers(0, 7),
              st.integers(-5, 2 ** 31 - 1), st.binary(max_size=100)),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[
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


def test_two_way_tls_refuses_a_party_without_a_certificate(tmp_path):
    """With TLS on (a property of the process), the daemon completes no handshake with a
    party that shows no certificate of the run's CA; parties that do work as usual."""
    import subprocess
    import sys

    certs = make_certificates(tmp_path / "certs")
    code = f"""
import socket, ssl, sys
from ultrarun import transport
transport.configure_tls({str(certs)!r})

@transport.expose
class Echo:
    def hi(self):
        return "hi"

with transport.Server(Echo(), "k") as server:
    with transport.Connection(server.uri, "k", 5) as conn:
        assert conn.call("hi") == "hi"
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
    assert "TLS-STATS 2" in out.stdout
