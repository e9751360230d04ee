"""A run that heals itself, shown on real processes: each test is a failure a real cluster (or a
hostile party) inflicts, and what the user checks afterwards: every job called back exactly
once, workers busy again, daemons answering (docs/failures.md lists them)."""
from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import TESTS, Cluster, Collector, Recorder, wait_until

from ultrarun import transport
from ultrarun.job import JobStatus
from ultrarun.journal import Journal
from ultrarun.nameserver import NameServer
from ultrarun.security import Credentials, resolve_secret

pytestmark = pytest.mark.slow

FAST = {"ULTRARUN_COMMTIMEOUT": "1", "ULTRARUN_PING_INTERVAL": "0.5"}


def results_of(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def hold(seconds: float) -> None:
    """Keep an injected fault in place this long (the fault's duration, not a wait for an
    event: the tests wait for events with wait_until)."""
    threading.Event().wait(seconds)


# ------------------------------------------------------------------------ 1. stalls, partitions
def test_a_stalled_dispatcher_loses_no_worker_and_no_job(cluster):
    """SIGSTOP the dispatcher's process longer than the workers' call timeout while jobs are
    queued: their calls time out and are tried again, the answers that carried their next jobs
    are lost. Afterwards every job is called back exactly once, by busy workers."""
    cluster.start_workers(2, env=FAST)
    out = cluster.dir / "results.jsonl"
    proc = subprocess.Popen([sys.executable, str(TESTS / "dispatcher_process.py"),
                             cluster.run_id, str(cluster.dir), str(out), "80", "0.05", "2"],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        wait_until(lambda: len(results_of(out)) >= 10, timeout=30, message="10 results")
        os.kill(proc.pid, signal.SIGSTOP)
        try:
            wait_until(lambda: all("could not deliver" in w.log() for w in cluster.workers),
                       timeout=30, message="both workers' calls to time out")
        finally:
            os.kill(proc.pid, signal.SIGCONT)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    ids = [r["id"] for r in results_of(out)]
    assert sorted(ids) == list(range(80)), "every job called back exactly once"
    assert all(r["status"] == "SUCCESS" for r in results_of(out))


@pytest.fixture
def netns():
    """A worker host of its own: a network namespace joined to this one by a veth pair, made
    and removed here (needs root and iproute2)."""
    if os.geteuid() != 0 or not Path("/usr/sbin/ip").exists() and not Path("/sbin/ip").exists():
        pytest.skip("network namespaces need root and iproute2")
    n = os.getpid() % 200 + 20
    name, host_if, worker_if = f"ur{os.getpid()}", f"urh{os.getpid()}"[-15:], f"urw{os.getpid()}"[-15:]
    host_ip, worker_ip = f"10.{n}.77.1", f"10.{n}.77.2"
    steps = [["ip", "netns", "add", name],
             ["ip", "link", "add", host_if, "type", "veth", "peer", "name", worker_if],
             ["ip", "link", "set", worker_if, "netns", name],
             ["ip", "addr", "add", f"{host_ip}/24", "dev", host_if],
             ["ip", "link", "set", host_if, "up"],
             ["ip", "netns", "exec", name, "ip", "addr", "add", f"{worker_ip}/24", "dev",
              worker_if],
             ["ip", "netns", "exec", name, "ip", "link", "set", worker_if, "up"],
             ["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"]]
    try:
        for step in steps:
            result = subprocess.run(step, capture_output=True, text=True)
            if result.returncode != 0:
                pytest.skip(f"this kernel does not allow network namespaces: {result.stderr}")
        yield {"name": name, "host_if": host_if, "host_ip": host_ip, "worker_ip": worker_ip}
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def test_a_healed_partition_puts_the_worker_back_to_work(tmp_path, netns):
    """One worker on another host; the link goes down while short jobs flow, longer than the
    worker's call timeout but shorter than the dispatcher's ping interval (so the dispatcher
    never counts it lost), then comes back. The worker takes jobs again, and every job is
    called back exactly once."""
    ns = NameServer(f"part{os.getpid()}", working_directory=tmp_path, host=netns["host_ip"])
    cluster = Cluster(tmp_path, nameserver=ns)
    try:
        (far,) = cluster.start_workers(1, env=FAST, prefix=("ip", "netns", "exec", netns["name"]))
        cluster.start_workers(1, env=FAST)
        d, results = cluster.dispatcher(host=cluster.host, ping_interval=5.0, timeout=1.0)
        wait_until(lambda: d.number_of_workers() == 2, timeout=30, message="both workers")
        ids = itertools.count()
        for _ in range(40):
            d.submit_job(next(ids), config={"x": 1, "sleep": 0.02}, budget=1.0)
        wait_until(lambda: any(j.result and j.result["info"]["pid"] == far.pid
                               for j in list(results.jobs)), message="the far worker at work")
        subprocess.run(["ip", "link", "set", netns["host_if"], "down"], check=True)
        try:
            for _ in range(100):
                d.submit_job(next(ids), config={"x": 1, "sleep": 0.02}, budget=1.0)
            hold(4.5)  # several call timeouts of the far worker, at most one ping
        finally:
            subprocess.run(["ip", "link", "set", netns["host_if"], "up"], check=True)
        healed = len(results.jobs)
        for _ in range(200):
            d.submit_job(next(ids), config={"x": 1, "sleep": 0.02}, budget=1.0)
        jobs = results.wait_for(340, timeout=90)
        after = [j for j in jobs[healed:] if j.result]
        assert any(j.result["info"]["pid"] == far.pid for j in after), \
            "the far worker takes jobs again after the partition"
        assert sorted(j.id for j in jobs) == list(range(340)), "every job exactly once"
    finally:
        cluster.close()


# --------------------------------------------------------------- 2, 3. nobody can hold a daemon
def _silent_and_half_open(address: tuple[str, int], idle: int, half: int) -> list[socket.socket]:
    socks = []
    for i in range(idle + half):
        sock = socket.create_connection(address, timeout=5)
        if i >= idle:
            sock.send(b"PYRO\x00\x30\x00")  # half a header
        socks.append(sock)
    return socks


def test_silent_and_half_open_connections_hold_no_daemon(cluster):
    """500 silent connections and 200 half-sent headers against the dispatcher and the name
    server (no secret needed to open them): jobs keep flowing, status answers, a new worker
    registers and works."""
    cluster.start_workers(1)
    d, results = cluster.dispatcher()
    wait_until(lambda: d.number_of_workers() == 1, message="the worker")
    dispatcher_address = transport.Connection(d.uri, "x").uri.rsplit("@", 1)[1].rsplit(":", 1)
    socks = []
    try:
        for address in ((dispatcher_address[0], int(dispatcher_address[1])),
                        (cluster.host, cluster.port)):
            socks += _silent_and_half_open(address, idle=500, half=200)
        with transport.Connection(d.uri, resolve_secret(None, cluster.port), 2) as status:
            assert status.call("status")["run_id"] == cluster.run_id
        for i in range(20):
            d.submit_job(i, config={"x": i}, budget=1.0)
        assert len(results.wait_for(20, timeout=30)) == 20
        (late,) = cluster.start_workers(1)  # it has to register with the name server
        wait_until(lambda: d.number_of_workers() == 2, timeout=30, message="the new worker")
    finally:
        for sock in socks:
            sock.close()


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_huge_announced_message_reserves_nothing(tmp_path):
    """A header announcing 200 MB (no secret needed to send one), followed by junk: the name
    server hangs up at the header and its memory does not grow."""
    proc = subprocess.Popen([sys.executable, "-m", "ultrarun", "nameserver", "--run-id", "big",
                             "--working-dir", str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert "listening" in proc.stdout.readline()
        creds = Credentials.read(tmp_path, "big")
        before = _rss_kb(proc.pid)
        size = 200 * 1024 * 1024
        header = struct.pack("!4sHHHHiHHHH", b"PYRO", 48, 1, 0, 1, size, 1, 0, 0,
                             (1 + 48 + size + 1 + 1 + 0x34E9) & 0xFFFF)  # a "connect" message
        sent = 0
        with socket.create_connection((creds.host, creds.port), timeout=5) as sock:
            try:
                sock.sendall(header)
                junk = b"\0" * (1 << 20)
                for _ in range(100):  # 100 MB, unless it hangs up first
                    sock.sendall(junk)
                    sent += len(junk)
            except OSError:
                pass  # it hung up: the point
        grown = _rss_kb(proc.pid) - before
        assert grown < 20 * 1024, f"the name server grew by {grown} kB ({sent} bytes sent)"
        with transport.NameServerClient(creds.host, creds.port, creds.secret, 5) as ns:
            ns.ping()
    finally:
        proc.terminate()
        proc.wait(timeout=20)


# -------------------------------------------------------------------------------- 4. replay
def test_a_recorded_name_server_call_replayed_is_refused(nameserver):
    """An on-path party records a worker's signed ``register`` and sends it again after the
    name was removed, on a new connection and on the same one: the name stays removed."""
    relay = Recorder((nameserver.host, nameserver.port))
    uri = "PYRO:obj_x@127.0.0.1:9"
    with transport.NameServerClient(*relay.address, nameserver.secret, 5) as through:
        through.register("ultrarun.replay.worker.h.1.0", uri)
        wait_until(lambda: relay.sent, message="the recorded call")
        recorded = bytes(relay.sent)
        with nameserver.client() as direct:
            direct.remove("ultrarun.replay.worker.h.1.0")
            with socket.create_connection((nameserver.host, nameserver.port), 5) as sock:
                sock.sendall(recorded)  # handshake and register, on a new connection
                with contextlib.suppress(OSError):
                    sock.recv(65536)
            relay.upstream.sendall(recorded[-len(recorded) // 2:])  # and on the same one
            assert direct.list("ultrarun.replay.") == {}, "the replay registered the name again"


# ---------------------------------------------------------------------------- 5. torn journal
def test_a_torn_journal_tail_is_cut_before_appending(tmp_path, caplog):
    """A master killed mid-write leaves half a record; resuming appends after it without
    gluing the next record onto it."""
    path = tmp_path / "run.journal.jsonl"
    journal = Journal(path)
    journal.open(append=False)
    journal.write({"t": "header", "run_id": "r"})
    journal.write({"t": "config", "id": [0, 0, 0], "config": {"x": 1}, "info": {}})
    journal.close()
    with open(path, "a") as fh:
        fh.write('{"t": "result", "id": [0, 0, 0], "budg')  # the kill
    with caplog.at_level(logging.WARNING, logger="ultrarun.master"):
        resumed = Journal(path)
        resumed.open(append=True)
        resumed.write({"t": "config", "id": [0, 0, 1], "config": {"x": 2}, "info": {}})
        resumed.close()
        header, configs, results = Journal(path).read()
    assert set(configs) == {(0, 0, 0), (0, 0, 1)}
    assert "skipping unreadable line" not in caplog.text
    assert "torn last record" in caplog.text


# ------------------------------------------------------------------ 6. name server restarted
def test_a_name_server_restarted_the_documented_way_keeps_the_run_together(tmp_path):
    """``ultrarun nameserver --working-dir DIR`` killed and started again: same secret and
    port, so the workers (a busy one too) and the dispatcher register again, within a ping
    interval, and jobs flow."""
    run_id = f"restart{os.getpid()}"
    cmd = [sys.executable, "-m", "ultrarun", "nameserver", "--run-id", run_id,
           "--working-dir", str(tmp_path)]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert "listening" in first.stdout.readline()
    creds = Credentials.read(tmp_path, run_id)
    cluster = Cluster(tmp_path, run_id=run_id, address=(creds.host, creds.port))
    second = None
    try:
        cluster.start_workers(2, env=FAST)
        d, results = cluster.dispatcher(ping_interval=0.5, timeout=1.0)
        wait_until(lambda: d.number_of_workers() == 2, timeout=30, message="both workers")
        marker = cluster.marker("long")
        d.submit_job("long", config={"marker": str(marker), "sleep": 8.0}, budget=1.0)
        wait_until(marker.exists, message="the long job to start")
        first.kill()
        first.wait()
        second = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert "listening" in second.stdout.readline()
        assert Credentials.read(tmp_path, run_id) == creds, "same host, port and secret"
        with cluster.client() as ns:
            wait_until(lambda: len(ns.list(transport.worker_prefix(run_id))) == 2, timeout=5,
                       message="both workers, the busy one too, to register again")
            assert not results.jobs, "the busy worker registered again while busy"
            wait_until(lambda: ns.lookup(transport.dispatcher_name(run_id)) == d.uri,
                       timeout=5, message="the dispatcher to register again")
        for i in range(10):
            d.submit_job(i, config={"x": i}, budget=1.0)
        jobs = results.wait_for(11, timeout=30)
        assert all(j.status is JobStatus.SUCCESS for j in jobs)
    finally:
        cluster.close()
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=20)


# ------------------------------------------------------------------------- 7. idle timeout
def test_the_idle_timeout_counts_from_the_last_job_and_ends_a_background_worker(nameserver):
    """A worker with ``timeout`` serves a master that gives work for longer than the timeout;
    it shuts down only ``timeout`` after its last job, unregistered and no longer answering.
    (The dispatcher is up first: a worker idle for ``timeout`` after its start leaves, so one
    started first could leave before a loaded machine had the dispatcher up.)"""
    from workers_for_tests import TestWorker

    results = Collector()
    from ultrarun.dispatcher import Dispatcher

    with Dispatcher(results, run_id=nameserver.run_id, nameserver=nameserver.host,
                    nameserver_port=nameserver.port, ping_interval=0.5) as d:
        d.start()
        worker = TestWorker(nameserver.run_id, nameserver=nameserver.host,
                            nameserver_port=nameserver.port, timeout=1.5)
        worker.run(background=True)
        uri = worker._rt.uri
        wait_until(lambda: d.number_of_workers() == 1, message="the worker")
        for i in range(3):  # 3 s of work: twice the timeout
            d.submit_job(i, config={"x": i, "sleep": 1.0}, budget=1.0)
        assert all(j.status is JobStatus.SUCCESS for j in results.wait_for(3, timeout=30))
        with nameserver.client() as ns:
            wait_until(lambda: ns.list(transport.worker_prefix(nameserver.run_id)) == {},
                       timeout=15, message="the idle worker to unregister")
        with transport.Connection(uri, nameserver.secret, 2) as conn:
            with pytest.raises(Exception):
                conn.call("status")


# ------------------------------------------------------------------------ 8. malformed jobs
def test_malformed_jobs_are_refused_and_the_worker_keeps_serving(cluster):
    (worker,) = cluster.start_workers(1)
    secret = resolve_secret(None, cluster.port)
    with cluster.nameserver.client() as ns:
        (uri,) = ns.list(transport.worker_prefix(cluster.run_id)).values()
    good = {"token": 1, "attempt": 1, "id": "x", "kwargs": {"config": {}, "budget": 1.0},
            "dispatcher": "PYRO:obj_d@127.0.0.1:9", "seq": 1}
    with transport.Connection(uri, secret, 5) as conn:
        for junk in ({**good, "dispatcher": None}, {**good, "token": "1"}, {**good, "kwargs": []},
                     {**good, "seq": 0}, "not a job", None, [1, 2], {"id": 1}):
            conn.send("start_computation", junk)
        assert conn.call("status")["jobs_done"] == 0, "the worker still answers"
    wait_until(lambda: worker.log().count("refused a malformed job") == 8,
               message="every refusal logged")
    d, results = cluster.dispatcher()
    d.submit_job("real", config={"x": 2}, budget=1.0)
    (job,) = results.wait_for(1)
    assert job.status is JobStatus.SUCCESS and worker.proc.poll() is None
