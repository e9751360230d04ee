"""How fast `ultrarun dashboard` shows a run: page load and server memory with N results, and the
time from a result written to the logs to it shown on the open page.

    python scripts/bench/dashboard.py [--results 100 100000] [--appends 10]

For each N: writes N results with ultrarun's own result logger (a Hyperband-like run on budgets
1, 3, 9 with an lr, an optimizer and a layers parameter; every seventh run crashes), starts
`ultrarun dashboard DIR` as its own process (the command a user runs), opens the page in headless
chromium (Playwright, the system chromium) and times the page until it shows N runs, the loss
figure, the parallel coordinates and the first page of the table. Then appends one result at a
time (each a new incumbent), timing from the write until the page shows it, ``--appends``
times. Prints one JSON line per N: load seconds, the server's resident memory after the load
(RSS) and at its peak (VmHWM), the sizes of the first figures response, and the latencies.
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from _common import emit
from ultrarun.job import Job, JobStatus
from ultrarun.results import json_result_logger

BROWSER_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def write_run(directory: Path, n: int) -> json_result_logger:
    logger = json_result_logger(directory, fsync=False)
    logger.open("overwrite")
    for k in range(n):
        budget, index = (1.0, 3.0, 9.0)[k % 3], k // 3
        config_id = (index // 30, 0, index % 30)
        lr = 10.0 ** (-5 + 4 * ((index * 0.618) % 1))
        config = {"lr": lr, "optimizer": ("adam", "sgd")[index % 2], "layers": 1 + index % 4}
        logger.new_config(config_id, config, {})
        failed = k % 7 == 6
        loss = abs(math.log10(lr) + 3) + 1.0 / budget + 0.01 * (k % 5)
        logger(Job(id=config_id, kwargs={"config": config, "budget": budget, "working_directory": "."},
                   status=JobStatus.CRASHED if failed else JobStatus.SUCCESS,
                   result=None if failed else {"loss": loss, "info": {}},
                   exception="Traceback ...\nValueError: diverged" if failed else None,
                   timestamps={"submitted": 1000.0 + k * 0.01, "started": 1000.0 + k * 0.01 + 0.002,
                               "finished": 1000.0 + k * 0.01 + 0.005 * budget}))
    return logger


def memory(pid: int) -> dict[str, float]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields


def measure(n: int, appends: int) -> dict:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp) / "run"
        started = time.perf_counter()
        logger = write_run(directory, n)
        write_s = time.perf_counter() - started
        server = subprocess.Popen([sys.executable, "-m", "ultrarun", "dashboard", str(directory)],
                                  stdout=subprocess.PIPE, text=True)
        try:
            url = server.stdout.readline().split("open ", 1)[1].strip()
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=BROWSER_ARGS)
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.set_default_timeout(300_000)
                t = time.perf_counter()
                page.goto(url)
                page.wait_for_function(f"document.getElementById('n-runs').textContent === '{n}'")
                summary_s = time.perf_counter() - t
                page.wait_for_selector("#fig-losses .main-svg")
                page.wait_for_selector("#fig-parallel .main-svg")
                page.wait_for_selector("#runs-table tbody tr")
                load_s = time.perf_counter() - t
                mem = memory(server.pid)
                with urllib.request.urlopen(url.split("?")[0] + "api/figures") as r:
                    figures_kb = len(r.read()) / 1024
                latencies = []
                for i in range(appends):
                    config_id = (10**6 + i, 0, 0)
                    loss = 1e-3 / (i + 1)  # a new incumbent every time
                    logger.new_config(config_id, {"lr": 1e-3, "optimizer": "adam", "layers": 2})
                    now = time.time()
                    t = time.perf_counter()
                    logger(Job(id=config_id, kwargs={"config": {}, "budget": 9.0, "working_directory": "."},
                               status=JobStatus.SUCCESS, result={"loss": loss, "info": {}},
                               timestamps={"submitted": now, "started": now, "finished": now}))
                    page.wait_for_function(
                        f"document.getElementById('n-runs').textContent === '{n + i + 1}'",
                        polling=20)
                    latencies.append(time.perf_counter() - t)
                    page.wait_for_timeout(300)  # appends at a human pace, not in a burst
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)
    return {"results": n, "load_average": round(os.getloadavg()[0], 1), "write_logs_s": round(write_s, 2), "summary_shown_s": round(summary_s, 2),
            "page_load_s": round(load_s, 2), "server_rss_mb": round(mem["VmRSS"], 1),
            "server_peak_mb": round(mem["VmHWM"], 1), "figures_kb": round(figures_kb),
            "shown_after_write_s": {"median": round(statistics.median(latencies), 3),
                                    "max": round(max(latencies), 3)} if latencies else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=int, nargs="+", default=[100, 100_000])
    parser.add_argument("--appends", type=int, default=10)
    args = parser.parse_args()
    for n in args.results:
        emit(**measure(n, args.appends))


if __name__ == "__main__":
    main()
