"""End to end: a real name server, worker processes started with ``ultrarun worker``, a dispatcher."""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from conftest import wait_until
from ultrarun import transport
from ultrarun.dispatcher import Dispatcher
from ultrarun.errors import ConfigurationError, ResultError, UltrarunError
from ultrarun.job import JobStatus
from ultrarun.security import resolve_secret

pytestmark = pytest.mark.slow


def test_jobs_flow_through_worker_processes(cluster):
    workers = cluster.start_workers(2)
    d, results = cluster.dispatcher()
    wait_until(lambda: d.number_of_workers() == 2, message="2 workers")
    for i in range(20):
        d.submit_job((0, 0, i), config={"x": i}, budget=3.0, working_directory=str(cluster.dir))
    jobs = results.wait_for(20)
    assert sorted(j.id for j in jobs) == [(0, 0, i) for i in range(20)]
    for job in jobs:
        assert job.status is JobStatus.SUCCESS and job.exception is None
        assert job.result["loss"] == job.kwargs["config"]["x"] * 3.0
        assert job.attempt == 1
        assert job.worker_name.startswith(f"ultrarun.{cluster.run_id}.worker.")
        ts = job.timestamps
        assert ts["submitted"] <= ts["started"] <= ts["finished"]
    used = {j.result["info"]["pid"] for j in jobs}
    assert used == {w.pid for w in workers}, "both workers should get work"
    assert d.number_of_workers() == 2
    assert results.pool_sizes and results.pool_sizes[-1] == 2


def test_workers_started_first_are_discovered_at_once(cluster):
    cluster.start_workers(3)
    d, results = cluster.dispatcher(ping_interval=60)  # discovery must not wait for a ping
    # found by listing the name server at start: well within the first 60 s ping interval,
    # however loaded the machine
    wait_until(lambda: d.number_of_workers() == 3, timeout=30, message="3 workers")
    d.submit_job("a", config={"x": 1}, budget=1.0)
    assert results.wait_for(1, timeout=5)[0].status is JobStatus.SUCCESS


def test_workers_started_later_say_hello_and_get_work(cluster):
    d, results = cluster.dispatcher(ping_interval=60)
    d.submit_job("a", config={"x": 2}, budget=1.0)
    cluster.start_workers(1, wait=False)
    # The worker's hello brings it its job: well within the first 60 s ping interval.
    job = results.wait_for(1, timeout=30)[0]
    assert job.status is JobStatus.SUCCESS and job.result["loss"] == 2.0
    assert d.number_of_workers() == 1


def test_compute_that_raises_is_crashed_not_retried(cluster):
    cluster.start_workers(1)
    d, results = cluster.dispatcher()
    d.submit_job("bad", config={"raise": "boom 42"}, budget=1.0)
    d.submit_job("good", config={"x": 1}, budget=1.0)
    jobs = results.wait_for(2)
    by_id = results.by_id()
    bad = by_id["bad"]
    assert bad.status is JobStatus.CRASHED and bad.result is None
    assert "ValueError: boom 42" in bad.exception and "Traceback" in bad.exception
    assert bad.attempt == 1
    assert by_id["good"].status is JobStatus.SUCCESS
    assert len(jobs) == 2


@pytest.mark.parametrize("junk, words", [
    ("string", "expected a dict"),
    ("noloss", "without 'loss'"),
    ("nan", "finite number"),
    ("strloss", "must be a number"),
    ("object", "result['info']['model']"),
])
def test_junk_results_are_crashed_with_a_message_naming_the_problem(cluster, junk, words):
    cluster.start_workers(1)
    d, results = cluster.dispatcher()
    d.submit_job(junk, config={"junk": junk}, budget=1.0)
    d.submit_job("after", config={"x": 1}, budget=1.0)
    results.wait_for(2)
    job = results.by_id()[junk]
    assert job.status is JobStatus.CRASHED
    assert words in job.exception
    assert results.by_id()["after"].status is JobStatus.SUCCESS


