"""What ``ultrarun status`` shows: a live run's workers, queue and finished jobs.

It asks the name server for the run's dispatcher and workers and each of them for its state, so
it works from any machine that reaches the name server and holds the run secret.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from . import transport
from .settings import settings
from .errors import AuthenticationError, CommunicationError, ConfigurationError
from .security import Credentials, credentials_path, resolve_secret


def collect_status(run_id: str, nameserver: str, nameserver_port: int | None,
                   secret: str | None = None, timeout: float = 2.0) -> dict[str, Any]:
    """The run's state as plain data: ``{'dispatcher': ..., 'workers': [...]}``."""
    party = transport.Party(resolve_secret(secret, nameserver_port), timeout=timeout)
    with transport.NameServerClient(nameserver, nameserver_port, party) as ns:
        listed = ns.list(transport.worker_prefix(run_id))
        dispatcher_uri = ns.lookup(transport.dispatcher_name(run_id))
    dispatcher = None
    if dispatcher_uri:
        dispatcher = _call(dispatcher_uri, party, "status")
    known = {w["name"]: w for w in (dispatcher or {}).get("workers", [])}
    workers = []
    for name, uri in sorted(listed.items()):
        state = _call(uri, party, "status") or {}
        parts = transport.parse_worker_name(name)
        seen = known.get(name, {})
        workers.append({
            "name": name, "host": state.get("host", parts["host"]),
            "pid": state.get("pid", parts["pid"]),
            "state": ("unreachable" if not state else "busy" if state.get("busy") else "idle"),
            "job": state.get("job"), "jobs_done": state.get("jobs_done"),
            "in_pool": name in known, "last_seen": seen.get("last_seen")})
    return {"run_id": run_id, "dispatcher": dispatcher, "workers": workers}


def _call(uri: str, party: transport.Party, method: str) -> Any:
    with transport.Connection(uri, party) as conn:
        try:
            return conn.call(method)
        except CommunicationError:
            return None


def format_status(status: dict[str, Any]) -> str:
    """A plain-text table for terminals."""
    lines = [f"run {status['run_id']}"]
    d = status["dispatcher"]
    if d is None:
        lines.append("dispatcher: none registered (no master running)")
    else:
        finished = d.get("finished", {})
        failed = sum(n for s, n in finished.items() if s != "SUCCESS")
        lines.append(f"dispatcher: {d['uri']}  queued {d['queued']}  running {d['running']}  "
                     f"finished {sum(finished.values())} (failed {failed})")
        for best in d.get("best", []):  # in numeric order of budget (the dispatcher's)
            lines.append(f"best so far at budget {best['budget']}: loss {best['loss']:.6g} "
                         f"(job {_id(best['id'])})")
    header = f"{'worker':<48} {'host':<16} {'pid':>7} {'state':<11} {'job':<22} {'done':>5} {'last seen':>9}"
    lines += ["", header, "-" * len(header)]
    now = time.time()
    for w in status["workers"]:
        job = w["job"]
        job_text = "" if not job else f"{_id(job['id'])} b={job.get('budget')}"
        seen = "" if not w.get("last_seen") else f"{now - w['last_seen']:.1f}s"
        lines.append(f"{w['name']:<48} {str(w['host'])[:16]:<16} {w['pid']:>7} {w['state']:<11} "
                     f"{job_text[:22]:<22} {w['jobs_done'] if w['jobs_done'] is not None else '-':>5} {seen:>9}")
    if not status["workers"]:
        lines.append("(no workers registered)")
    return "\n".join(lines)


def _id(value: Any) -> Any:
    """A job id as the master wrote it (a config id travels as a list)."""
    return tuple(value) if isinstance(value, list) else value


def read_credentials(directory: str | os.PathLike, run_id: str) -> Credentials:
    """The run's credentials file, or a ConfigurationError that says which runs the directory
    has (a wrong run id is the usual cause) and how to write one."""
    try:
        return Credentials.read(directory, run_id)
    except FileNotFoundError:
        pass
    path = credentials_path(directory, run_id)
    pattern = credentials_path("", "*").name
    prefix, suffix = pattern.split("*")
    found = sorted(p.name[len(prefix):-len(suffix)] for p in Path(directory).glob(pattern)) \
        if Path(directory).is_dir() else []
    if not Path(directory).is_dir():
        hint = f"the directory {directory} does not exist"
    elif found:
        hint = f"it has credentials for run(s) {', '.join(found)}: is the run id right?"
    else:
        hint = "it has no credentials file at all: is the name server running with " \
               f"--working-dir {directory}?"
    raise ConfigurationError(f"no credentials file for run {run_id} ({path}); {hint}")


CLEAR_SCREEN = "\x1b[H\x1b[2J"  # ANSI: cursor to the top left, clear the screen


def print_status(args: argparse.Namespace) -> int:
    if args.working_dir:
        creds = read_credentials(args.working_dir, args.run_id)
        host, port, secret = creds.host, creds.port, args.secret or creds.secret
    else:
        (host, port), secret = args.nameserver, args.secret
    stop = threading.Event()
    shown = 0
    # On a terminal a watch redraws in place (cursor home, clear screen); in a pipe or a file it
    # appends one table after another.
    redraw = args.watch is not None and not args.json and sys.stdout.isatty()
    while True:
        try:
            status = collect_status(args.run_id, host, port, secret)
        except AuthenticationError as exc:
            if secret or settings.SECRET:
                raise
            raise AuthenticationError(
                f"the name server at {host}:{port or transport.DEFAULT_NAMESERVER_PORT} refused "
                "your per-user secret: no secret was given. Give the run's secret with --secret "
                "or ULTRARUN_SECRET, or use --working-dir DIR to read it from the run's "
                "credentials file") from exc
        text = json.dumps(status) if args.json else format_status(status)
        print(CLEAR_SCREEN + text if redraw else text, flush=True)
        shown += 1
        if args.watch is None or (args.count is not None and shown >= args.count):
            return 0
        if not redraw:
            print(flush=True)
        if stop.wait(args.watch):
            return 0
