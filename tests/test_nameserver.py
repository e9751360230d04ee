"""The name server: lifecycle, credentials file, interfaces and the command line."""
from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys

import pytest

from conftest import wait_until
from ultrarun.errors import ConfigurationError, NameServerError
from ultrarun.nameserver import NameServer, nic_name_to_host
from ultrarun.security import Credentials, credentials_path
from ultrarun.transport import NameServerClient


def test_start_writes_a_private_credentials_file_and_shutdown_removes_it(tmp_path):
    ns = NameServer("cred", working_directory=tmp_path)
    host, port = ns.start()
    try:
        assert host == "127.0.0.1" and port > 0
        path = credentials_path(tmp_path, "cred")
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        data = json.loads(path.read_text())
        assert data == {"host": host, "port": port, "run_id": "cred", "secret": ns.secret}
        assert len(ns.secret) >= 32
        assert ns.start() == (host, port)  # idempotent
    finally:
        ns.shutdown()
    assert not path.exists()
    ns.shutdown()  # idempotent


def test_registry_works_and_closes_with_the_server(tmp_path):
    with NameServer("reg", working_directory=tmp_path) as ns:
        client = ns.client()
        client.register("ultrarun.reg.worker.h.1.0", "PYRO:obj@127.0.0.1:1")
        assert client.list("ultrarun.reg.worker.") == {
            "ultrarun.reg.worker.h.1.0": "PYRO:obj@127.0.0.1:1"}
    with pytest.raises(NameServerError):
        client.list("ultrarun.")
    client.close()


def test_nic_name_to_host():
    assert nic_name_to_host("lo") == "127.0.0.1"
    with pytest.raises(ConfigurationError, match="no network interface named 'nope0'.*lo"):
        nic_name_to_host("nope0")


def test_nameserver_on_an_interface():
    with NameServer("nic", nic_name="lo") as ns:
        assert ns.host == "127.0.0.1"
    with pytest.raises(ConfigurationError):
        NameServer("x", host="127.0.0.1", nic_name="lo")


def test_bad_run_id_is_refused():
    with pytest.raises(ConfigurationError, match="printable text"):
        NameServer("my/run")


def test_command_line_nameserver_runs_until_sigterm(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "ultrarun", "nameserver", "--run-id", "cli",
                             "--working-dir", str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "listening on 127.0.0.1:" in line
        path = credentials_path(tmp_path, "cli")
        wait_until(path.exists, message="the credentials file")
        creds = Credentials.read(tmp_path, "cli")
        client = NameServerClient(creds.host, creds.port, creds.secret)
        client.ping()
        client.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert not path.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