def test_plain_data_keeps_its_exact_shape_both_ways(cluster):
    """Tuples stay tuples and integer keys stay integers on the way to the worker (a JSON wire
    format would turn them into lists and strings); a tuple comes back as it went."""
    cluster.start_workers(1)
    d, results = cluster.dispatcher()
    config = {"echo": True, "shape": (3, 4), "by_int": {1: "a", 2: [1.5, None, (True,)]},
              "nested": [{"k": (0.5,)}], "text": "é"}
    d.submit_job((0, 1, 2), config=config, budget=1.0)
    (job,) = results.wait_for(1)
    assert job.status is JobStatus.SUCCESS, job.exception
    echoed = job.result["info"]
    assert echoed["config_id"] == (0, 1, 2) and type(echoed["config_id"]) is tuple
    assert echoed["config"] == repr(config), "the exact shape: tuples, int keys, their order"


def test_numpy_values_travel_as_plain_python(cluster):
    cluster.start_workers(1)
    d, results = cluster.dispatcher()
    d.submit_job("np-result", config={"numpy": True}, budget=1.0)
    d.submit_job("np-kwargs", config={"x": np.float64(2.0), "kind": np.str_("rbf"),
                                      "n": np.int64(3)}, budget=np.float32(9.0))
    results.wait_for(2)
    out = results.by_id()["np-result"]
    assert out.status is JobStatus.SUCCESS
    assert out.result == {"loss": 0.5, "info": {"curve": [0, 1, 2], "best": 0.25, "name": "x"}}
    assert type(out.result["info"]["curve"][0]) is int
    sent = results.by_id()["np-kwargs"]
    assert sent.status is JobStatus.SUCCESS, sent.exception
    assert sent.result["info"]["types"] == {"x": "float", "kind": "str", "n": "int"}
    assert sent.result["info"]["budget_type"] == "float"
    assert sent.result["loss"] == 18.0


def test_messages_over_the_size_limit_fail_the_job_not_the_worker(cluster):
    """A result larger than MAX_MESSAGE_SIZE is CRASHED with a message saying so (the worker
    keeps serving); job kwargs that large are refused at submit."""
    cluster.start_workers(1)
    d, results = cluster.dispatcher()
    d.submit_job("big", config={"big_info": 5 * 1024 * 1024}, budget=1.0)
    d.submit_job("after", config={"x": 1}, budget=1.0)
    results.wait_for(2)
    big = results.by_id()["big"]
    assert big.status is JobStatus.CRASHED and "MAX_MESSAGE_SIZE" in big.exception
    assert results.by_id()["after"].status is JobStatus.SUCCESS
    with pytest.raises(ResultError, match="MAX_MESSAGE_SIZE"):
        d.submit_job("huge", config={"data": "y" * (3 * 1024 * 1024)}, budget=1.0)


def test_kwargs_that_cannot_travel_are_refused_at_submit(cluster):
    d, _ = cluster.dispatcher()
    with pytest.raises(ResultError, match=r"job kwargs\['config'\]\['f'\]"):
        d.submit_job("x", config={"f": object()}, budget=1.0)


def test_sigkill_mid_job_reruns_the_job_on_another_worker(cluster):
    cluster.start_workers(2)
    d, results = cluster.dispatcher()
    marker = cluster.marker("kill")
    d.submit_job("victim", config={"marker": str(marker), "sleep": 1.0, "x": 5}, budget=1.0)
    wait_until(marker.exists, message="the job to start")
    pid = int(wait_until(lambda: marker.read_text()))
    os.kill(pid, signal.SIGKILL)
    job = results.wait_for(1, timeout=30)[0]
    assert job.status is JobStatus.SUCCESS and job.result["loss"] == 5.0
    assert job.attempt == 2
    assert job.result["info"]["pid"] != pid
    d.submit_job("next", config={"x": 1}, budget=1.0)
    results.wait_for(2)
    assert [j.id for j in results.jobs].count("victim") == 1


