"""``ultrarun dashboard``: the run's logs followed as they grow (HpBandSter's own included), the
views as data, the HTTP server's safety (token, Host, read-only, nothing but its routes), the
dispatcher's workers, and the page itself in a real headless chromium driven by Playwright."""
from __future__ import annotations

import http.client
import json
import math
import os
import shutil
import warnings
from pathlib import Path
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import wait_until
from ultrarun.dashboard import Dashboard, RunLog
from ultrarun.dashboard._views import (Filters, figures, incumbent_trajectory, ped_anova, summary,
                                       table)
from ultrarun.job import Job, JobStatus
from ultrarun.journal import Journal
from ultrarun.results import json_result_logger, logged_results_to_HBS_result

HPBANDSTER_RUN = Path(__file__).parent / "data" / "hpbandster-0.7.4" / "run"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SECRET = "s3cr3t-" + "ab" * 20


def log_runs(directory: Path, n: int, start: int = 0, t0: float = 1_000.0,
             logger: json_result_logger | None = None) -> json_result_logger:
    """``n`` runs as a Hyperband-like run logs them: configurations on budgets 1, 3, 9; every
    seventh run crashes with a traceback; lr on a log scale, an optimizer category; the loss
    depends on lr (and the budget) only."""
    if logger is None:
        logger = json_result_logger(directory, fsync=False)
        logger.open("resume")  # append to the logs there are
    for k in range(start, start + n):
        budget, index = (1.0, 3.0, 9.0)[k % 3], k // 3  # each configuration on three budgets
        config_id = (index // 30, 0, index % 30)
        lr = 10.0 ** (-5 + 4 * ((index * 0.618) % 1))
        config = {"lr": lr, "optimizer": ("adam", "sgd")[index % 2], "<b>layers</b>": 1 + index % 4}
        logger.new_config(config_id, config, {"model_based_pick": k % 2 == 0})
        failed = k % 7 == 6
        loss = abs(math.log10(lr) + 3) + 1.0 / budget + 0.01 * (k % 5)
        logger(Job(id=config_id, kwargs={"config": config, "budget": budget, "working_directory": "."},
                   status=JobStatus.CRASHED if failed else JobStatus.SUCCESS,
                   result=None if failed else {"loss": loss, "info": {}},
                   exception=f"Traceback (most recent call last):\nValueError: diverged at {k}"
                   if failed else None, worker_name=f"worker.{k % 4}",
                   timestamps={"submitted": t0 + k, "started": t0 + k + 0.25, "finished": t0 + k + 1 + budget}))
    return logger


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "run"
    log_runs(directory, 60)
    (directory / "ultrarun-x.credentials.json").write_text(json.dumps({"secret": SECRET}))
    return directory


def get(dashboard: Dashboard, path: str, host: str | None = None,
        method: str = "GET") -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(dashboard.host, dashboard.port, timeout=30)
    try:
        headers = {} if host is None else {"Host": host}
        conn.request(method, path, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def api(dashboard: Dashboard, path: str) -> dict:
    token = f"{'&' if '?' in path else '?'}token={dashboard.token}" if dashboard.token else ""
    status, body = get(dashboard, path + token)
    assert status == 200, body
    return json.loads(body)


# ------------------------------------------------------------------------------ following logs
def test_the_logs_of_hpbandster_itself_read_as_its_own_loader_reads_them():
    log = RunLog(HPBANDSTER_RUN)
    assert log.update()
    result = logged_results_to_HBS_result(HPBANDSTER_RUN)
    assert len(log.runs) == len(result.get_all_runs()) > 0
    assert {b: (log.incumbents.ids[b], log.incumbents.losses[b]) for b in log.incumbents.losses} \
        == result.get_incumbents_per_budget()
    ours = incumbent_trajectory(log, log.runs)
    theirs = result.get_incumbent_trajectory()
    assert ours["config_ids"] == theirs["config_ids"] and ours["losses"] == theirs["losses"]
    assert [t - log.t0 for t in ours["times_finished"]] == pytest.approx(theirs["times_finished"])
    assert not log.update()  # nothing new


def test_a_growing_log_is_followed_and_a_half_written_line_waits_for_its_end(tmp_path):
    directory = tmp_path / "run"
    logger = log_runs(directory, 5)
    log = RunLog(directory)
    log.update()
    assert len(log.runs) == 5
    line = json.dumps([[9, 9, 9], 1.0, {"submitted": 1.0, "started": 1.0, "finished": 2.0},
                       {"loss": 0.5, "info": {}}, None])
    with open(directory / "results.json", "a") as fh:
        fh.write(line[:20])
        fh.flush()
        assert not log.update() and len(log.runs) == 5
        fh.write(line[20:] + "\n")
    assert log.update() and len(log.runs) == 6 and log.runs[-1].loss == 0.5
    log_runs(directory, 3, start=5, logger=logger)
    log.update()
    assert len(log.runs) == 9
    assert len(log.runs) == len(logged_results_to_HBS_result(directory).get_all_runs())


def test_a_run_that_starts_over_in_the_same_directory_is_read_again(tmp_path):
    directory = tmp_path / "run"
    log_runs(directory, 20)
    log = RunLog(directory)
    log.update()
    assert len(log.runs) == 20
    for name in ("configs.json", "results.json", "statuses.json"):
        (directory / name).unlink()
    log_runs(directory, 4, t0=5_000.0)
    log.update()
    assert len(log.runs) == 4 and log.t0 == 5_000.0


def test_a_log_that_is_a_symbolic_link_or_a_fifo_is_not_read(tmp_path):
    directory = tmp_path / "run"
    directory.mkdir()
    elsewhere = tmp_path / "elsewhere.json"
    log_runs(tmp_path / "other", 3)
    shutil.copy(tmp_path / "other" / "results.json", elsewhere)
    (directory / "configs.json").write_text("")
    os.symlink(elsewhere, directory / "results.json")
    log = RunLog(directory)
    log.update()
    assert log.runs == []
    os.unlink(directory / "results.json")
    os.mkfifo(directory / "results.json")  # a reader of a FIFO would wait for a writer forever
    log.update()
    assert log.runs == []


def test_a_directory_with_only_the_masters_journal_is_read_from_it(tmp_path):
    journal = Journal(tmp_path / "ultrarun-exp.journal.jsonl")
    journal.open()
    journal.write({"t": "header", "run_id": "exp", "optimizer": "TPE", "budgets": [1.0, 3.0, 9.0]})
    for i, budget in enumerate((1.0, 1.0, 3.0)):
        journal.write({"t": "config", "id": (0, 0, i), "config": {"x": i}, "info": {}})
        journal.write({"t": "result", "id": (0, 0, i), "budget": budget, "status": "SUCCESS",
                       "result": {"loss": 3.0 - i, "info": {}}, "exception": None,
                       "timestamps": {"submitted": 10.0 + i, "started": 10.5 + i, "finished": 11.0 + i},
                       "worker": "w1"})
    journal.close()
    log = RunLog(tmp_path)
    log.update()
    assert log.source == "ultrarun-exp.journal.jsonl"
    assert len(log.runs) == 3 and log.budgets == [1.0, 3.0, 9.0] and log.max_budget == 9.0
    assert log.incumbents.best() == (3.0, 1.0, (0, 0, 2))
    assert log.worker == ["w1"] * 3


JSON = st.recursive(st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=True)
                    | st.text(max_size=5),
                    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(
                        st.sampled_from(["loss", "info", "status", "finished", "started",
                                         "submitted", "x"]), inner, max_size=4), max_leaves=12)
LINE = st.lists(JSON, min_size=0, max_size=6) | st.builds(
    lambda i, b, f, loss: [[0, 0, i], b, {"submitted": 0.0, "started": 0.5, "finished": f},
                           {"loss": loss, "info": {}}, None],
    st.integers(0, 3), st.sampled_from([1.0, 3.0, "3", None]), st.floats(allow_nan=True),
    st.floats(allow_nan=True) | st.none() | st.text(max_size=3))


@given(st.lists(LINE, max_size=8), st.lists(LINE, max_size=8), st.lists(LINE, max_size=8))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_whatever_the_logs_hold_the_dashboard_reads_them_without_failing(tmp_path, configs, results, statuses):
    directory = tmp_path / "fuzz"
    directory.mkdir(exist_ok=True)
    for name, lines in (("configs.json", configs), ("results.json", results), ("statuses.json", statuses)):
        (directory / name).write_text("".join(json.dumps(line) + "\n" for line in lines))
    log = RunLog(directory)
    log.update()
    assert len(log.runs) <= len(results)
    json.dumps(figures(log, Filters()), allow_nan=True)
    table(log, Filters(), sort="loss")
    summary(log)


def test_a_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a directory"):
        RunLog(tmp_path / "nope")


# ------------------------------------------------------------------------------ the views
def test_the_table_sorts_filters_searches_and_pages(run_dir):
    log = RunLog(run_dir)
    log.update()
    everything = table(log, Filters(), limit=500)
    assert everything["total"] == 60
    by_loss = table(log, Filters(), sort="loss", descending=False, limit=5)["rows"]
    best = min(r.loss for r in log.runs if r.loss is not None)
    assert by_loss[0]["loss"] == best
    failed = table(log, Filters(statuses=frozenset({"CRASHED"})), limit=500)
    assert failed["total"] == sum(1 for k in range(60) if k % 7 == 6)
    assert all("ValueError: diverged" in r["error"] for r in failed["rows"])
    assert table(log, Filters(), search="diverged at 13")["total"] == 1
    on_9 = table(log, Filters(budgets=frozenset({9.0})), offset=10, limit=5)
    assert on_9["total"] == 20 and len(on_9["rows"]) == 5 and {r["budget"] for r in on_9["rows"]} == {9.0}
    descending = table(log, Filters(), sort="loss", descending=True, limit=500)["rows"]
    assert descending[-1]["loss"] is None  # failed runs (no loss) come last either way


def test_importance_finds_the_one_parameter_the_loss_depends_on(run_dir):
    log_runs(run_dir, 300, start=60)
    log = RunLog(run_dir)
    log.update()
    fig = figures(log, Filters())["importance"]
    scores = fig["meta"]["scores"]
    assert fig["meta"]["method"] == "PED-ANOVA"
    assert max(scores, key=scores.get) == "lr" and scores["lr"] > 0.5
    assert sum(scores.values()) == pytest.approx(1.0)


def test_ped_anova_of_a_parameter_that_does_not_matter_is_near_zero():
    import random

    rng = random.Random(0)
    xs = [rng.random() for _ in range(400)]
    noise = [rng.random() for _ in range(400)]
    scores = ped_anova({"x": {"numeric": True, "log": False, "values": xs},
                        "noise": {"numeric": True, "log": False, "values": noise}},
                       [x for x in xs])
    assert scores["x"] > 0.9 > 0.1 > scores["noise"]


def test_log_axes_follow_the_space_and_large_runs_are_downsampled(tmp_path):
    import ConfigSpace as CS

    directory = tmp_path / "run"
    log_runs(directory, 9_000)
    space = CS.ConfigurationSpace()
    space.add(CS.UniformFloatHyperparameter("lr", 1e-5, 1e-1, log=False))  # says: linear
    space.to_json(directory / "configspace.json")
    with Dashboard(directory) as dashboard:
        figs = json.loads(dashboard.figures_json(Filters()))["figures"]
    params = {p["name"]: p for p in figs["parameters"]}
    assert params["lr"]["log"] is False  # the space wins over the values' spread
    assert params["<b>layers</b>"]["figure"]["layout"]["xaxis"]["title"]["text"] == "&lt;b&gt;layers&lt;/b&gt;"
    points = sum(len(t["x"]) for t in figs["losses"]["data"] if t.get("mode") == "markers")
    assert points <= 3_000 + 500
    shown = sum(t["meta"]["shown"] for t in figs["losses"]["data"] if t.get("meta"))
    assert shown < sum(t["meta"]["total"] for t in figs["losses"]["data"] if t.get("meta"))
    hover = next(t for t in figs["losses"]["data"] if t.get("mode") == "markers")["text"][0]
    assert "lr = " in hover and "optimizer = " in hover and "&lt;b&gt;layers&lt;/b&gt; = " in hover
    budgets = figs["correlation"]["meta"]["cells"]
    assert len(budgets) == 3 and all(c["rho"] is not None and c["rho"] > 0.9 for c in budgets)


@given(st.lists(st.tuples(st.integers(0, 4), st.floats(-3, 3)), min_size=3, max_size=40))
@settings(max_examples=100, deadline=None)
def test_the_rank_correlation_shown_is_scipys_spearman_ties_included(pairs):
    from scipy.stats import spearmanr

    from ultrarun.visualization import spearman

    ours = spearman([(float(a), b) for a, b in pairs])
    with warnings.catch_warnings():  # scipy warns about a constant side; we say NaN
        warnings.simplefilter("ignore")
        theirs = spearmanr([a for a, _ in pairs], [b for _, b in pairs]).statistic
    assert (math.isnan(ours) and math.isnan(theirs)) or ours == pytest.approx(theirs, abs=1e-9)


@given(st.dictionaries(st.sampled_from(["budgets", "statuses", "sort", "order", "offset", "limit", "q"]),
                       st.text(max_size=12), max_size=5))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_query_gets_an_answer_or_a_400_never_a_crash(shared_dashboard, query):
    path = "/api/runs?" + "&".join(f"{quote(k)}={quote(v)}" for k, v in query.items())
    status, body = get(shared_dashboard, path)
    assert status in (200, 400), body
    assert SECRET.encode() not in body


@pytest.fixture(scope="module")
def shared_dashboard(tmp_path_factory):
    directory = tmp_path_factory.mktemp("shared") / "run"
    log_runs(directory, 60)
    (directory / "ultrarun-x.credentials.json").write_text(json.dumps({"secret": SECRET}))
    with Dashboard(directory) as dashboard:
        yield dashboard


# ------------------------------------------------------------------------------ safety
@given(st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=40))
@settings(max_examples=80, deadline=None)
def test_no_path_serves_a_file_of_the_directory_or_outside_it(shared_dashboard, path):
    for candidate in ("/" + path, "/static/../" + path, "/..%2f" + path):
        status, body = get(shared_dashboard, quote(candidate, safe="/%?=&"))
        assert SECRET.encode() not in body
        assert b"root:" not in body
        if status == 200:  # http.server makes "//x" "/x" (no open redirect): the same route
            assert "/" + candidate.split("?")[0].lstrip("/") in ("/", "/static/dashboard.js", "/static/dashboard.css",
                                               "/static/plotly.min.js", "/api/poll", "/api/figures",
                                               "/api/runs")


