"""Secrets, refused strangers, signed marshal (or serpent) only, loopback by default."""
from __future__ import annotations

import contextlib
import os
import selectors
import socket
import stat
import struct
import subprocess
import sys
import time

import Pyro4
import Pyro4.errors
import pytest

from conftest import Collector
from ultrarun import transport
from ultrarun.dispatcher import Dispatcher
from ultrarun.errors import AuthenticationError, ConfigurationError
from ultrarun.nameserver import NameServer
from ultrarun.security import user_secret
from ultrarun.transport import NameServerClient
from ultrarun.worker import Worker


class Echo(Worker):
    def compute(self, config, budget, **kwargs):
        return {"loss": budget, "info": {}}


def test_wrong_secret_is_refused_by_the_nameserver(nameserver):
    client = NameServerClient(nameserver.host, nameserver.port, "not-the-secret")
    with pytest.raises(AuthenticationError, match="secrets differ"):
        client.list("ultrarun.")
    client.close()


def test_worker_with_wrong_secret_cannot_join(nameserver):
    worker = Echo(nameserver.run_id, nameserver=nameserver.host,
                  nameserver_port=nameserver.port, secret="wrong")
    with pytest.raises(AuthenticationError):
        worker.run(background=True)
    client = nameserver.client()
    assert client.list(transport.worker_prefix(nameserver.run_id)) == {}
    client.close()


@pytest.mark.parametrize("key", ["wrong-secret", None], ids=["wrong secret", "unsigned"])
def test_stranger_cannot_call_the_dispatcher(nameserver, key):
    """Refused before the message is parsed: Pyro checks the HMAC first, so marshal only ever
    reads what a holder of the run secret wrote."""
    results = Collector()
    with Dispatcher(results, run_id=nameserver.run_id, nameserver=nameserver.host,
                    nameserver_port=nameserver.port) as d:
        stranger = Pyro4.Proxy(d.uri)
        stranger._pyroHmacKey = key
        stranger._pyroSerializer = "marshal"
        stranger._pyroTimeout = 2
        with pytest.raises(Pyro4.errors.PyroError, match="hmac"):
            stranger.sync(f"ultrarun.{d.run_id}.worker.h.1.0", "PYRO:obj@127.0.0.1:9",
                          {"acked": 0, "held": []}, [])
        stranger._pyroRelease()
        assert d.number_of_workers() == 0, "no method may run for a stranger"


def test_nothing_listens_or_calls_without_a_secret():
    with pytest.raises(ConfigurationError, match="secret is required"):
        transport.Connection("PYRO:obj@127.0.0.1:9", "")
    server = transport.Server(Echo, "")
    with pytest.raises(ConfigurationError, match="secret is required"):
        server.start()
    server.shutdown()


def test_worker_process_with_wrong_secret_exits_with_a_clear_error(cluster):
    proc = subprocess.run(
        [sys.executable, "-m", "ultrarun", "worker", "tests/workers_for_tests.py:TestWorker",
         "--run-id", cluster.run_id, "--nameserver", f"{cluster.host}:{cluster.port}",
         "--secret", "wrong"], capture_output=True, text=True, timeout=60,
        cwd=os.path.dirname(os.path.dirname(__file__)))
    assert proc.returncode == 2
    assert "secrets differ" in proc.stderr


def test_plain_pyro_proxies_are_refused_even_with_the_secret(nameserver):
    """Pyro's own tools sign messages but cannot prove them fresh (no nonce and counter):
    their requests could be replays, so they are refused."""
    proxy = Pyro4.Proxy(NameServerClient(nameserver.host, nameserver.port, nameserver.secret).uri)
    proxy._pyroHmacKey = nameserver.secret
    proxy._pyroTimeout = 2
    try:
        with pytest.raises(Pyro4.errors.PyroError):
            proxy.register("some.name", "PYRO:obj@127.0.0.1:9")
    finally:
        proxy._pyroRelease()
    client = nameserver.client()
    assert client.list("some.") == {}, "nothing was registered"
    client.close()