def test_job_is_lost_after_max_retries(cluster):
    cluster.start_workers(1)
    d, results = cluster.dispatcher(max_retries=0)
    marker = cluster.marker("lost")
    d.submit_job("doomed", config={"marker": str(marker), "sleep": 30}, budget=1.0)
    pid = int(wait_until(lambda: marker.exists() and marker.read_text()))
    os.kill(pid, signal.SIGKILL)
    job = results.wait_for(1, timeout=30)[0]
    assert job.status is JobStatus.LOST
    assert "lost 1 times" in job.exception
    assert d.number_of_workers() == 0


def test_the_last_worker_gone_with_jobs_waiting_is_said_not_waited_in_silence(cluster, caplog):
    caplog.set_level(logging.WARNING, logger="ultrarun.dispatcher")
    cluster.start_workers(1)
    d, results = cluster.dispatcher()
    marker = cluster.marker("last")
    d.submit_job("held", config={"marker": str(marker), "sleep": 30}, budget=1.0)
    pid = int(wait_until(lambda: marker.exists() and marker.read_text()))
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: "no worker left" in caplog.text, timeout=30,
               message="the warning that jobs wait for workers")
    line = next(r.getMessage() for r in caplog.records if "no worker left" in r.getMessage())
    assert f"run {d.run_id}: 1 jobs wait for a worker to register at {d.where}" in line
    assert results.jobs == [], "the job waits (attempt 2) for a worker; it is not lost"


def test_sigstop_loses_the_lease_others_keep_working_late_result_dropped(cluster, caplog):
    caplog.set_level(logging.WARNING, logger="ultrarun.dispatcher")
    cluster.start_workers(2)
    d, results = cluster.dispatcher(ping_interval=0.2, timeout=1.0)
    wait_until(lambda: d.number_of_workers() == 2, message="2 workers")
    marker = cluster.marker("stop")
    d.submit_job("stopped", config={"marker": str(marker), "sleep": 1.5, "x": 7}, budget=1.0)
    pid = int(wait_until(lambda: marker.exists() and marker.read_text()))
    os.kill(pid, signal.SIGSTOP)
    try:
        for i in range(5):  # the other worker keeps receiving jobs meanwhile
            d.submit_job(("quick", i), config={"x": i}, budget=1.0)
        wait_until(lambda: sum(1 for j in results.jobs if j.id[0] == "quick") == 5, timeout=10,
                   message="quick jobs on the healthy worker")
        quick = [j for j in results.jobs if j.id[0] == "quick"]
        job = wait_until(lambda: results.by_id().get("stopped"), timeout=30,
                         message="the stopped worker's job to be re-run")
        assert job.status is JobStatus.SUCCESS and job.attempt == 2
        assert job.result["info"]["pid"] != pid
        # A dispatcher that stalled behind the stopped worker would hold each quick job for a
        # call timeout (1 s): they would end after the stopped worker's lease is lost (two
        # missed pings) and its job runs again. They end before it.
        assert max(j.timestamps["finished"] for j in quick) < job.timestamps["started"], \
            "the quick jobs waited behind the stopped worker: the dispatcher stalled"
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_until(lambda: "dropping a late result" in caplog.text, timeout=20,
               message="the late result to be dropped")
    assert [j.id for j in results.jobs].count("stopped") == 1
    # The resumed worker is taken back and gets work again.
    wait_until(lambda: d.number_of_workers() == 2, timeout=10, message="the worker to come back")


def test_shutdown_with_workers_ends_the_worker_processes(cluster):
    workers = cluster.start_workers(2)
    d, results = cluster.dispatcher()
    wait_until(lambda: d.number_of_workers() == 2, message="2 workers")
    d.shutdown(shutdown_workers=True)
    for w in workers:
        assert w.proc.wait(timeout=15) == 0


def test_shutdown_cancels_queued_jobs_exactly_once(cluster):
    d, results = cluster.dispatcher()
    for i in range(3):
        d.submit_job(i, config={"x": i}, budget=1.0)
    d.shutdown()
    jobs = results.wait_for(3, timeout=5)
    assert sorted(j.id for j in jobs) == [0, 1, 2]
    assert {j.status for j in jobs} == {JobStatus.CANCELLED}
    with pytest.raises(UltrarunError):
        d.submit_job(9, config={}, budget=1.0)