def test_only_reading_is_allowed(shared_dashboard):
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        status, _ = get(shared_dashboard, "/api/poll", method=method)
        assert status == 405


def test_bound_to_loopback_it_answers_only_to_its_own_host_name(shared_dashboard):
    port = shared_dashboard.port
    assert shared_dashboard.token is None and shared_dashboard.url.startswith("http://127.0.0.1:")
    assert get(shared_dashboard, "/api/poll", host=f"localhost:{port}")[0] == 200
    assert get(shared_dashboard, "/api/poll", host=f"evil.example:{port}")[0] == 403  # rebinding


def test_bound_beyond_loopback_every_request_needs_the_token(run_dir):
    with Dashboard(run_dir, host="127.0.0.2") as dashboard:
        token = dashboard.token
        assert token and len(token) >= 24 and f"token={token}" in dashboard.url
        for path in ("/", "/api/poll", "/api/runs", "/static/plotly.min.js"):
            assert get(dashboard, path)[0] == 403
            assert get(dashboard, f"{path}?token={token[:-1]}x")[0] == 403
            assert get(dashboard, f"{path}?token={token}")[0] == 200
    with Dashboard(run_dir, host="127.0.0.2") as other:
        assert other.token != token  # random per start


def test_a_secret_in_an_error_message_is_not_shown(cluster, tmp_path):
    directory = tmp_path / "leaky"
    logger = json_result_logger(directory, fsync=False)
    logger.new_config((0, 0, 0), {"x": 1})
    secret = cluster.nameserver.secret
    logger(Job(id=(0, 0, 0), kwargs={"config": {"x": 1}, "budget": 1.0, "working_directory": "."},
               status=JobStatus.CRASHED, result=None, exception=f"Error: bad key {secret}",
               timestamps={"submitted": 1.0, "started": 1.0, "finished": 2.0}))
    with Dashboard(directory, run_id=cluster.run_id, working_dir=cluster.dir) as dashboard:
        status, body = get(dashboard, "/api/runs")
    assert status == 200 and secret.encode() not in body and b"bad key [secret]" in body