def test_pickle_is_refused_even_if_pyro_config_accepts_it(nameserver):
    saved = Pyro4.config.SERIALIZERS_ACCEPTED
    Pyro4.config.SERIALIZERS_ACCEPTED = {"pickle", "serpent"}  # as PYRO_SERIALIZERS_ACCEPTED would
    try:
        with NameServer("pickled", secret="s") as ns:
            proxy = Pyro4.Proxy(NameServerClient(ns.host, ns.port, "s").uri)
            proxy._pyroHmacKey = "s"
            proxy._pyroSerializer = "pickle"
            with pytest.raises(Pyro4.errors.PyroError, match="serializer"):
                proxy.ping()
            proxy._pyroRelease()
    finally:
        Pyro4.config.SERIALIZERS_ACCEPTED = saved


def test_everything_binds_to_loopback_by_default(nameserver):
    worker = Echo(nameserver.run_id, nameserver=nameserver.host, nameserver_port=nameserver.port)
    worker.run(background=True)
    try:
        assert nameserver.host == "127.0.0.1"
        assert "@127.0.0.1:" in worker._rt.uri
        with Dispatcher(Collector(), run_id=nameserver.run_id, nameserver=nameserver.host,
                        nameserver_port=nameserver.port) as d:
            assert "@127.0.0.1:" in d.uri
    finally:
        worker.shutdown()


def test_without_a_secret_the_same_user_agrees_through_the_per_user_file(tmp_path):
    # HpBandSter-style: a name server without working directory, a worker knowing host and port.
    secret = user_secret()
    path = os.environ["ULTRARUN_SECRET_FILE"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with NameServer("peruser") as ns:
        assert ns.secret == secret
        code = ("import sys; sys.path.insert(0, 'tests');"
                "from workers_for_tests import TestWorker;"
                f"w = TestWorker('peruser', nameserver='{ns.host}', nameserver_port={ns.port});"
                "w.run(background=True); print(w.worker_name); w.shutdown()")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=60, cwd=os.path.dirname(os.path.dirname(__file__)))
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith("ultrarun.peruser.worker.")


def test_a_working_directory_gets_a_fresh_run_secret(tmp_path):
    with NameServer("fresh", working_directory=tmp_path) as ns:
        assert ns.secret != user_secret()
        # A party in the same process finds it by the port, as HpBandSter scripts expect.
        worker = Echo("fresh", nameserver=ns.host, nameserver_port=ns.port)
        worker.run(background=True)
        worker.shutdown()


# ------------------------------------------------------------------ a recorded handshake replayed
_REPLAYED_DISPATCHER = r"""
import json, os, resource, sys, threading
_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))  # a common default
from ultrarun.dispatcher import Dispatcher
from ultrarun.security import Credentials

run_id, directory = sys.argv[1:3]
creds = Credentials.read(directory, run_id)
lock = threading.Condition()
state = {"results": 0, "pids": set()}


def on_result(job):
    with lock:
        state["results"] += 1
        state["pids"].add((job.result or {}).get("info", {}).get("pid"))
        lock.notify_all()


d = Dispatcher(on_result, run_id=run_id, nameserver=creds.host, nameserver_port=creds.port,
               secret=creds.secret, ping_interval=0.5, timeout=5.0)
d.start()
print("ready", d.uri, flush=True)


def feed():  # keep a few jobs queued for as long as the process lives
    submitted = 0
    while True:
        with lock:
            lock.wait_for(lambda: submitted - state["results"] < 4, timeout=1)
            if submitted - state["results"] >= 4:
                continue
        try:
            d.submit_job(submitted, config={"x": 1.0, "sleep": 0.02}, budget=1.0)
        except Exception:  # shut down
            return
        submitted += 1


threading.Thread(target=feed, daemon=True).start()
for line in sys.stdin:
    if line.strip() != "stats":
        break
    with open("/proc/self/status") as fh:
        rss = next(int(l.split()[1]) for l in fh if l.startswith("VmRSS:"))
    with lock:
        info = {"results": state["results"], "pids": sorted(p for p in state["pids"] if p)}
    info.update(server=d._server.stats(), rss_kb=rss, fds=len(os.listdir("/proc/self/fd")),
                workers=d.number_of_workers())
    print("STATS", json.dumps(info), flush=True)
d.shutdown()
"""


