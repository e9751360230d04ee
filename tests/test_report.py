"""write_report on a logged run: PNG files that open, an HTML page that shows them with captions,
the best configuration and advice on min_budget, in a responsive grid a real browser lays out."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from ConfigSpace import Categorical, ConfigurationSpace, Float
from PIL import Image

from conftest import wait_until

from ultrarun.job import Job, JobStatus
from ultrarun.report import (FIGURES, best_configurations, idle_gaps, min_budget_advice,
                             parameters_vs_loss, summary, watch_report, write_report)
from ultrarun.results import (Result, Run, json_result_logger, logged_results_to_HBS_result,
                              read_configspace)
from ultrarun.visualization import concurrent_runs_over_time, correlation_across_budgets

ROOT = Path(__file__).resolve().parent.parent

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def logged_run(tmp_path):
    """Nine configs on budget 1, three promoted to 3, one to 9; one crash, one timeout."""
    directory = tmp_path / "run"
    log = json_result_logger(directory)
    t = 100.0
    for budget, count in ((1, 9), (3, 3), (9, 1)):
        for i in range(count):
            config_id = (0, 0, i)
            log.new_config(config_id, {"lr": 10.0 ** -i, "name": "<b>net</b>"}, {"model_based_pick": False})
            status = {(1, 7): JobStatus.CRASHED, (1, 8): JobStatus.TIMEOUT}.get((budget, i), JobStatus.SUCCESS)
            ok = status is JobStatus.SUCCESS
            log(Job(id=config_id, kwargs={"config": {}, "budget": budget, "working_directory": "."},
                    status=status, result={"loss": (i + 1) / budget, "info": {}} if ok else None,
                    exception=None if ok else "Traceback: failed", timestamps={
                        "submitted": t, "started": t + 0.5 * (i % 2), "finished": t + budget}))
            t += 0.7
    return directory


def test_write_report_writes_pngs_and_html_that_refers_to_them(logged_run):
    page = write_report(logged_run)
    assert page == logged_run / "report" / "index.html"
    text = page.read_text()
    for name in FIGURES:
        png = page.parent / name
        data = png.read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 1000
        with Image.open(png) as image:
            assert image.size[0] == 800
            assert name == "parameters_vs_loss.png" or image.size == (800, 500)
        assert f'src="{name}"' in text
    assert "CRASHED: 1" in text and "TIMEOUT: 1" in text and "SUCCESS: 11" in text
    assert "<b>net</b>" not in text and "&lt;b&gt;net&lt;/b&gt;" in text  # run data is escaped
    first_row = re.search(r"<tr><td>1</td><td>(.*?)</td><td>(.*?)</td>", text)
    assert first_row.groups() == ("[0, 0, 0]", "9")  # the incumbent heads the table


def test_summary_and_best_configurations(logged_run):
    result = logged_results_to_HBS_result(logged_run)
    info = summary(result)
    assert info["runs"] == 13 and info["configurations"] == 9 and info["budgets"] == [1, 3, 9]
    assert info["by_status"] == {"SUCCESS": 11, "CRASHED": 1, "TIMEOUT": 1}
    assert info["incumbent"] == (0, 0, 0)
    assert info["best_per_budget"] == {1: ((0, 0, 0), 1.0), 3: ((0, 0, 0), 1 / 3), 9: ((0, 0, 0), 1 / 9)}
    best = best_configurations(result, top=4)
    assert [(r.config_id, r.budget) for r in best] == [((0, 0, 0), 9), ((0, 0, 1), 3), ((0, 0, 2), 3),
                                                       ((0, 0, 3), 1)]


def test_report_of_a_run_without_results(tmp_path):
    log = json_result_logger(tmp_path / "run")
    log.new_config((0, 0, 0), {"lr": 0.1}, {})
    page = write_report(tmp_path / "run", output_dir=tmp_path / "out")
    assert page.parent == tmp_path / "out"
    assert "no successful run yet" in page.read_text()
    assert all((tmp_path / "out" / name).read_bytes().startswith(PNG_SIGNATURE) for name in FIGURES)


def test_report_of_a_directory_without_logs(tmp_path):
    with pytest.raises(FileNotFoundError, match="configs.json"):
        write_report(tmp_path)


def test_every_figure_has_a_caption_and_the_incumbent_jump_is_explained(logged_run):
    text = write_report(logged_run).read_text()
    captions = re.findall(r'<figure><img src="([^"]+)"[^>]*><figcaption>(.+?)</figcaption>', text)
    assert [name for name, _ in captions] == list(FIGURES)
    assert all(len(caption) > 80 for _, caption in captions)
    assert "It can jump up when the first run on a larger budget finishes" in text
    assert "grid-template-columns" in text and 'name="viewport"' in text  # a responsive grid


def test_the_best_configuration_is_shown_with_its_parameters(logged_run):
    text = write_report(logged_run).read_text()
    best = text.split("<h2>Best configuration</h2>", 1)[1].split("</section>", 1)[0]
    assert "Configuration [0, 0, 0] (the best loss on the largest budget)" in best
    assert "<tr><th>lr</th><td>1</td></tr>" in best
    assert "<tr><th>name</th><td>&lt;b&gt;net&lt;/b&gt;</td></tr>" in best
    assert "Loss by budget: 1: 1, 3: 0.333333, 9: 0.111111" in best


def runs_with_ranking(agree: bool, n: int = 8) -> Result:
    """n configurations on budgets 1 and 3; budget 3 ranks them as budget 1 does, or reversed."""
    runs = []
    for i in range(n):
        runs.append(Run((0, 0, i), 1.0, float(i), {}, {"submitted": i, "started": i, "finished": i + 1}))
        loss = float(i if agree else n - i)
        runs.append(Run((0, 0, i), 3.0, loss, {}, {"submitted": i, "started": i, "finished": i + 2}))
    return Result.from_runs(runs)


def test_the_correlation_caption_says_what_it_means_for_min_budget(logged_run):
    assert "min_budget is not too small" in min_budget_advice(runs_with_ranking(agree=True))
    weak = min_budget_advice(runs_with_ranking(agree=False))
    assert weak.startswith("Here rho(1, 3) = -1.00 over 8 configurations") and "use a larger min_budget" in weak
    few = min_budget_advice(runs_with_ranking(agree=True, n=2))
    assert "not enough data yet to judge min_budget" in few
    text = write_report(logged_run).read_text()
    caption = re.search(r'correlation_across_budgets.png"[^>]*><figcaption>(.+?)</figcaption>', text)
    assert "Here rho(1, 3) = 1.00 over 3 configurations" in caption.group(1)


def test_not_enough_data_in_the_heatmap_looks_unlike_rho_zero():
    result = runs_with_ranking(agree=True, n=2)  # 2 configurations on both budgets: no rho
    fig, ax = correlation_across_budgets(result)
    assert [t.get_text() for t in ax.texts] == ["not enough data\nn = 2"]
    (patch,) = ax.patches
    assert patch.get_facecolor()[:3] != (1.0, 1.0, 1.0) and patch.get_hatch() == "//"


def test_counts_have_integer_ticks():
    runs = [Run((0, 0, i), 1.0, 0.1, {}, {"submitted": i, "started": i, "finished": i + 1.5})
            for i in range(3)]
    fig, ax = concurrent_runs_over_time(runs)
    ticks = [t for t in ax.get_yticks() if ax.get_ylim()[0] <= t <= ax.get_ylim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)


def test_parameters_vs_loss_has_a_panel_per_parameter(logged_run):
    space = ConfigurationSpace(space=[Float("lr", (1e-9, 1.0), log=True),
                                      Categorical("name", ["<b>net</b>"])])
    fig, _ = parameters_vs_loss(logged_results_to_HBS_result(logged_run), configspace=space)
    by_label = {ax.get_xlabel(): ax for ax in fig.axes}
    assert set(by_label) == {"lr", "name"}
    assert by_label["lr"].get_xscale() == "log"  # the space says so
    assert [t.get_text() for t in by_label["name"].get_xticklabels()] == ["<b>net</b>"]
    assert sum(len(c.get_offsets()) for c in by_label["lr"].collections) == 11  # successful runs


def test_watch_rewrites_the_report_and_leaves_a_page_that_does_not_reload(logged_run, tmp_path):
    out = tmp_path / "live"
    page = watch_report(logged_run, out, interval=0.01, count=2)
    assert page == out / "index.html"
    assert 'http-equiv="refresh"' not in page.read_text()
    cli = subprocess.run([sys.executable, "-m", "ultrarun", "report", str(logged_run), "--output",
                          str(out), "--watch", "0.01", "--count", "1"], capture_output=True,
                         text=True, timeout=120)
    assert cli.returncode == 0, cli.stderr
    assert "reloads every 0.01 s" in cli.stdout and f"report written to {page}" in cli.stdout


def test_a_watched_page_reloads_itself(logged_run, tmp_path):
    page = write_report(logged_run, tmp_path / "live", refresh=5)
    assert '<meta http-equiv="refresh" content="5">' in page.read_text()


# ------------------------------------------------------------------ a real browser
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

PROBE = """<script>
window.addEventListener("load", () => {
  const figures = [...document.querySelectorAll("figure img")].map(img => ({
    src: img.getAttribute("src"), loaded: img.complete && img.naturalWidth > 0,
    top: Math.round(img.getBoundingClientRect().top)}));
  const out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify(figures);
  document.body.appendChild(out);
});
</script>
</body>"""


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                           "--disable-background-networking", "--disable-component-update",
                           "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                           "--hide-scrollbars", "--virtual-time-budget=5000", *args],
                          capture_output=True, text=True, timeout=120)


def probe(page: Path, profile: Path, width: int) -> list[dict]:
    """What the browser made of the page's figures: loaded or not, and where (a copy of the
    page with a small script that reports it; the report itself has no script)."""
    probed = page.with_name("probe.html")
    probed.write_text(page.read_text().replace("</body>", PROBE))
    out = chromium(profile, f"--window-size={width},1000", "--dump-dom", probed.as_uri())
    found = re.search(r'<pre id="probe">(.*?)</pre>', out.stdout)
    assert found, out.stderr[-2000:]
    return json.loads(found.group(1))


@pytest.mark.slow
def test_the_page_in_a_real_browser_shows_every_figure_in_a_responsive_grid(logged_run, tmp_path):
    page = write_report(logged_run)
    profile = tmp_path / "chromium-profile"
    shot = tmp_path / "screenshot.png"
    out = chromium(profile, "--window-size=1600,2200", f"--screenshot={shot}", page.as_uri())
    assert out.returncode == 0 and shot.exists(), out.stderr[-2000:]
    with Image.open(shot) as image:
        assert image.size == (1600, 2200)
        pixels = np.asarray(image.convert("RGB"), dtype=int)
    assert (pixels.sum(axis=2) < 720).mean() > 0.03, "the page is blank"
    blue = (np.abs(pixels - [31, 119, 180]).max(axis=2) < 20).sum()
    assert blue > 500, "the plots' budget-1 colour (tab10 blue) is on the page: images render"

    wide = probe(page, profile, 1600)
    assert [f["src"] for f in wide] == list(FIGURES) and all(f["loaded"] for f in wide), wide
    assert wide[0]["top"] == wide[1]["top"], "on a wide screen, figures sit side by side"
    narrow = probe(page, profile, 700)
    tops = [f["top"] for f in narrow]
    assert tops == sorted(set(tops)), "on a narrow screen, one figure per row"


def log_job(log, config_id, config, budget, loss, start, end, attempt=1):
    log.new_config(config_id, config, {})
    log(Job(id=config_id, kwargs={"config": config, "budget": budget, "working_directory": "."},
            status=JobStatus.SUCCESS, result={"loss": loss, "info": {}}, attempt=attempt,
            timestamps={"submitted": start, "started": start, "finished": end}))


def test_a_log_axis_only_where_the_space_says_log(tmp_path):
    """Branin's uniform x2 in [0, 15] stays linear however its values spread; a log-scaled
    learning rate is drawn on a log axis even when its values span less than a decade."""
    space = ConfigurationSpace(space=[Float("x2", (0.0, 15.0)),
                                      Float("lr", (1e-4, 1e-1), log=True)])
    log = json_result_logger(tmp_path)
    log.log_configspace(space)
    for i, (x2, lr) in enumerate([(0.01, 0.001), (7.0, 0.004), (14.9, 0.009)]):
        log_job(log, (0, 0, i), {"x2": x2, "lr": lr}, 1, float(i), i, i + 1)
    result = logged_results_to_HBS_result(tmp_path)
    assert read_configspace(tmp_path) == space
    fig, _ = parameters_vs_loss(result, configspace=read_configspace(tmp_path))
    scales = {ax.get_xlabel(): ax.get_xscale() for ax in fig.axes}
    assert scales == {"x2": "linear", "lr": "log"}
    fig, _ = parameters_vs_loss(result)  # HpBandSter's logs have no space: no guess either
    assert {ax.get_xscale() for ax in fig.axes} == {"linear"}


def test_best_configurations_rank_the_largest_budget_first_and_the_others_apart(tmp_path):
    """The issue's case: budget-27 losses 26.5 and 95.0, budget-9 loss 0.84."""
    log = json_result_logger(tmp_path)
    for i, (budget, loss) in enumerate([(27, 95.0), (27, 26.5), (9, 0.84), (9, 3.0), (3, 0.1)]):
        log_job(log, (0, 0, i), {"x": i}, budget, loss, i, i + 1)
    text = write_report(tmp_path).read_text()
    section = text.split("<h2>Best configurations</h2>", 1)[1]
    assert "Losses on different budgets are not comparable" in section
    largest, rest = section.split("<h3>Stopped at a smaller budget</h3>")
    assert "<h3>Reached the largest budget, 27</h3>" in largest
    rows = re.findall(r"<tr><td>(\d+)</td><td>[^<]*</td><td>([\d.]+)</td><td>([\d.]+)</td>", largest)
    assert rows == [("1", "27", "26.5"), ("2", "27", "95")]
    assert rest.index("<h4>Budget 9</h4>") < rest.index("<h4>Budget 3</h4>")
    nine = rest.split("<h4>Budget 9</h4>")[1].split("<h4>")[0]
    assert re.findall(r"<td>([\d.]+)</td><td><code>", nine) == ["0.84", "3"]