@pytest.mark.slow
def test_the_dispatchers_workers_and_queue_are_shown(cluster, tmp_path, page):
    cluster.start_workers(2)
    d, results = cluster.dispatcher()
    wait_until(lambda: d.number_of_workers() == 2, timeout=30, message="2 workers")
    marker = cluster.marker("dash")
    d.submit_job((0, 0, 7), config={"marker": str(marker), "sleep": 30}, budget=9.0)
    d.submit_job((0, 0, 1), config={"x": 1}, budget=1.0)
    wait_until(marker.exists, timeout=30, message="the long job to start")
    wait_until(lambda: len(results.jobs) == 1, timeout=30, message="the quick job")
    directory = tmp_path / "results"
    directory.mkdir()
    with Dashboard(directory, run_id=cluster.run_id, working_dir=cluster.dir,
                   dispatcher_interval=0.2) as dashboard:
        def connected():
            snap = api(dashboard, "/api/poll").get("dispatcher", {})
            return snap if snap.get("connected") and snap.get("dispatcher") else None
        snap = wait_until(connected, timeout=30, message="the dashboard to reach the dispatcher")
        poll_body = get(dashboard, "/api/poll")[1]
        page.goto(dashboard.url)
        page.wait_for_function("document.querySelectorAll('#workers tbody tr').length === 2")
        assert "running 1" in page.text_content("#dispatcher-summary")
        assert page.is_visible("#dispatcher") and page.errors == []
    assert snap["dispatcher"]["running"] == 1 and snap["dispatcher"]["finished"] == {"SUCCESS": 1}
    assert sorted(w["state"] for w in snap["workers"]) == ["busy", "idle"]
    busy = next(w for w in snap["workers"] if w["state"] == "busy")
    assert busy["pid"] == int(marker.read_text()) and busy["job"]["budget"] == 9.0
    assert cluster.nameserver.secret.encode() not in poll_body


