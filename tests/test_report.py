"""write_report on a logged run: PNG files that open, an HTML page that shows them."""
from __future__ import annotations

import re

import pytest
from PIL import Image

from ultrarun.job import Job, JobStatus
from ultrarun.report import FIGURES, best_configurations, summary, write_report
from ultrarun.results import json_result_logger, logged_results_to_HBS_result

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
            assert image.size == (800, 500)
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