def test_idle_gaps_and_re_run_jobs_are_marked(tmp_path):
    """A master stopped at 10 s and resumed at 100 s; one job ran again after its worker was
    lost."""
    log = json_result_logger(tmp_path)
    log_job(log, (0, 0, 0), {"x": 0}, 1, 1.0, 0, 5)
    log_job(log, (0, 0, 1), {"x": 1}, 1, 2.0, 4, 10)
    log_job(log, (0, 0, 2), {"x": 2}, 1, 3.0, 100, 103, attempt=2)
    log_job(log, (0, 0, 3), {"x": 3}, 1, 4.0, 103.5, 110)
    result = logged_results_to_HBS_result(tmp_path)
    assert idle_gaps(result) == [(10.0, 100.0)]  # 103 -> 103.5 is no gap
    text = write_report(tmp_path).read_text()
    summary_table = text.split("<h2>Summary</h2>", 1)[1].split("</table>", 1)[0]
    assert "<th>idle gaps (no run in progress) [s]</th><td>10.0-100.0</td>" in summary_table
    assert ("<th>re-run jobs (worker lost, run again)</th><td>[0, 0, 2] on budget 1 (attempt 2)"
            in summary_table)
    assert "Grey bands" in text and "Orange triangles" in text


def test_watch_started_before_the_first_result_waits_for_it(tmp_path):
    """``ultrarun report DIR --watch`` before the master created DIR: it says what it waits
    for, writes the report once the first result is there, and stops cleanly."""
    directory = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "ultrarun", "report", str(directory),
                             "--watch", "0.05"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        stderr = []
        wait_until(lambda: proc.poll() is not None or "waiting for the run's first result"
                   in (stderr.append(proc.stderr.readline()) or "".join(stderr)),
                   timeout=60, message="the watcher to say what it waits for")
        assert proc.poll() is None, "".join(stderr) + proc.stderr.read()
        log = json_result_logger(directory)
        log_job(log, (0, 0, 0), {"x": 0.5}, 1, 1.0, 0, 1)
        page = directory / "report" / "index.html"
        wait_until(page.exists, timeout=60, message="the first report")
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert f"report written to {page}" in out
    assert "<td>1</td>" in page.read_text()