def test_the_command_serves_until_interrupted_and_prints_the_url_with_its_token(run_dir):
    import signal
    import subprocess
    import sys
    import urllib.request

    proc = subprocess.Popen([sys.executable, "-m", "ultrarun", "dashboard", str(run_dir),
                             "--host", "127.0.0.2"], stdout=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        assert "read-only" in first and "?token=" in first, first
        url = first.split("open ", 1)[1].strip()
        base, token = url.split("?token=")
        with urllib.request.urlopen(f"{base}api/poll?token={token}", timeout=30) as response:
            assert json.loads(response.read())["summary"]["runs"] == 60
        with pytest.raises(urllib.error.HTTPError, match="403"):
            urllib.request.urlopen(f"{base}api/poll", timeout=30)
        # what a browser asks for by itself, without the token: answered, with nothing in it
        with urllib.request.urlopen(f"{base}favicon.ico", timeout=30) as response:
            assert response.status == 204 and response.read() == b""
        assert "keep it private" in proc.stdout.readline()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def test_the_command_refuses_a_missing_directory(tmp_path):
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "ultrarun", "dashboard", str(tmp_path / "nope")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "is not a directory" in out.stderr and "Traceback" not in out.stderr


# ------------------------------------------------------------------------------ in a browser
BROWSER_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def page(tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=BROWSER_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            page = context.new_page()
            page.errors = []
            page.on("pageerror", lambda exc: page.errors.append(str(exc)))
            page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
            page.set_default_timeout(60_000)
            yield page
        finally:
            browser.close()


def shown_runs(page) -> int:
    text = page.text_content("#n-runs")
    return int(text) if text and text.isdigit() else -1


@pytest.mark.slow
def test_the_page_shows_the_runs_and_the_incumbent_and_follows_new_results(run_dir, page):
    result = logged_results_to_HBS_result(run_dir)
    with Dashboard(run_dir) as dashboard:
        page.goto(dashboard.url)
        page.wait_for_function("document.getElementById('n-runs').textContent === '60'")
        incumbent = result.get_incumbents_per_budget()[9.0][1]
        shown = float(page.text_content("#incumbent-loss"))
        assert shown == pytest.approx(incumbent, rel=1e-5)
        page.wait_for_selector("#runs-table tbody tr")
        page.wait_for_selector("#fig-losses .main-svg")
        page.wait_for_selector("#fig-parallel .main-svg")
        assert page.text_content("#runs-total") == "(60 runs shown by the filters)"
        assert "PED-ANOVA" in page.text_content("#importance-note")
        # while the page is open the run goes on: a better result on the largest budget
        logger = json_result_logger(run_dir, fsync=False)
        logger.open("resume")
        logger.new_config((99, 0, 0), {"lr": 1e-3, "optimizer": "adam", "<b>layers</b>": 2})
        logger(Job(id=(99, 0, 0), kwargs={"config": {}, "budget": 9.0, "working_directory": "."},
                   status=JobStatus.SUCCESS, result={"loss": 0.001234, "info": {}},
                   timestamps={"submitted": 1_100.0, "started": 1_100.5, "finished": 1_102.0}))
        page.wait_for_function("document.getElementById('n-runs').textContent === '61'")
        page.wait_for_function("document.getElementById('incumbent-loss').textContent === '0.001234'")
        page.wait_for_function("document.querySelector('#runs-table tbody tr td').textContent === '[99, 0, 0]'")
        # the table: sort by loss, filter a budget out
        page.click("th[data-sort=loss]")
        page.wait_for_function("document.querySelector('#runs-table tbody tr td:nth-child(4)').textContent === '0.001234'")
        page.uncheck("#budget-filters input[data-value='1']")
        page.wait_for_function("document.getElementById('runs-total').textContent === '(41 runs shown by the filters)'")
        assert page.errors == []


@pytest.mark.slow
def test_the_page_needs_the_token_when_bound_beyond_loopback(run_dir, page):
    with Dashboard(run_dir, host="127.0.0.2") as dashboard:
        bare = dashboard.url.split("?")[0]
        response = page.goto(bare)
        assert response.status == 403 and "token" in page.text_content("body")
        page.errors.clear()  # that 403 was the point
        page.goto(dashboard.url)
        page.wait_for_function("document.getElementById('n-runs').textContent === '60'")
        page.wait_for_selector("#runs-table tbody tr")
        assert page.errors == []


@pytest.mark.slow
def test_the_page_of_hpbandsters_own_logs(page, tmp_path):
    directory = tmp_path / "hpbandster"
    shutil.copytree(HPBANDSTER_RUN, directory)
    runs = len(logged_results_to_HBS_result(directory).get_all_runs())
    with Dashboard(directory) as dashboard:
        page.goto(dashboard.url)
        page.wait_for_function(f"document.getElementById('n-runs').textContent === '{runs}'")
        page.wait_for_selector("#fig-trajectory .main-svg")
        assert page.errors == []
