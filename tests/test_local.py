"""A newcomer's first runs on one machine never hang in silence: LocalCluster and minimize refuse
what spawned workers cannot do, notice workers that die at start-up, and a master without workers
says what it waits for and gives up when told to."""
from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import pytest
from ConfigSpace import ConfigurationSpace, Float

from ultrarun.errors import ConfigurationError, UltrarunError
from ultrarun.frontends import HyperBand, minimize
from ultrarun.local import LocalCluster
from workers_for_tests import TestWorker

SPACE = ConfigurationSpace(seed=0, space=[Float("x", (0.0, 1.0))])


def module_level(config, budget):
    return config["x"]


def script(tmp_path, body: str, name: str = "experiment.py") -> subprocess.CompletedProcess:
    """Run ``body`` as a user's script, the way a newcomer runs it."""
    path = tmp_path / name
    path.write_text(textwrap.dedent(body))
    return subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                          timeout=90, cwd=tmp_path)


HEADER = """\
from ConfigSpace import ConfigurationSpace, Float
from ultrarun import minimize

def loss(config, budget):
    return config["x"]

space = ConfigurationSpace(seed=0, space=[Float("x", (0.0, 1.0))])
"""


def test_minimize_without_the_main_guard_fails_fast_with_the_fix(tmp_path):
    out = script(tmp_path, HEADER + "result = minimize(loss, space, 1, 9, n_workers=2, "
                                     "n_iterations=1)\n")
    assert out.returncode == 1
    last = out.stderr.strip().splitlines()[-1]
    assert "experiment.py, line 8" in last and "if __name__ == \"__main__\":" in last
    assert "safe importing of main module" not in out.stderr, "no worker process was started"


def test_minimize_under_the_main_guard_runs(tmp_path):
    out = script(tmp_path, HEADER + """
if __name__ == "__main__":
    result = minimize(loss, space, 1, 9, n_workers=2, n_iterations=1, method="random")
    print("runs:", len(result.get_all_runs()))
""")
    assert out.returncode == 0, out.stderr
    assert "runs: 3" in out.stdout


def test_a_main_guard_around_a_function_that_calls_minimize_is_enough(tmp_path):
    out = script(tmp_path, HEADER + """
def main():
    return minimize(loss, space, 1, 9, n_workers=1, n_iterations=1, method="random")

if "__main__" == __name__:
    print("runs:", len(main().get_all_runs()))
""")
    assert out.returncode == 0, out.stderr
    assert "runs: 3" in out.stdout


def test_a_compute_that_kills_its_worker_process_costs_the_job_not_the_run(tmp_path):
    """A compute that ends its own process (a segfault in a C extension, os._exit, the OOM
    killer) takes its worker with it: the cluster starts the worker again and the job ends LOST
    after its retries, instead of every later job waiting for workers that are gone (it hung
    for good once both workers had died)."""
    out = script(tmp_path, """
import os
from ConfigSpace import ConfigurationSpace, Float
from ultrarun import minimize

def loss(config, budget):
    if config["x"] > 0.7:
        os._exit(3)
    return config["x"]

if __name__ == "__main__":
    space = ConfigurationSpace(seed=0, space=[Float("x", (0.0, 1.0))])
    result = minimize(loss, space, 1, 9, n_workers=2, n_iterations=1, method="hyperband",
                      seed=1)
    runs = result.get_all_runs()
    print("lost:", sum(r.status.name == "LOST" for r in runs), "of", len(runs),
          "best:", result.best_config().loss)
""")
    assert out.returncode == 0, out.stderr[-3000:]
    lost, total, best = out.stdout.split()[1], out.stdout.split()[3], out.stdout.split()[-1]
    assert 0 < int(lost) < int(total), out.stdout
    assert float(best) <= 0.7
    assert "died: exit code 3 while it ran a job; starting it again" in out.stderr


def test_minimize_with_a_lambda_says_define_it_at_module_level():
    with pytest.raises(ConfigurationError) as info:
        minimize(lambda config, budget: config["x"], SPACE, 1, 9, n_workers=1)
    message = str(info.value)
    assert "lambda" in message and "module level" in message and "\n" not in message


def test_minimize_with_a_nested_function_says_define_it_at_module_level():
    def nested(config, budget):
        return config["x"]

    with pytest.raises(ConfigurationError, match="defined inside a function.*module level"):
        minimize(nested, SPACE, 1, 9, n_workers=1)


def test_a_worker_process_that_dies_at_start_up_is_reported_not_waited_for(tmp_path):
    # the worker class rejects this argument in the child process: it exits before registering
    cluster = LocalCluster(n_workers=2, worker_class=TestWorker, working_directory=tmp_path,
                           worker_kwargs={"no_such_argument": 1})
    with pytest.raises(UltrarunError, match=r"exited with code 1 before it registered"):
        cluster.start()
    assert cluster.processes == [], "the cluster stopped what it had started"


def test_local_cluster_returns_once_every_worker_is_registered(tmp_path):
    with LocalCluster(n_workers=2, worker_class=TestWorker, working_directory=tmp_path) as cluster:
        with cluster.nameserver.client() as client:
            assert len(client.list(f"ultrarun.{cluster.run_id}.worker.")) == 2


def test_a_master_without_workers_says_what_it_waits_for_and_gives_up(nameserver, tmp_path,
                                                                        caplog):
    master = HyperBand(SPACE, run_id="exp2", min_budget=1, max_budget=9,
                       nameserver=nameserver.host, nameserver_port=nameserver.port,
                       secret=nameserver.secret, working_directory=tmp_path)
    try:
        with caplog.at_level(logging.INFO, logger="ultrarun.master"):
            with pytest.raises(UltrarunError) as info:
                master.wait_for_workers(4, timeout=0.5, report_every=0.1)
        where = f"run exp2 at {nameserver.host}:{nameserver.port}"
        messages = [r.getMessage() for r in caplog.records]
        assert f"waiting for workers of {where} (0 of 4 so far)" in messages
        still = [r for r in caplog.records if r.getMessage().startswith("still waiting")]
        assert len(still) >= 2 and all(r.levelno == logging.WARNING for r in still)
        assert f"still waiting for workers of {where} (0 of 4 so far," in still[0].getMessage()
        assert str(info.value).startswith(f"gave up waiting for workers of {where} after 0.5 s: "
                                          "0 of 4 registered")
        assert "--run-id exp2" in str(info.value)
        with pytest.raises(UltrarunError, match="gave up waiting for workers"):
            master.run(n_iterations=1, min_n_workers=1, min_n_workers_timeout=0.2)
    finally:
        master.shutdown()