def test_idle_timeout_stops_the_worker_process(cluster):
    (worker,) = cluster.start_workers(1, "TestWorker", "--timeout", "0.5")
    assert worker.proc.wait(timeout=15) == 0
    client = cluster.nameserver.client()
    try:
        assert client.list(f"ultrarun.{cluster.run_id}.worker.") == {}
    finally:
        client.close()


def test_n_workers_supervisor_starts_and_stops_its_processes(cluster):
    cmd = [sys.executable, "-m", "ultrarun", "worker", "tests/workers_for_tests.py:TestWorker",
           "--run-id", cluster.run_id, "--working-dir", str(cluster.dir), "--n-workers", "2"]
    proc = subprocess.Popen(cmd, cwd=os.path.dirname(os.path.dirname(__file__)))
    try:
        d, results = cluster.dispatcher()
        wait_until(lambda: d.number_of_workers() == 2, timeout=30, message="2 workers")
        for i in range(4):  # long enough that both workers, idle, get some
            d.submit_job(i, config={"x": i, "sleep": 0.3}, budget=1.0)
        assert len({j.result["info"]["pid"] for j in results.wait_for(4)}) == 2
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        wait_until(lambda: d.number_of_workers() == 0, timeout=10, message="workers gone")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_signatures_of_hpbandster_ultraopt_and_kwargs_workers(cluster):
    cluster.start_workers(1, "UltraoptWorker")
    cluster.start_workers(1, "KwargsWorker")
    d, results = cluster.dispatcher()
    wait_until(lambda: d.number_of_workers() == 2, message="2 workers")
    for i in range(6):
        d.submit_job(i, config={"x": 3}, config_info={"model_based_pick": False}, budget=2.0,
                     working_directory=".")
    jobs = results.wait_for(6)
    assert all(j.status is JobStatus.SUCCESS for j in jobs), [j.exception for j in jobs]
    infos = [j.result["info"] for j in jobs]
    assert {"config_info": {"model_based_pick": False}} in infos
    assert {"kwargs": ["config_id", "config_info", "working_directory"]} in infos


def test_dispatcher_arguments_are_validated():
    with pytest.raises(ConfigurationError, match="ping_interval"):
        Dispatcher(lambda job: None, ping_interval=0)
    with pytest.raises(ConfigurationError, match="run_id"):
        Dispatcher(lambda job: None, run_id="a/b")


def test_prefetch_runs_every_job_exactly_once_and_workers_hold_two(cluster):
    cluster.start_workers(2)
    d, results = cluster.dispatcher(prefetch=1)
    wait_until(lambda: d.number_of_workers() == 2, message="2 workers")
    for i in range(40):
        d.submit_job(i, config={"x": i, "sleep": 0.01}, budget=1.0)
    held = wait_until(lambda: [w["holding"] for w in d.status()["workers"]] == [2, 2],
                      timeout=10, message="both workers to hold a running and a prefetched job")
    assert held
    jobs = results.wait_for(40)
    assert sorted(j.id for j in jobs) == list(range(40))
    assert all(j.status is JobStatus.SUCCESS and j.attempt == 1 for j in jobs)


def test_prefetch_never_holds_a_short_job_behind_a_long_one(cluster):
    cluster.start_workers(2)
    d, results = cluster.dispatcher(prefetch=1)
    wait_until(lambda: d.number_of_workers() == 2, message="2 workers")
    for i in range(4):  # the dispatcher learns the pace: about 10 ms per unit of budget
        d.submit_job(f"warm{i}", config={"sleep": 0.02}, budget=2.0)
    results.wait_for(4)
    d.submit_job("long", config={"sleep": 1.0}, budget=100.0)
    for i in range(10):
        d.submit_job(f"short{i}", config={"sleep": 0.02}, budget=2.0)
    jobs = results.wait_for(15, timeout=30)
    by_id = results.by_id()
    shorts = [j for j in jobs if j.id.startswith("short")]
    # the long job's worker had a free prefetch slot the whole time, but a short job put there
    # would have waited a second while the other worker frees up every 20 ms
    assert {j.worker_name for j in shorts} == {j.worker_name for j in jobs} - {
        by_id["long"].worker_name}
    assert max(j.timestamps["finished"] for j in shorts) < by_id["long"].timestamps["finished"]


