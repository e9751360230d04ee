"""The ``ultrarun`` command: ``nameserver``, ``worker``, ``demo``, ``status``, ``report`` and
``dashboard``.

Only this module configures logging handlers; the library just creates loggers.
"""
from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import logging
import os
import signal
import subprocess
import sys
import textwrap
import time
import threading
from pathlib import Path
from typing import Any, Sequence

from . import __version__
from .errors import ConfigurationError, UltrarunError

log = logging.getLogger("ultrarun.cli")
_SAME_SIGNAL = 2.0  # seconds: SIGTERMs this close together are one request to leave


# ------------------------------------------------------------------------------- helpers
def _setup_logging(args: argparse.Namespace) -> None:
    level = logging.WARNING - 10 * (args.verbose or 0) + 10 * (args.quiet or 0)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if args.log_file:
        handlers.append(logging.FileHandler(args.log_file))
    logging.basicConfig(level=max(logging.DEBUG, min(level, logging.CRITICAL)), handlers=handlers,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)


def _host_port(text: str) -> tuple[str, int | None]:
    host, _, port = text.rpartition(":")
    if not host:
        return text, None
    try:
        return host.strip("[]"), int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}") from None


def _key_value(text: str) -> tuple[str, Any]:
    key, sep, raw = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    try:
        return key, ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return key, raw


def load_object(spec: str) -> Any:
    """``package.module:Name`` or ``path/to/file.py:Name`` -> the object."""
    target, sep, name = spec.partition(":")
    if not sep or not name:
        raise ConfigurationError(f"expected module:Name or file.py:Name, got {spec!r}")
    if target.endswith(".py"):
        path = Path(target).resolve()
        if not path.is_file():
            raise ConfigurationError(f"no such file: {target}")
        if str(path.parent) not in sys.path:
            sys.path.insert(0, str(path.parent))  # so compute processes can import it too
        module = importlib.import_module(path.stem)
    else:
        if "" not in sys.path and os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        module = importlib.import_module(target)
    try:
        return getattr(module, name)
    except AttributeError:
        raise ConfigurationError(f"{target} has no attribute {name!r}") from None


