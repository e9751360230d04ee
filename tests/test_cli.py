"""The ``ultrarun`` command: help, demo, status and report, as a user runs them."""
from __future__ import annotations

import argparse
import json
import logging
import re
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SchedulingLag, wait_until
from ultrarun.cli import build_parser, load_object, main
from ultrarun.errors import ConfigurationError
from ultrarun.report import FIGURES

ROOT = Path(__file__).resolve().parent.parent


def ultrarun(*args: str, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ultrarun", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT, **kwargs)


def _command_names() -> list[str]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return list(sub.choices)


@pytest.mark.parametrize("command", _command_names())
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: ultrarun {command}" in out and "--log-file" in out


def test_load_object_reports_bad_specs(tmp_path):
    assert load_object("ultrarun.worker:Worker").__name__ == "Worker"
    with pytest.raises(ConfigurationError, match="module:Name"):
        load_object("ultrarun.worker")
    with pytest.raises(ConfigurationError, match="no attribute 'Nope'"):
        load_object("ultrarun.worker:Nope")
    with pytest.raises(ConfigurationError, match="no such file"):
        load_object(str(tmp_path / "missing.py") + ":W")


def test_worker_arguments_are_parsed():
    args = build_parser().parse_args(["worker", "m:W", "--run-id", "r", "--nameserver",
                                      "10.0.0.1:9090", "--arg", "lr=0.1", "--arg", "name=abc"])
    assert args.nameserver == ("10.0.0.1", 9090)
    assert dict(args.arg) == {"lr": 0.1, "name": "abc"}


@pytest.mark.slow
def test_demo_runs_an_optimisation_and_writes_results_and_a_report(tmp_path):
    out = ultrarun("demo", "--n-workers", "2", "--n-iterations", "2", "--output",
                   str(tmp_path), timeout=240)
    assert out.returncode == 0, out.stderr
    assert "incumbent per budget" in out.stdout
    assert "budget    27: loss" in out.stdout
    # the default, TPE on adaptive successive halving: a bracket of 27 + 9 + 3 + 1 jobs; the
    # second starts while the first one's verdict on budget 1 is in flight, so one budget up:
    # 12 + 4 + 1 (docs/iterations.md, several workers)
    assert (tmp_path / "results.json").read_text().count("\n") == 40 + 17
    assert (tmp_path / "configspace.json").exists()  # the master logs the space: log axes
    report = tmp_path / "report" / "index.html"
    assert report.exists() and f"report: {report}" in out.stdout
    pngs = list((tmp_path / "report").glob("*.png"))
    assert pngs and all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)