def test_a_recorded_handshake_replayed_1000_times_opens_nothing(cluster):
    """An on-path party records one legitimate handshake with the dispatcher and replays it
    1,000 times from connections it keeps open (300 of them then start a large message and
    never finish it),
    against a real dispatcher process under `ulimit -n 1024`: none is authenticated, the
    dispatcher's memory stays bounded, jobs keep flowing to the real workers, and a fresh
    worker joins and gets jobs."""
    import json
    import queue
    import threading

    from conftest import Recorder, wait_until
    from ultrarun.settings import settings
    from ultrarun.security import Credentials

    cluster.start_workers(2)
    proc = subprocess.Popen([sys.executable, "-c", _REPLAYED_DISPATCHER, cluster.run_id,
                             str(cluster.dir)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()
    attackers: list = []

    def read(prefix: str) -> str:
        line = lines.get(timeout=30)
        assert line.startswith(prefix), line
        return line[len(prefix):].strip()

    def stats() -> dict:
        proc.stdin.write("stats\n")
        proc.stdin.flush()
        return json.loads(read("STATS"))

    try:
        uri = read("ready")
        wait_until(lambda: stats()["results"] >= 10, timeout=30, message="jobs to flow")
        host, port = uri.rsplit("@", 1)[1].rsplit(":", 1)
        relay = Recorder((host, int(port)))
        relayed = uri.rsplit("@", 1)[0] + f"@127.0.0.1:{relay.address[1]}"
        secret = Credentials.read(cluster.dir, cluster.run_id).secret
        with transport.Connection(relayed, secret, 5) as conn:
            conn.connect()  # one legitimate handshake, recorded on the way
        recorded = bytes(relay.sent)
        assert recorded, "the handshake was recorded"
        before = stats()
        size = settings.MAX_MESSAGE_SIZE - 1024  # then a large message, half sent, to hold memory
        half_message = struct.pack(
            "!4sHHHHiHHHH", b"PYRO", 48, 4, 0, 7, size, 1, 0, 0,
            (4 + 48 + size + 0 + 0 + 1 + 7 + 0x34E9) & 0xFFFF) + b"x" * (128 * 1024)
        for batch in range(0, 1000, 50):  # as an attacker would: 50 at a time, each answered
            socks = []
            for i in range(batch, batch + 50):
                with contextlib.suppress(OSError):
                    sock = socket.create_connection((host, int(port)), timeout=2)
                    attackers.append(sock)
                    socks.append(sock)
                    sock.setblocking(False)
                    sock.send(recorded + half_message if i < 300 else recorded)
            with selectors.DefaultSelector() as answered:  # wait for each one's answer
                for sock in socks:
                    answered.register(sock, selectors.EVENT_READ)
                deadline = time.monotonic() + 10
                while answered.get_map() and time.monotonic() < deadline:
                    for key, _ in answered.select(1):
                        answered.unregister(key.fileobj)
        wait_until(lambda: stats()["server"].get("accepted", 0)
                   >= before["server"].get("accepted", 0) + 1000, timeout=30,
                   message="the dispatcher to take all 1000 replays")
        after = stats()
        replayed_in = (after["server"].get("authenticated", 0)
                       - before["server"].get("authenticated", 0))
        assert replayed_in == 0, f"{replayed_in} replayed handshakes were authenticated"
        grown = (after["rss_kb"] - before["rss_kb"]) / 1024
        assert grown < 16, f"the dispatcher grew by {grown:.0f} MB"
        assert after["fds"] <= before["fds"] + settings.MAX_PENDING, "descriptors held"
        wait_until(lambda: stats()["results"] >= after["results"] + 20, timeout=30,
                   message="jobs to keep flowing during the replays")
        fresh = cluster.start_workers(1)[0]
        wait_until(lambda: fresh.pid in stats()["pids"], timeout=60,
                   message="the fresh worker to join and run a job")
    finally:
        for sock in attackers:
            sock.close()
        with contextlib.suppress(OSError):
            proc.stdin.close()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