def _stop_on_signal() -> threading.Event:
    """An event that SIGINT and SIGTERM set (installed before anything is announced, so a
    signal right after the announcement is not lost)."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


# ------------------------------------------------------------------------------ commands
def cmd_nameserver(args: argparse.Namespace) -> int:
    from .nameserver import NameServer

    ns = NameServer(args.run_id, working_directory=args.working_dir, host=args.host,
                    port=args.port, nic_name=args.nic, secret=args.secret, fresh=args.fresh,
                    tls=args.tls)
    stop = _stop_on_signal()
    with ns:
        print(f"ultrarun name server for run {ns.run_id} listening on {ns.host}:{ns.port}",
              flush=True)
        if ns.credentials_file:
            print(f"credentials: {ns.credentials_file}", flush=True)
        while not stop.wait(1.0):
            pass
    print("name server stopped", flush=True)
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    if args.n_workers < 1:
        raise ConfigurationError("--n-workers must be >= 1")
    if args.n_workers > 1:
        return _supervise_workers(args)
    if not args.quiet and not args.verbose:  # a service says where it is and what it waits for
        logging.getLogger("ultrarun.worker").setLevel(logging.INFO)
    cls = load_object(args.worker_class)
    kwargs = dict(args.arg or [])
    worker = cls(run_id=args.run_id, nameserver=args.nameserver[0] if args.nameserver else None,
                 nameserver_port=args.nameserver[1] if args.nameserver else None,
                 host=args.host, worker_id=args.worker_id, timeout=args.timeout,
                 secret=args.secret, time_limit=args.time_limit, memory_limit=args.memory_limit,
                 tls=args.tls, **kwargs)
    if args.working_dir:
        worker.load_nameserver_credentials(args.working_dir, num_tries=args.wait_credentials,
                                           interval=1)
        if args.secret:  # an explicit secret wins over the file's, as everywhere
            worker.secret = args.secret
    _end_gracefully(worker, args)
    worker.run(background=False, concurrent_type=args.concurrent_type)
    return 0


def _end_gracefully(worker: Any, args: argparse.Namespace) -> None:
    """SIGTERM (a batch scheduler's warning before the walltime) or the end of --lifetime:
    the worker leaves within --grace seconds (``Worker.leave``); Ctrl-C, or a second SIGTERM,
    shuts it down at once."""

    def leave(reason: str) -> None:
        threading.Thread(target=worker.leave, args=(args.grace, reason), daemon=True,
                         name="worker-leave").start()

    terms: list[float] = []

    def on_term(signum: int, frame: Any) -> None:
        # a scheduler that signals the whole process group and a supervisor that forwards
        # the signal send two at once: only a later one means "now"
        if terms and time.monotonic() - terms[0] > _SAME_SIGNAL:
            worker.shutdown()
        elif not terms:
            terms.append(time.monotonic())
            leave(f"SIGTERM; grace {args.grace:g}s")
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, lambda *_: worker.shutdown())
    if args.lifetime is not None:
        timer = threading.Timer(args.lifetime, leave,
                                args=(f"its lifetime of {args.lifetime:g}s is over",))
        timer.daemon = True
        timer.start()


def _supervise_workers(args: argparse.Namespace) -> int:
    """Start K single-worker processes, start again one that dies, stop them together."""
    from .supervisor import Restarts, Supervisor

    if not args.quiet:
        logging.getLogger("ultrarun.supervisor").setLevel(logging.INFO)
    base = [sys.executable, "-m", "ultrarun"] + _passthrough(args)
    supervisor = Supervisor(lambda slot: base + ["--worker-id", str(slot)], args.n_workers,
                            unregister=lambda pid, slot: _unregister(args, pid, slot),
                            restarts=Restarts(limit=args.max_restarts))
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: supervisor.stop())
    return supervisor.run()


def _unregister(args: argparse.Namespace, pid: int, slot: int) -> None:
    """Remove a dead child's name from the run's name server."""
    import socket

    from .security import Credentials, resolve_secret
    from .transport import NameServerClient, Party, worker_name

    if args.working_dir:
        creds = Credentials.read(args.working_dir, args.run_id)
        host, port, secret = creds.host, creds.port, args.secret or creds.secret
    elif args.nameserver:
        (host, port), secret = args.nameserver, args.secret
    else:
        host, port, secret = "127.0.0.1", None, args.secret
    with NameServerClient(host, port, Party(resolve_secret(secret, port))) as ns:
        ns.remove(worker_name(args.run_id, socket.gethostname(), pid, str(slot)))


def _passthrough(args: argparse.Namespace) -> list[str]:
    argv = ["worker", args.worker_class, "--run-id", args.run_id, "--n-workers", "1",
            "--concurrent-type", args.concurrent_type]
    if args.working_dir:
        argv += ["--working-dir", str(args.working_dir), "--wait-credentials",
                 str(args.wait_credentials)]
    if args.nameserver:
        host, port = args.nameserver
        argv += ["--nameserver", f"{host}:{port}" if port else host]
    for flag, value in (("--host", args.host), ("--timeout", args.timeout), ("--tls", args.tls),
                        ("--lifetime", args.lifetime), ("--grace", args.grace),
                        ("--time-limit", args.time_limit), ("--memory-limit", args.memory_limit),
                        ("--log-file", args.log_file)):
        if value is not None:
            argv += [flag, str(value)]
    for key, value in args.arg or []:
        argv += ["--arg", f"{key}={value!r}"]
    return argv + ["-v"] * (args.verbose or 0) + ["-q"] * (args.quiet or 0)


def cmd_certs(args: argparse.Namespace) -> int:
    from .security import make_certificates

    path = make_certificates(args.directory, days=args.days)
    print(f"wrote ca.pem, party.pem and party.key (and ca.key, keep it private) to {path}; "
          f"copy the directory without ca.key to every node and pass --tls {path}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from .transport import configure_tls
    from .status import print_status

    configure_tls(args.tls)
    return print_status(args)


def cmd_report(args: argparse.Namespace) -> int:
    from .report import DEFAULT_SUBDIR, watch_report, write_report

    if args.watch is None:
        path = write_report(args.directory, output_dir=args.output)
    else:
        page = Path(args.output or Path(args.directory) / DEFAULT_SUBDIR) / "index.html"
        stop = _stop_on_signal()
        print(f"watching {args.directory}: {page} is rewritten as results arrive and reloads "
              f"every {args.watch:g} s; Ctrl-C to stop", flush=True)
        path = watch_report(args.directory, args.output, interval=args.watch, count=args.count,
                            stop=stop)
    print(f"report written to {path}")
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    from .dashboard import Dashboard
    from .transport import configure_tls

    configure_tls(args.tls)
    stop = _stop_on_signal()
    with Dashboard(args.directory, host=args.host, port=args.port, run_id=args.run_id,
                   working_dir=args.working_dir, nameserver=args.nameserver, secret=args.secret,
                   space=args.space) as dashboard:
        print(f"ultrarun dashboard of {args.directory} (read-only): open {dashboard.url}",
              flush=True)
        if dashboard.token:
            print("the token in that URL is needed by everyone who opens it; keep it private",
                  flush=True)
        print("Ctrl-C to stop", flush=True)
        while not stop.wait(1.0):
            pass
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(args)


# -------------------------------------------------------------------------------- parser
class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the examples' line breaks and shows each option's default where it has one."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if ("default" not in text and action.option_strings and default is not None
                and default is not argparse.SUPPRESS and not isinstance(default, bool)
                and action.nargs != 0):
            text += " (default: %(default)s)"
        return text


def _examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


RUN_ID_HELP = "the run's id; its name server, workers and master share it"


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="count", default=0,
                        help="more log output (-v INFO, -vv DEBUG)")
    common.add_argument("-q", "--quiet", action="count", default=0,
                        help="less log output (-q ERROR, -qq CRITICAL)")
    common.add_argument("--log-file", help="also write the log to this file")

    parser = argparse.ArgumentParser(
        prog="ultrarun", formatter_class=_HelpFormatter,
        description="Hyperparameter optimisation on many machines: name server, workers, "
                    "dispatcher and multi-fidelity masters over Pyro4.",
        epilog=_examples("ultrarun demo                      # a whole TPE run (successive "
                         "halving) here",
                         "ultrarun COMMAND --help            # the options of COMMAND"))
    parser.add_argument("--version", action="version", version=f"ultrarun {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add_parser(name: str, help: str, description: str, *examples: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=[common], help=help,
                              description=textwrap.fill(description, 78),
                              epilog=_examples(*examples), formatter_class=_HelpFormatter)

    def add_run(p: argparse.ArgumentParser) -> None:
        """The run's id, and where to find its name server."""
        p.add_argument("--run-id", required=True, help=RUN_ID_HELP)
        where = p.add_mutually_exclusive_group(required=True)
        where.add_argument("--working-dir", help="the shared directory holding the name "
                                                 "server's credentials file (address and secret)")
        where.add_argument("--nameserver", type=_host_port, metavar="HOST:PORT",
                           help="the name server's address (port default 9090); the secret then "
                                "comes from --secret, ULTRARUN_SECRET or your per-user secret")

    def add_secret(p: argparse.ArgumentParser) -> None:
        p.add_argument("--secret", help="the run secret (default: ULTRARUN_SECRET, the "
                                        "credentials file, or your per-user secret)")
        p.add_argument("--tls", metavar="DIR", default=None,
                       help="two-way TLS with the certificates in DIR (made by `ultrarun "
                            "certs DIR`; default: ULTRARUN_TLS)")

    p = add_parser("nameserver", "run a name server in the foreground",
                   "Run the run's Pyro name server until Ctrl-C or SIGTERM. With --working-dir, "
                   "write the credentials file there (JSON, mode 0600) for workers on other "
                   "nodes.",
                   "ultrarun nameserver --run-id exp1 --working-dir /shared/exp1 "
                   "--host \"$(hostname -I | cut -d' ' -f1)\" &",
                   "ultrarun nameserver --run-id exp1 --working-dir /shared/exp1 --nic ib0 &")
    p.add_argument("--run-id", required=True, help=RUN_ID_HELP)
    p.add_argument("--working-dir", help="shared directory to write the credentials file into "
                                         "(also gives the run a fresh secret)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--host", help="address to listen on, one the other nodes reach "
                                      "(default 127.0.0.1: this machine only)")
    where.add_argument("--nic", help="listen on this network interface's address "
                                     "(`ip -brief address` lists them)")
    p.add_argument("--port", type=int, default=0,
                   help="port (0: the port in the credentials file a crashed name server of "
                        "this run left in --working-dir, else any free port)")
    p.add_argument("--fresh", action="store_true",
                   help="ignore a credentials file left in --working-dir: new secret, any port")
    add_secret(p)
    p.set_defaults(func=cmd_nameserver)

    p = add_parser("certs", "make TLS certificates for a run",
                   "Write a private CA and a certificate it signed into DIRECTORY, for two-way "
                   "TLS between the parties of a run (--tls DIRECTORY on every command, tls= in "
                   "the API). Copy DIRECTORY without ca.key to every node.",
                   "ultrarun certs /shared/exp1/tls",
                   "ultrarun nameserver --run-id exp1 --working-dir /shared/exp1 "
                   "--tls /shared/exp1/tls &")
    p.add_argument("directory", metavar="DIRECTORY", help="where to write the files")
    p.add_argument("--days", type=int, default=3650, help="validity in days")
    p.set_defaults(func=cmd_certs)

    p = add_parser("worker", "run long-lived worker process(es)",
                   "Start K worker processes of WORKER_CLASS that serve the run's jobs until shut "
                   "down (run this on each cluster node).",
                   "ultrarun worker ultrarun.benchmarks:BraninWorker --run-id exp1 "
                   "--working-dir /shared/exp1 --n-workers 4",
                   "ultrarun worker ~/exp/my_worker.py:MyWorker --run-id exp1 "
                   "--working-dir /shared/exp1 --arg lr=0.1")
    p.add_argument("worker_class", metavar="WORKER_CLASS",
                   help="package.module:WorkerClass (importable, or a module in the current "
                        "directory) or path/to/file.py:WorkerClass")
    add_run(p)
    p.add_argument("--n-workers", type=int, default=1,
                   help="worker processes to start on this node; with more than 1 this process "
                        "supervises them: it starts again one that dies (after 1, 2, 4, ... s) "
                        "and forwards SIGINT/SIGTERM")
    p.add_argument("--max-restarts", type=int, default=5,
                   help="with --n-workers: give a worker up after this many deaths in a row "
                        "within a minute of its start")
    p.add_argument("--timeout", type=float,
                   help="shut down after this many idle seconds (default: never)")
    p.add_argument("--lifetime", type=float,
                   help="leave gracefully after this many seconds, as on SIGTERM: take no new "
                        "job, let the running one finish within --grace, exit 0 (default: "
                        "never)")
    p.add_argument("--grace", type=float, default=60.0,
                   help="seconds a leaving worker (SIGTERM, --lifetime) gives its running job "
                        "before handing it back to run elsewhere")
    p.add_argument("--concurrent-type", choices=["thread", "process"], default="thread",
                   help="run compute in the worker's thread or in a child process")
    p.add_argument("--time-limit", type=float,
                   help="hard seconds per job (process mode; default: none)")
    p.add_argument("--memory-limit", type=float,
                   help="hard MiB per job (process mode; default: none)")
    p.add_argument("--host", help="address to listen on (default: the one facing the name server)")
    p.add_argument("--worker-id", default=None, help=argparse.SUPPRESS)
    p.add_argument("--wait-credentials", type=int, default=60,
                   help="seconds to wait for the credentials file")
    p.add_argument("--arg", type=_key_value, action="append", metavar="KEY=VALUE",
                   help="constructor argument for WORKER_CLASS (repeatable); VALUE is a Python "
                        "literal if it parses as one, else a string")
    add_secret(p)
    p.set_defaults(func=cmd_worker)

    p = add_parser("status", "show a run's workers, queue and jobs",
                   "Show the workers of a run (name, host, pid, state, current job, jobs done, "
                   "last seen), its queue, finished jobs and the best loss so far per budget.",
                   "ultrarun status --run-id exp1 --working-dir /shared/exp1 --watch 5",
                   "ultrarun status --run-id exp1 --nameserver 10.0.0.5:41235 --secret \"$S\" --json")
    add_run(p)
    p.add_argument("--watch", nargs="?", type=float, const=2.0, metavar="SECONDS",
                   help="refresh every SECONDS (2 if not given) until Ctrl-C (default: show once)")
    p.add_argument("--count", type=int, default=None,
                   help="with --watch: stop after N refreshes (default: never)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    add_secret(p)
    p.set_defaults(func=cmd_status)

    p = add_parser("report", "write an HTML report with plots",
                   "Read a logged run (configs.json, results.json) and write PNG figures and an "
                   "index.html.",
                   "ultrarun report demo_output",
                   "ultrarun report /shared/exp1/results --output ~/public_html/exp1 --watch 30")
    p.add_argument("directory", metavar="DIRECTORY", help="the run's result directory")
    p.add_argument("--output", help="where to write the report (default: DIRECTORY/report)")
    p.add_argument("--watch", nargs="?", type=float, const=5.0, metavar="SECONDS",
                   help="rewrite the report as results arrive, every SECONDS (5 if not given), "
                        "until Ctrl-C; the page reloads itself (default: write once)")
    p.add_argument("--count", type=int, default=None,
                   help="with --watch: stop after N rounds (default: never)")
    p.set_defaults(func=cmd_report)

    p = add_parser("dashboard", "watch a run live in the browser",
                   "Serve a live, read-only dashboard of the run logged in DIRECTORY (its "
                   "configs.json and results.json, or its journal) as it grows: losses, "
                   "incumbent, utilisation, a table of runs, the hyperparameters and their "
                   "importance; with --run-id and --working-dir also the workers and the queue. "
                   "See docs/dashboard.md.",
                   "ultrarun dashboard demo_output",
                   "ultrarun dashboard /shared/exp1 --run-id exp1 --working-dir /shared/exp1",
                   "ultrarun dashboard /shared/exp1 --host 0.0.0.0 --port 8050   # token in URL")
    p.add_argument("directory", metavar="DIRECTORY", help="the run's result directory")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on; any other than 127.0.0.1, localhost or ::1 "
                        "needs the random token printed with the URL")
    p.add_argument("--port", type=int, default=0, help="port (0: any free port)")
    p.add_argument("--space", metavar="FILE",
                   help="the ConfigSpace JSON file of the run, for log axes and categories "
                        "(default: DIRECTORY/configspace.json if there)")
    p.add_argument("--run-id", help="with --working-dir or --nameserver: also show the run's "
                                    "workers and queue, asked of its dispatcher")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--working-dir", help="the directory holding the run's credentials file")
    where.add_argument("--nameserver", type=_host_port, metavar="HOST:PORT",
                       help="the run's name server (the secret from --secret, ULTRARUN_SECRET "
                            "or your per-user secret)")
    add_secret(p)
    p.set_defaults(func=cmd_dashboard)

    p = add_parser("demo", "run a local optimisation end to end",
                   "Start an embedded name server and local worker processes, optimise a "
                   "multi-fidelity benchmark (Branin, budgets 1 to 27), print the incumbent per "
                   "budget and write results and a report.",
                   "ultrarun demo",
                   "ultrarun demo --optimizer hyperband --asha --seconds 30 --output /tmp/demo")
    p.add_argument("--n-workers", type=int, default=4, help="worker processes")
    p.add_argument("--output", default="demo_output",
                   help="result directory (configs.json, results.json, the journal, report/)")
    p.add_argument("--n-iterations", type=int, default=4,
                   help="iterations of the schedule to run (with the default, tpe, "
                        "successive halving brackets)")
    p.add_argument("--seconds", type=float,
                   help="run until this many seconds are used up instead of --n-iterations "
                        "(no job starts that would end later; default: off)")
    p.add_argument("--optimizer", choices=["tpe", "bohb", "dehb", "hyperband", "random"],
                   help="how configurations are chosen (default: tpe on successive halving, "
                        "the quality benchmark's winner)")
    p.add_argument("--iterations", choices=["hyperband", "successive_halving", "adaptive", "asha"],
                   help="the schedule (default: the optimizer's; tpe: adaptive, "
                        "bohb, dehb and hyperband: hyperband)")
    p.add_argument("--asha", action="store_true",
                   help="asynchronous successive halving (--iterations asha)")
    p.add_argument("--seed", type=int, default=0, help="seed of the optimizer's sampler")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args)
    try:
        return int(args.func(args) or 0)
    except (UltrarunError, ImportError, OSError) as exc:  # the user's to fix: no traceback
        log.debug("failed", exc_info=True)
        print(f"ultrarun {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