def test_a_watch_round_during_a_run_finds_every_logged_configuration(tmp_path, monkeypatch,
                                                                     caplog):
    """The logger writes a configuration, then its result; a reader that reads configs.json
    first and results.json later saw results of configurations logged in between."""
    from ultrarun.results import _logs

    log = json_result_logger(tmp_path)
    log_job(log, (0, 0, 0), {"x": 0.0}, 1, 1.0, 0, 1)
    real, calls = _logs.read_json_lines, []

    def read_while_the_run_goes_on(path, *args, **kwargs):
        yield from real(path, *args, **kwargs)
        calls.append(path)
        if len(calls) == 1:  # a result is logged between the reads of two files
            log_job(log, (0, 0, 1), {"x": 1.0}, 1, 2.0, 1, 2)

    monkeypatch.setattr(_logs, "read_json_lines", read_while_the_run_goes_on)
    with caplog.at_level("WARNING"):
        result = logged_results_to_HBS_result(tmp_path)
    assert not [r.message for r in caplog.records if "is not in configs.json" in r.message]
    assert all(datum.config for datum in result.data.values())


def test_a_watched_page_keeps_the_reader_s_place_when_it_reloads(logged_run, tmp_path):
    page = write_report(logged_run, tmp_path / "live", refresh=5).read_text()
    assert "sessionStorage" in page and "scrollTo" in page
    assert "sessionStorage" not in write_report(logged_run, tmp_path / "once").read_text()