def hold_two_jobs(cluster, running: dict, flag):
    """One worker with prefetch 1, running job "running" (``running`` is its config, which
    writes ``flag`` when it starts) and holding job "held"."""
    cluster.start_workers(1)
    d, results = cluster.dispatcher(prefetch=1)
    wait_until(lambda: d.number_of_workers() == 1, message="the worker")
    d.submit_job("running", config=running, budget=1.0)
    d.submit_job("held", config={"x": 3}, budget=1.0)
    wait_until(flag.exists, message="the first job to start")
    wait_until(lambda: [w["holding"] for w in d.status()["workers"]] == [2],
               message=f"the worker to hold both jobs: {d.status()}")
    return d, results


def test_prefetch_sigkill_requeues_both_held_jobs(cluster):
    flag = cluster.marker("block")
    d, results = hold_two_jobs(cluster, {"block_once": str(flag), "x": 1}, flag)
    (victim,) = cluster.workers
    cluster.start_workers(1)
    wait_until(lambda: d.number_of_workers() == 2, message="a second worker")
    os.kill(victim.pid, signal.SIGKILL)
    jobs = results.wait_for(2, timeout=60)
    by_id = results.by_id()
    assert by_id["running"].status is JobStatus.SUCCESS and by_id["running"].attempt == 2
    # the prefetched job never started: re-queued without costing an attempt
    assert by_id["held"].status is JobStatus.SUCCESS and by_id["held"].attempt == 1
    assert all(f".{victim.pid}." not in j.worker_name for j in jobs)
    assert len(jobs) == 2


def test_a_call_that_crosses_its_jobs_keeps_them(cluster, caplog):
    """A worker's call may carry a report made before jobs pushed to it arrived: those jobs are
    sent again with the answer (the worker ignores the copies), never re-run: each job runs
    once, as attempt 1."""
    flag = cluster.marker("first")
    d, results = hold_two_jobs(cluster, {"marker": str(flag), "sleep": 1.0}, flag)
    (worker,) = d.status()["workers"]
    with transport.Connection(d.uri, resolve_secret(None, cluster.port), 5) as worker_side:
        with caplog.at_level(logging.WARNING, logger="ultrarun.dispatcher"):
            answer = worker_side.call("sync", worker["name"], worker["uri"],
                                      {"acked": 0, "held": []}, [])
            # copies of what was not acknowledged yet, if anything: never a re-run
            assert {j["id"] for j in answer["jobs"]} <= {"held", "running"}
            assert all(j["attempt"] == 1 for j in answer["jobs"])
            jobs = results.wait_for(2, timeout=30)
    assert {j.id: j.attempt for j in jobs} == {"running": 1, "held": 1}
    assert all(j.status is JobStatus.SUCCESS for j in jobs)
    assert "re-queueing" not in caplog.text and "late result" not in caplog.text


@transport.expose
class ForgetfulWorker:
    """Takes jobs and never runs them; reports what it holds, or nothing once told to forget
    (as a worker does after it gave up on a result). Notes whom it was pinged by."""

    def __init__(self) -> None:
        self.jobs: list[dict] = []
        self.pinged_by: list[str | None] = []
        self.forgotten = 0  # the first jobs it forgot

    def forget(self) -> None:
        self.forgotten = len(self.jobs)

    @transport.oneway
    def start_computation(self, job: dict) -> None:
        self.jobs.append(job)

    @transport.oneway
    def cancel(self, dispatcher: str, keys: list) -> None:
        pass

    def ping(self, dispatcher: str | None = None) -> dict:
        self.pinged_by.append(dispatcher)
        held = [[j["token"], j["attempt"]] for j in self.jobs[self.forgotten:]]
        return {"busy": False, "report": {"acked": max([j["seq"] for j in self.jobs], default=0),
                                          "held": held}}