def test_demo_without_matplotlib_skips_the_report_and_says_what_to_install(tmp_path):
    """A bare ``pip install ultrarun`` (no [plot] extra) runs the demo to the end."""
    code = ("import sys; sys.modules['matplotlib'] = None; from ultrarun.cli import main; "
            "raise SystemExit(main(sys.argv[1:]))")
    out = subprocess.run([sys.executable, "-c", code, "demo", "--n-workers", "2",
                          "--n-iterations", "1", "--output", str(tmp_path)], capture_output=True,
                         text=True, timeout=240, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "budget    27: loss" in out.stdout
    assert "no report: ultrarun's plots need matplotlib: pip install 'ultrarun[plot]'" in out.stdout
    assert not (tmp_path / "report" / "index.html").exists()


@pytest.mark.slow
def test_demo_with_asha_runs_until_its_seconds_are_used_up(tmp_path):
    with SchedulingLag() as lag:  # what the load delays a thread by, on this machine now
        out = ultrarun("demo", "--n-workers", "2", "--optimizer", "hyperband", "--asha",
                       "--seconds", "3", "--output", str(tmp_path), timeout=240)
    assert out.returncode == 0, out.stderr
    results = [json.loads(line) for line in (tmp_path / "results.json").read_text().splitlines()]
    assert len(results) > 27, "ASHA kept sampling past one iteration's 27 configurations"
    # The master submits no job it expects to end after the 3 s: what jobs at a budget took
    # here is at least their nominal 10 ms per budget unit, however loaded the machine, so each
    # job (but the first at its budget, before any estimate) is submitted at least that long
    # before the deadline. Absolute times; the run starts just before its first submission.
    start = min(r[2]["submitted"] for r in results)
    ordered = sorted(results, key=lambda r: r[2]["submitted"])
    seen, ends = set(), []
    for _, budget, stamps, *_ in ordered:
        if budget in seen:
            ends.append(stamps["submitted"] - start + 0.01 * budget)
        seen.add(budget)
    assert 27.0 in seen, "promotions reached the top budget"
    # between a decision and its submission's time stamp: a few ms, plus what the load delays
    # a thread by (measured beside the run, in this process)
    assert max(ends) <= 3.0 + 0.01 + lag.lag, \
        f"a job expected to end {max(ends):.2f} s in was started (lag {lag.lag:.3f} s)"


def test_report_command_writes_plots_of_a_logged_run(tmp_path):
    from ultrarun.job import Job, JobStatus
    from ultrarun.results import json_result_logger

    logger = json_result_logger(tmp_path)
    for i, budget in enumerate([1.0, 1.0, 3.0]):
        cid = (0, 0, i)
        logger.new_config(cid, {"x": float(i)}, {"model_based_pick": False})
        job = Job(id=cid, kwargs={"config": {"x": float(i)}, "budget": budget},
                  status=JobStatus.SUCCESS, result={"loss": 1.0 / (i + 1), "info": {}},
                  timestamps={"submitted": 10.0 + i, "started": 10.5 + i, "finished": 11.0 + i})
        logger(job)
    out = ultrarun("report", str(tmp_path), "--output", str(tmp_path / "rep"))
    assert out.returncode == 0, out.stderr
    html = (tmp_path / "rep" / "index.html").read_text()
    pngs = sorted((tmp_path / "rep").glob("*.png"))
    assert len(pngs) == len(FIGURES)
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 1000
        assert png.name in html


@pytest.mark.slow
def test_status_shows_the_live_workers_and_their_states(cluster):
    cluster.start_workers(2)
    d, results = cluster.dispatcher()
    wait_until(lambda: d.number_of_workers() == 2, message="2 workers")
    marker = cluster.marker("status")
    d.submit_job((0, 0, 7), config={"marker": str(marker), "sleep": 30}, budget=9.0)
    for i in range(3):
        d.submit_job(i, config={"x": i}, budget=1.0)
    wait_until(marker.exists, message="the long job to start")
    wait_until(lambda: len(results.jobs) == 3, message="the quick jobs")
    out = ultrarun("status", "--run-id", cluster.run_id, "--working-dir", str(cluster.dir))
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "finished 3 (failed 0)" in text and "running 1" in text
    assert "best so far at budget 1.0: loss 0 (job 0)" in text
    busy = [line for line in text.splitlines() if " busy " in line]
    idle = [line for line in text.splitlines() if " idle " in line]
    assert len(busy) == 1 and len(idle) == 1
    assert "(0, 0, 7) b=9.0" in busy[0]
    assert marker.read_text() in busy[0]  # the pid of the process running the job
    as_json = json.loads(ultrarun("status", "--run-id", cluster.run_id, "--nameserver",
                                  f"{cluster.host}:{cluster.port}", "--json",
                                  env=dict(os.environ, ULTRARUN_SECRET=cluster.nameserver.secret)
                                  ).stdout)
    assert {w["state"] for w in as_json["workers"]} == {"busy", "idle"}
    assert as_json["dispatcher"]["queued"] == 0


def test_status_without_a_run_says_so(nameserver):
    out = ultrarun("status", "--run-id", nameserver.run_id, "--working-dir",
                   str(nameserver.working_directory), "--watch", "0.01", "--count", "2")
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("no master running") == 2
    assert "(no workers registered)" in out.stdout


def test_errors_are_reported_without_a_traceback(tmp_path):
    out = ultrarun("status", "--run-id", "r", "--nameserver", "127.0.0.1:1",
                   env=dict(os.environ, ULTRARUN_COMMTIMEOUT="1"))
    assert out.returncode == 2
    assert "ultrarun status: error:" in out.stderr and "Traceback" not in out.stderr


def test_log_file_and_verbosity(tmp_path, nameserver):
    log = tmp_path / "ns.log"
    out = ultrarun("worker", "ultrarun.worker:Worker", "--run-id", nameserver.run_id,
                   "--working-dir", str(nameserver.working_directory), "--timeout", "0.2", "-v",
                   "--log-file", str(log))
    assert out.returncode == 0, out.stderr
    assert "shut down: it was idle for 0.2s" in log.read_text()


@pytest.mark.parametrize("argv, words", [
    (["worker", "no_such_module:W", "--run-id", "r", "--nameserver", "127.0.0.1:1"],
     "No module named 'no_such_module'"),
    (["report", "/nonexistent/run"], "/nonexistent/run"),
    (["status", "--run-id", "r", "--working-dir", "/nonexistent"], "/nonexistent"),
])
def test_user_errors_exit_2_with_a_message(argv, words):
    out = ultrarun(*argv)
    assert out.returncode == 2, out.stderr
    assert words in out.stderr and "Traceback" not in out.stderr


def test_a_bad_setting_in_the_environment_is_ignored_with_a_warning():
    out = ultrarun("status", "--help", env=dict(os.environ, ULTRARUN_COMMTIMEOUT="abc"))
    assert out.returncode == 0
    assert "ignoring ULTRARUN_COMMTIMEOUT" in out.stderr


def test_status_with_a_wrong_run_id_names_the_runs_it_has(nameserver):
    out = ultrarun("status", "--run-id", "exp2", "--working-dir",
                   str(nameserver.working_directory))
    assert out.returncode == 2
    assert "Errno" not in out.stderr and "Traceback" not in out.stderr
    assert "no credentials file for run exp2" in out.stderr
    assert f"it has credentials for run(s) {nameserver.run_id}: is the run id right?" in out.stderr


def test_status_through_the_nameserver_without_a_secret_says_none_was_given(nameserver):
    out = ultrarun("status", "--run-id", nameserver.run_id, "--nameserver",
                   f"{nameserver.host}:{nameserver.port}")
    assert out.returncode == 2
    assert "no secret was given" in out.stderr and "--secret" in out.stderr
    assert "secrets differ" not in out.stderr
    with_secret = ultrarun("status", "--run-id", nameserver.run_id, "--nameserver",
                           f"{nameserver.host}:{nameserver.port}",
                           f"--secret={nameserver.secret}")  # a secret may start with '-'
    assert with_secret.returncode == 0, with_secret.stderr


@pytest.mark.slow
def test_status_lists_the_best_so_far_by_budget_as_numbers(cluster):
    cluster.start_workers(1)
    d, results = cluster.dispatcher()
    wait_until(lambda: d.number_of_workers() == 1, message="1 worker")
    budgets = [1.0, 27.0, 3.0, 81.0, 9.0]
    for i, budget in enumerate(budgets):
        d.submit_job(i, config={"x": i}, budget=budget)
    results.wait_for(len(budgets))
    out = ultrarun("status", "--run-id", cluster.run_id, "--working-dir", str(cluster.dir))
    assert out.returncode == 0, out.stderr
    shown = [float(line.split()[5].rstrip(":")) for line in out.stdout.splitlines()
             if line.startswith("best so far at budget")]
    assert shown == sorted(budgets)


def _commands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _options(command: argparse.ArgumentParser, common: bool = False) -> dict[str, argparse.Action]:
    """Each shown option by its longest name (positionals by metavar); the -v/-q/--log-file of
    every command only with ``common``."""
    shown = {}
    for action in command._actions:
        if action.help == argparse.SUPPRESS or isinstance(action, argparse._HelpAction):
            continue
        name = max(action.option_strings, key=len) if action.option_strings else action.metavar
        if (name in ("--verbose", "--quiet", "--log-file")) == common:
            shown[name] = action
    return shown


def _has_default(action: argparse.Action) -> bool:
    return (action.default is not None and not isinstance(action.default, bool)
            and action.nargs != 0 and action.option_strings)


@pytest.mark.parametrize("name", _command_names())
def test_every_option_has_help_its_default_and_the_command_shows_examples(name):
    command = _commands()[name]
    text = command.format_help()
    for option, action in _options(command).items():
        assert action.help, f"ultrarun {name} {option} has no help text"
        if _has_default(action):
            assert f"(default: {action.default})" in " ".join(text.split()), (name, option)
    examples = text.split("examples:\n", 1)[1].splitlines()
    assert examples and examples[0].startswith(f"  ultrarun {name}")  # then what may follow
    assert all(line.startswith("  ultrarun ") for line in examples if line)


def _documented_tables() -> dict[str, dict[str, str]]:
    """docs/cli.md: for each ``## `ultrarun COMMAND` `` section, option -> default cell."""
    tables: dict[str, dict[str, str]] = {}
    section = None
    for line in (ROOT / "docs" / "cli.md").read_text().splitlines():
        heading = re.match(r"## `ultrarun (\w+)`|## (Options of every command)", line)
        if heading:
            section = heading.group(1) or "every"
            tables[section] = {}
        cells = re.match(r"\| `([^` ]+)[^|]*\|\s*([^|]*?)\s*\|", line)
        if section and cells:
            option = cells.group(1).split("/")[-1]
            tables[section][option] = cells.group(2).strip().strip("`")
    return tables


def test_the_cli_reference_documents_every_option_with_the_default_of_help():
    tables = _documented_tables()
    commands = _commands()
    assert set(tables) == set(commands) | {"every"}
    common = _options(commands["demo"], common=True)
    assert set(tables["every"]) == set(common)
    for name, command in commands.items():
        options = _options(command)
        assert set(tables[name]) == set(options), f"docs/cli.md, ultrarun {name}"
        for option, action in options.items():
            if action.required:
                assert tables[name][option] == "required", (name, option)
            elif _has_default(action):
                assert tables[name][option] == str(action.default), (name, option)


def test_a_worker_says_where_it_registered_and_what_it_waits_for(tmp_path, nameserver):
    """At the default verbosity: the name server it waits for (while it waits), where it
    registered, that no dispatcher is there yet, and its shutdown."""
    out = ultrarun("worker", "ultrarun.worker:Worker", "--run-id", nameserver.run_id,
                   "--working-dir", str(nameserver.working_directory), "--timeout", "0.5")
    assert out.returncode == 0, out.stderr
    assert f"registered with the name server at {nameserver.host}:{nameserver.port}" in out.stderr
    assert f"no dispatcher of run {nameserver.run_id} yet" in out.stderr
    assert "shut down: it was idle for 0.5s" in out.stderr
    lonely = ultrarun("worker", "ultrarun.worker:Worker", "--run-id", "nobody",
                      "--nameserver", "127.0.0.1:9", env={**os.environ,
                                                          "ULTRARUN_NAMESERVER_WAIT": "6"})
    assert lonely.returncode == 2
    assert "waiting 5s so far for the name server at 127.0.0.1:9" in lonely.stderr
    assert "no name server at 127.0.0.1:9 after 6s" in lonely.stderr


def test_the_cli_reference_lists_every_command_with_the_help_of_the_parser():
    """cli.md's command table: one row per subcommand, with the parser's one-line help."""
    text = (ROOT / "docs" / "cli.md").read_text()
    table = dict(re.findall(r"^\| `(\w+)` \| (.*?) \|$", text.split("\n## ", 1)[0], re.MULTILINE))
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    helps = {choice.dest: choice.help for choice in sub._choices_actions}
    assert table == helps, "docs/cli.md's command table and the parser differ"
    for name in helps:
        assert f"## `ultrarun {name}`" in text, f"docs/cli.md has no section for {name}"


def test_the_cli_reference_states_the_default_log_levels(tmp_path):
    """The level a command logs at without -v/-q, as cli.md says: the root logger's level, and
    ``ultrarun worker``'s own, which says where it registered and what it waits for."""
    from ultrarun.cli import _setup_logging

    args = build_parser().parse_args(["demo"])
    _setup_logging(args)
    root = logging.getLevelName(logging.getLogger().level)
    text = " ".join((ROOT / "docs" / "cli.md").read_text().split())
    assert f"the default level is {root}" in text
    worker = ultrarun("worker", "ultrarun.worker:Worker", "--run-id", "nobody", "--nameserver",
                      "127.0.0.1:9", env={**os.environ, "ULTRARUN_NAMESERVER_WAIT": "1"})
    assert " INFO ultrarun.worker: " in worker.stderr  # a service says where it is
    assert "`ultrarun worker` logs INFO" in text


def test_the_top_level_help_names_the_demo_s_optimizer_and_schedule():
    from ultrarun.frontends import DEFAULT_METHOD

    top = build_parser().format_help()
    demo_line = next(line for line in top.splitlines() if "ultrarun demo " in line)
    assert DEFAULT_METHOD.upper() in demo_line and "successive halving" in demo_line, demo_line
    n_iterations = next(a for a in _commands()["demo"]._actions if a.dest == "n_iterations")
    assert "Hyperband" not in n_iterations.help and "successive halving" in n_iterations.help


def _status_output(nameserver, stdout) -> str:
    return subprocess.run(
        [sys.executable, "-m", "ultrarun", "status", "--run-id", nameserver.run_id,
         "--working-dir", str(nameserver.working_directory), "--watch", "0.05", "--count", "3"],
        stdout=stdout, stderr=subprocess.PIPE, cwd=ROOT, timeout=120, text=True)


def test_status_watch_redraws_in_place_on_a_terminal_and_appends_in_a_pipe(nameserver):
    import pty

    leader, follower = pty.openpty()
    try:
        out = _status_output(nameserver, follower)
        assert out.returncode == 0, out.stderr
        os.close(follower)
        follower = None
        chunks = []
        while True:  # the process has ended: everything it wrote is buffered in the pty
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO once the buffer is drained and no writer is left
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(leader)
        if follower is not None:
            os.close(follower)
    screen = b"".join(chunks).decode()
    frames = screen.split("\x1b[H\x1b[2J")
    assert len(frames) == 4 and frames[0] == "", repr(screen[:200])  # each frame redrawn
    assert all("dispatcher: none registered" in frame for frame in frames[1:])
    piped = _status_output(nameserver, subprocess.PIPE).stdout
    assert "\x1b[" not in piped and piped.count("dispatcher: none registered") == 3
