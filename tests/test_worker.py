"""Workers in this process (threads) and their compute processes: contracts and limits."""
from __future__ import annotations

import os
import subprocess
import sys
import threading

import pytest

from conftest import Collector, wait_until
from ultrarun import transport
from ultrarun.settings import settings
from ultrarun.dispatcher import Dispatcher
from ultrarun.errors import ConfigurationError, NameServerError
from ultrarun.job import JobStatus
from ultrarun.worker import Worker
from workers_for_tests import TestWorker


def square(config, budget):
    return (config["x"] - 1) ** 2 * budget


def square_dict(config, budget, config_id=None):
    return {"loss": float(config["x"]), "info": {"config_id": config_id}}


@pytest.fixture
def run(nameserver):
    """A dispatcher on the name server, plus a way to start in-process workers."""
    results = Collector()
    dispatcher = Dispatcher(results, run_id=nameserver.run_id, nameserver=nameserver.host,
                            nameserver_port=nameserver.port, ping_interval=0.25, timeout=2)
    workers: list[Worker] = []

    def start(worker: Worker, concurrent_type: str = "thread") -> Worker:
        workers.append(worker)
        worker.run(background=True, concurrent_type=concurrent_type)
        return worker

    try:
        dispatcher.start()
        yield nameserver, dispatcher, results, start
    finally:
        dispatcher.shutdown()
        for w in workers:
            w.shutdown()


def make(cls, nameserver, **kwargs):
    return cls(nameserver.run_id, nameserver=nameserver.host, nameserver_port=nameserver.port,
               **kwargs)


def test_initialize_turns_a_function_into_a_worker(run):
    ns, d, results, start = run
    start(make(Worker, ns).initialize(square))
    start(make(Worker, ns, worker_id="dict").initialize(square_dict))
    wait_until(lambda: d.number_of_workers() == 2, message="2 workers")
    for i in range(6):
        d.submit_job((0, 0, i), config={"x": i}, budget=2.0)
    jobs = results.wait_for(6)
    assert all(j.status is JobStatus.SUCCESS for j in jobs), [j.exception for j in jobs]
    for job in jobs:
        x = job.kwargs["config"]["x"]
        assert job.result["loss"] in ((x - 1) ** 2 * 2.0, float(x))
        if job.result["info"]:
            assert tuple(job.result["info"]["config_id"]) == job.id


def test_worker_without_compute_reports_what_to_do(run):
    ns, d, results, start = run
    start(make(Worker, ns))
    d.submit_job("x", config={}, budget=1.0)
    job = results.wait_for(1)[0]
    assert job.status is JobStatus.CRASHED
    assert "override compute(), or call worker.initialize" in job.exception


def test_process_mode_runs_compute_in_a_child_and_survives_its_death(run):
    ns, d, results, start = run
    worker = start(make(TestWorker, ns), concurrent_type="process")
    d.submit_job("child", config={"x": 1}, budget=1.0)
    d.submit_job("dies", config={"exit": 3}, budget=1.0)
    d.submit_job("after", config={"x": 2}, budget=1.0)
    results.wait_for(3)
    by_id = results.by_id()
    assert by_id["child"].result["info"]["pid"] != os.getpid()
    assert by_id["dies"].status is JobStatus.CRASHED
    assert "exited with code 3" in by_id["dies"].exception
    assert by_id["after"].status is JobStatus.SUCCESS
    assert worker._rt is not None and not worker._rt.stopped.is_set()


def test_time_limit_gives_timeout_and_the_worker_goes_on(run):
    ns, d, results, start = run
    start(make(TestWorker, ns, time_limit=0.5), concurrent_type="process")
    d.submit_job("slow", config={"sleep": 30}, budget=1.0)
    d.submit_job("fast", config={"x": 1}, budget=1.0)
    results.wait_for(2, timeout=30)
    by_id = results.by_id()
    assert by_id["slow"].status is JobStatus.TIMEOUT
    assert "time limit of 0.5 s" in by_id["slow"].exception
    assert by_id["fast"].status is JobStatus.SUCCESS
    slow = by_id["slow"].timestamps
    assert slow["finished"] - slow["started"] < 10


def test_memory_limit_gives_memout(run):
    ns, d, results, start = run
    start(make(TestWorker, ns, memory_limit=400), concurrent_type="process")
    d.submit_job("hog", config={"alloc_mb": 2000}, budget=1.0)
    d.submit_job("fine", config={"alloc_mb": 10}, budget=1.0)
    results.wait_for(2, timeout=30)
    by_id = results.by_id()
    assert by_id["hog"].status is JobStatus.MEMOUT, by_id["hog"].exception
    assert "MemoryError" in by_id["hog"].exception
    assert by_id["fine"].status is JobStatus.SUCCESS


def test_limits_need_process_mode_and_types_are_checked(nameserver):
    with pytest.raises(ConfigurationError, match="concurrent_type='process'"):
        make(TestWorker, nameserver, time_limit=1).run(background=True)
    with pytest.raises(ConfigurationError, match="concurrent_type must be one of"):
        make(TestWorker, nameserver).run(background=True, concurrent_type="fiber")
    with pytest.raises(ConfigurationError, match="timeout must be a positive number"):
        make(TestWorker, nameserver, timeout=-1)


