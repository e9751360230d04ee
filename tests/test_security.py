"""Secrets, refused strangers, signed marshal (or serpent) only, loopback by default."""
from __future__ import annotations

import os
import stat
import subprocess
import sys

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
