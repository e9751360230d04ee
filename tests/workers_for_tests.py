"""Worker classes the end-to-end tests start as real processes (``ultrarun worker``)."""
from __future__ import annotations

import itertools
import math
import os
import subprocess
import time
from pathlib import Path

import numpy as np

from runner_helpers_targets import forged_answer, write_on_pipes
from ultrarun.worker import Worker


class TestWorker(Worker):
    """Behaviour chosen per job by the config, so one worker class covers every test."""

    __test__ = False  # not a pytest class

    def compute(self, config_id, config, budget, working_directory, **kwargs):
        if "marker" in config:  # tell the test which process runs this job, then work
            Path(config["marker"]).write_text(str(os.getpid()))
        if "sleep" in config:
            time.sleep(config["sleep"])
        if "block_once" in config:  # the first attempt blocks (to be killed), a re-run does not
            try:  # created atomically: of two jobs that start together, one blocks
                fd = os.open(config["block_once"], os.O_WRONLY | os.O_CREAT | os.O_EXCL)
            except FileExistsError:
                pass
            else:
                with os.fdopen(fd, "w") as flag:
                    flag.write(str(os.getpid()))
                time.sleep(60)
        if config.get("mode") == "crash":
            raise ValueError("crash on purpose")
        if "raise" in config:
            raise ValueError(config["raise"])
        if "exit" in config:
            os._exit(config["exit"])
        if "alloc_mb" in config:
            block = np.ones(int(config["alloc_mb"]) * 1024 * 1024 // 8)
            return {"loss": float(block.sum()), "info": {}}
        junk = config.get("junk")
        if junk == "string":
            return "not a dict"
        if junk == "noloss":
            return {"info": {}}
        if junk == "nan":
            return {"loss": math.nan, "info": {}}
        if junk == "strloss":
            return {"loss": "low", "info": {}}
        if junk == "object":
            return {"loss": 1.0, "info": {"model": object()}}
        if junk == "bigint":  # travels (marshal), but JSON cannot write it
            return {"loss": 1.0, "info": {"big": 10 ** 5000}}
        if junk == "tuplekey":
            return {"loss": 1.0, "info": {(1, 2): "pair"}}
        if "big_info" in config:  # an answer larger than the message size limit
            return {"loss": 1.0, "info": {"blob": "x" * config["big_info"]}}
        if config.get("echo"):  # send back what arrived, to check its exact shape (its repr:
            # a result is JSON-writable, so it holds no int keys)
            return {"loss": 0.0, "info": {"config_id": config_id, "config": repr(config)}}
        if config.get("numpy"):
            return {"loss": np.float32(0.5), "info": {"curve": np.arange(3, dtype=np.int64),
                                                       "best": np.float64(0.25),
                                                       "name": np.str_("x")}}
        return {"loss": float(config.get("x", 0.0)) * float(budget),
                "info": {"pid": os.getpid(), "config_id": config_id,
                         "types": {k: type(v).__name__ for k, v in config.items()},
                         "budget_type": type(budget).__name__, "kwargs": sorted(kwargs)}}


class ProcessWorker(Worker):
    """Computes that misbehave with processes (tests/test_limits.py); the loss is 2 x + 1."""

    __test__ = False

    def compute(self, config_id, config, budget, working_directory, **kwargs):
        loss = 2.0 * config["x"] + 1.0
        fork = config.get("fork")
        copy = os.fork() if fork else None
        if copy == 0:  # the copy answers otherwise (returns or raises)
            if fork == "raise":
                raise ValueError("the copy raises")
            if fork == "forge":  # a forged answer written below any Python-level guard
                write_on_pipes(forged_answer({"loss": -1.0, "info": {"forged": True}}))
                os._exit(0)
            return {"loss": -1.0, "info": {"copy": True}}
        if fork == "forge":
            os.waitpid(copy, 0)
        if "spawn" in config:  # a grandchild that would outlive the job; pids in a file
            proc = subprocess.Popen(["sleep", "300"])
            Path(config["spawn"] + ".tmp").write_text(f"{proc.pid} {os.getpid()}")
            os.replace(config["spawn"] + ".tmp", config["spawn"])
            if config.get("busy_in_c"):  # one C call that holds the GIL and never checks signals
                sum(itertools.repeat(1, 10 ** 13))
            time.sleep(300)
        return {"loss": loss, "info": {"pid": os.getpid()}}


class UltraoptWorker(Worker):
    """ultraopt's signature, with config_info."""

    def compute(self, config_id, config, config_info, budget, working_directory):
        return {"loss": float(budget), "info": {"config_info": config_info}}


class KwargsWorker(Worker):
    """HpBandSter examples write compute(self, config, budget, **kwargs)."""

    def compute(self, config, budget, **kwargs):
        return {"loss": config["x"] ** 2, "info": {"kwargs": sorted(kwargs)}}