def test_idle_timeout_shuts_the_worker_down_and_unregisters_it(nameserver):
    worker = make(TestWorker, nameserver, timeout=0.3)
    done = threading.Event()
    thread = threading.Thread(target=lambda: (worker.run(background=False), done.set()))
    thread.start()
    assert done.wait(10), "the foreground run() should return after the idle timeout"
    thread.join(5)
    client = nameserver.client()
    assert client.list(transport.worker_prefix(nameserver.run_id)) == {}
    client.close()


def test_load_nameserver_credentials(nameserver, tmp_path):
    worker = Worker(nameserver.run_id)
    worker.load_nameserver_credentials(nameserver.working_directory, num_tries=1)
    assert (worker.nameserver, worker.nameserver_port, worker.secret) == \
        (nameserver.host, nameserver.port, nameserver.secret)
    with pytest.raises(NameServerError, match="no credentials file"):
        Worker("other").load_nameserver_credentials(tmp_path / "empty", num_tries=2,
                                                    interval=0.01)


def test_no_nameserver_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(settings._values, "NAMESERVER_WAIT", 0.3)
    worker = Worker("lonely", nameserver="127.0.0.1", nameserver_port=1)
    with pytest.raises(NameServerError, match="no name server at 127.0.0.1:1"):
        worker.run(background=True)


def test_shutdown_is_idempotent_and_busy_is_reported(run, tmp_path):
    ns, d, results, start = run
    worker = start(make(TestWorker, ns))
    assert not worker.is_busy()
    marker = tmp_path / "running"
    d.submit_job("busy", config={"marker": str(marker), "sleep": 3.0, "x": 1}, budget=1.0)
    wait_until(marker.exists, timeout=30, message="the job to start")
    assert worker.is_busy(), "a worker in compute says it is busy"
    assert results.wait_for(1, timeout=30)[0].status is JobStatus.SUCCESS
    wait_until(lambda: not worker.is_busy(), timeout=10, message="the worker to be idle")
    worker.shutdown()
    worker.shutdown()
    assert worker._rt.stopped.is_set() and not worker.is_busy()


def test_time_limit_does_not_count_the_compute_process_start_up(run):
    ns, d, results, start = run
    start(make(TestWorker, ns, time_limit=0.3), concurrent_type="process")
    d.submit_job("first", config={"x": 1}, budget=1.0)  # the process starts for this job
    job = results.wait_for(1, timeout=60)[0]
    assert job.status is JobStatus.SUCCESS, job.exception


def test_restarted_nameserver_learns_the_workers_and_dispatcher_again(tmp_path, monkeypatch):
    from ultrarun.nameserver import NameServer

    monkeypatch.setitem(settings._values, "PING_INTERVAL", 0.1)
    first = NameServer("restart", secret="s3", working_directory=tmp_path)
    host, port = first.start()
    results = Collector()
    worker = TestWorker("restart", nameserver=host, nameserver_port=port, secret="s3")
    dispatcher = Dispatcher(results, run_id="restart", nameserver=host, nameserver_port=port,
                            secret="s3", ping_interval=0.1, timeout=1)
    second = NameServer("restart", secret="s3", port=port)
    try:
        worker.run(background=True)
        dispatcher.start()
        wait_until(lambda: dispatcher.number_of_workers() == 1, message="the worker")
        first.shutdown()
        second.start()  # same port, empty phone book
        client = second.client()
        wait_until(lambda: set(client.list("ultrarun.restart.")) ==
                   {worker.worker_name, "ultrarun.restart.dispatcher"}, timeout=10,
                   message="worker and dispatcher to register again")
        client.close()
        dispatcher.submit_job("after", config={"x": 3}, budget=1.0)
        assert results.wait_for(1)[0].status is JobStatus.SUCCESS
    finally:
        dispatcher.shutdown()
        worker.shutdown()
        second.shutdown()
        first.shutdown()


def test_a_worker_class_of_the_main_script_runs_in_process_mode(tmp_path):
    """The compute child finds a class defined in the user's ``__main__`` (the script runs there
    as ``__mp_main__``, behind its main guard, as with multiprocessing)."""
    script = tmp_path / "main_worker.py"
    script.write_text(
        "import os, threading\n"
        "from ultrarun import Dispatcher, NameServer, Worker\n"
        "class Here(Worker):\n"
        "    def compute(self, config, budget, **kwargs):\n"
        "        return {'loss': budget, 'info': {'pid': os.getpid()}}\n"
        "if __name__ == '__main__':\n"
        "    with NameServer('main') as ns:\n"
        "        w = Here('main', nameserver=ns.host, nameserver_port=ns.port, time_limit=30)\n"
        "        w.run(background=True, concurrent_type='process')\n"
        "        done, got = threading.Event(), []\n"
        "        def back(job):\n"
        "            got.append(job); done.set()\n"
        "        with Dispatcher(back, run_id='main', nameserver=ns.host,\n"
        "                        nameserver_port=ns.port) as d:\n"
        "            d.submit_job(1, config={}, budget=2.0)\n"
        "            assert done.wait(60)\n"
        "        w.shutdown()\n"
        "        job = got[0]\n"
        "        print(job.status.name, job.result['loss'], job.result['info']['pid'] != os.getpid())\n")
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["SUCCESS", "2.0", "True"]