@contextlib.contextmanager
def fake_workers(cluster, n: int):
    """``n`` ForgetfulWorkers served over real Pyro and registered as workers of the run:
    yields ``[(name, uri, fake), ...]``."""
    secret = resolve_secret(None, cluster.port)
    ns = cluster.nameserver.client()
    servers = []
    try:
        fakes = []
        for i in range(n):
            fake = ForgetfulWorker()
            servers.append(transport.Server(fake, secret))
            uri = servers[-1].start()
            name = transport.worker_name(cluster.run_id, "fakehost", 1, i)
            ns.register(name, uri)
            fakes.append((name, uri, fake))
        yield fakes
    finally:
        ns.close()
        for server in servers:
            server.shutdown()


def test_a_worker_that_lost_its_job_reports_so_and_the_job_runs_again(cluster, caplog):
    secret = resolve_secret(None, cluster.port)
    with fake_workers(cluster, 1) as [(name, uri, fake)]:
        d, results = cluster.dispatcher()
        wait_until(lambda: d.number_of_workers() == 1, message="the fake worker")
        d.submit_job("job", config={"x": 1}, budget=1.0)
        wait_until(lambda: len(fake.jobs) == 1, message="the job to reach the worker")
        wait_until(lambda: len(fake.pinged_by) >= 2, message="a ping that acknowledges it")
        with caplog.at_level(logging.WARNING, logger="ultrarun.dispatcher"):
            fake.forget()  # its next ping answer says: arrived, and not held any more
            wait_until(lambda: len(fake.jobs) == 2, message="the job to be sent again")
        first, again = fake.jobs
        assert again["token"] == first["token"]
        assert (first["attempt"], again["attempt"]) == (1, 2)
        assert "no longer holds it" in caplog.text
        result = {"status": "SUCCESS", "result": {"loss": 1.0, "info": {}}, "exception": None}
        with transport.Connection(d.uri, secret, 5) as worker_side:
            held = [[again["token"], again["attempt"]]]
            for job, holding in ((first, held), (again, [])):  # the first is late: dropped
                worker_side.call("sync", name, uri, {"acked": again["seq"], "held": holding},
                                 [{**result, "token": job["token"], "attempt": job["attempt"]}])
        (job,) = results.wait_for(1)
        assert job.attempt == 2 and job.status is JobStatus.SUCCESS
        d.shutdown()
        assert len(results.jobs) == 1


def test_the_dispatcher_gives_the_workers_it_finds_its_address(cluster):
    """So they connect back while the run starts, not when their first result is due."""
    with fake_workers(cluster, 2) as fakes:
        d, _ = cluster.dispatcher(ping_interval=60)
        wait_until(lambda: d.number_of_workers() == 2, message="the fake workers")
        assert [fake.pinged_by[:1] for _, _, fake in fakes] == [[d.uri], [d.uri]]


def test_a_pinged_worker_connects_back_to_the_dispatcher_at_once(cluster):
    """The pinging address is served but not registered, so no hello can reach it: only the
    ping can have told the worker where to report."""
    cluster.start_workers(1)
    secret = resolve_secret(None, cluster.port)
    ns = cluster.nameserver.client()
    (uri,) = ns.list(transport.worker_prefix(cluster.run_id)).values()
    ns.close()
    elsewhere = transport.Server(ForgetfulWorker(), secret)
    try:
        dispatcher_uri = elsewhere.start()
        with transport.Connection(uri, secret, 5) as worker:
            worker.call("ping", dispatcher_uri)
            wait_until(lambda: worker.call("status")["dispatcher"] == dispatcher_uri,
                       message="the worker to connect to the pinging dispatcher")
    finally:
        elsewhere.shutdown()
