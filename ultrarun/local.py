"""Everything on one machine: an embedded name server and worker processes (``ultrarun demo``,
:func:`ultrarun.minimize`). How the processes start, and what that asks of a script (module-level
functions, the ``__main__`` guard, both checked): docs/master.md.
"""
from __future__ import annotations

import ast
import logging
import math
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable

from . import transport
from .errors import ConfigurationError, UltrarunError
from .nameserver import NameServer
from .supervisor import Restarts, describe_exit
from .worker import Worker

log = logging.getLogger(__name__)
_REPORT_EVERY = 5.0  # seconds between "n of N worker processes up" lines while they start
_WATCH_EVERY = 0.2  # seconds between the watcher's looks at the worker processes


def _worker_main(worker_class: type, kwargs: dict, eval_func: Callable | None,
                 concurrent_type: str, log_level: int) -> None:
    logging.basicConfig(level=log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    worker = worker_class(**kwargs)
    if eval_func is not None:
        worker.initialize(eval_func)
    signal.signal(signal.SIGTERM, lambda *_: worker.shutdown())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops us on Ctrl-C
    worker.run(background=False, concurrent_type=concurrent_type)


_MAIN_PATH = "_ULTRARUN_FORKSERVER_MAIN"  # the main script, for the fork server to import


def _context() -> Any:
    """Worker processes forked from a fork server that imported the worker runtime and the
    main script once: n workers cost one import of the script, not n imports at once
    (``spawn``, where there is no fork server). Python's own ``__main__`` preload does not
    reach the fork server (3.11), so :mod:`ultrarun._forkserver_main` imports the script."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    main = getattr(sys.modules.get("__main__"), "__file__", None)
    if main is not None:
        os.environ.setdefault(_MAIN_PATH, os.path.abspath(main))
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["ultrarun.worker", "ultrarun._forkserver_main"])
    return ctx


class LocalCluster:
    """A name server in this process and ``n_workers`` worker processes of ``worker_class``.

    Use as a context manager; its ``run_id``, ``nameserver`` and ``nameserver_port`` tell a
    master where to find the workers. A worker process that dies once it has registered (its
    compute crashed the process: a segfault, ``os._exit``, the OOM killer) is started again at
    once; the dispatcher retries or ends the job it ran (LOST). One that dies before it
    registers is started again after a back-off, and given up after five such deaths in a row.

    Args:
        n_workers (int): Worker processes to start.
        worker_class (type): A subclass of [Worker][ultrarun.worker.Worker], importable by name.
        worker_kwargs (dict | None): Constructor arguments for ``worker_class``.
        eval_func (Callable | None): A plain ``f(config, budget)``: each worker runs it as its
            compute (``Worker.initialize``).
        run_id (str | None): The run's id (default: a fresh one).
        working_directory (str | PathLike | None): The run's directory (default: a temporary
            one).
        concurrent_type (str): ``"thread"`` or ``"process"``: where a worker runs compute.
        secret (str | None): The run secret (default: a fresh one).
        startup_timeout (float): Seconds the worker processes have to register.
    """

    def __init__(self, n_workers: int = 4, worker_class: type = Worker,
                 worker_kwargs: dict | None = None, eval_func: Callable | None = None,
                 run_id: str | None = None, working_directory: str | os.PathLike | None = None,
                 concurrent_type: str = "thread", secret: str | None = None,
                 startup_timeout: float = 120.0):
        if n_workers < 1:
            raise ConfigurationError(f"n_workers must be >= 1, got {n_workers}")
        if not (isinstance(worker_class, type) and issubclass(worker_class, Worker)):
            raise ConfigurationError("worker_class must be a subclass of ultrarun.Worker")
        if not startup_timeout > 0:
            raise ConfigurationError(f"startup_timeout must be > 0 seconds, got {startup_timeout!r}")
        check_importable(worker_class, "worker_class")
        if eval_func is not None:
            check_importable(eval_func, "the function")
        self.startup_timeout = float(startup_timeout)
        self.n_workers = n_workers
        self.worker_class = worker_class
        self.worker_kwargs = dict(worker_kwargs or {})
        self.eval_func = eval_func
        self.run_id = run_id or f"local-{uuid.uuid4().hex[:8]}"
        self.concurrent_type = concurrent_type
        self._tmp: tempfile.TemporaryDirectory | None = None
        if working_directory is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="ultrarun-")
            working_directory = self._tmp.name
        self.working_directory = working_directory
        self.nameserver = NameServer(self.run_id, working_directory=working_directory,
                                     secret=secret)
        self.processes: list[Any] = []  # by slot (worker_id)
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    @property
    def nameserver_port(self) -> int:
        return self.nameserver.port

    @property
    def secret(self) -> str:
        return self.nameserver.secret

    def start(self) -> "LocalCluster":
        """Start the name server and the worker processes.

        Returns once every worker has registered.

        Raises:
            UltrarunError: A worker process died first, or not all registered within
                ``startup_timeout`` seconds (everything is stopped)."""
        check_main_guard()
        started = time.monotonic()
        try:
            self._start()
            self._wait_for_registration()
            self._watcher = threading.Thread(target=self._watch, name="ultrarun-local-watch",
                                             daemon=True)
            self._watcher.start()
        except BaseException:
            self.shutdown()
            raise
        log.info("local cluster %s: %d worker processes up after %.1f s", self.run_id,
                 self.n_workers, time.monotonic() - started)
        return self

    def _start(self) -> None:
        self.nameserver.start()
        log.info("starting %d worker processes (your script is imported once, by a fork "
                 "server, and the workers are forked from it)", self.n_workers)
        self.processes = [self._process(i) for i in range(self.n_workers)]

    def _process(self, slot: int) -> Any:
        """Start the worker process of ``slot``."""
        kwargs = dict(self.worker_kwargs, run_id=self.run_id, nameserver=self.nameserver.host,
                      nameserver_port=self.nameserver_port, worker_id=slot, secret=self.secret)
        proc = _context().Process(target=_worker_main, name=f"ultrarun-worker-{slot}",
                                  args=(self.worker_class, kwargs, self.eval_func,
                                        self.concurrent_type,
                                        logging.getLogger("ultrarun").getEffectiveLevel()),
                                  daemon=True)
        proc.start()
        return proc

    def _watch(self) -> None:
        """Start the worker process of a slot again when it dies (the class docstring says
        when); runs until shutdown."""
        restarts, due = Restarts(stable=math.inf), {}  # slot -> when to start it again
        while not self._stopping.wait(_WATCH_EVERY):
            for slot, proc in enumerate(self.processes):
                if proc is None or proc.exitcode is None or slot in due:
                    continue
                try:
                    with self.nameserver.client() as client:
                        registered = [n for n in client.list(transport.worker_prefix(self.run_id))
                                      if transport.parse_worker_name(n)["pid"] == proc.pid]
                        for name in registered:  # so the dispatcher need not find it dead first
                            client.remove(name)
                except UltrarunError as exc:  # the watcher goes on: back-off, as if unregistered
                    log.warning("could not ask the name server about worker %d: %s", slot, exc)
                    registered = []
                if registered:
                    restarts.quick.pop(slot, None)
                    delay: float | None = 0.0
                else:
                    delay = restarts.after_death(slot, 0.0)
                what = describe_exit(proc.exitcode)
                if delay is None:
                    log.error("worker process %d died before registering (%s) %d times in a "
                              "row: not starting it again", slot, what, restarts.limit + 1)
                    self.processes[slot] = None
                    continue
                log.warning("worker process %d (pid %d) died: %s%s; starting it again%s", slot,
                            proc.pid, what, " while it ran a job" if registered else
                            " before it registered", f" in {delay:g} s" if delay else "")
                due[slot] = time.monotonic() + delay
            for slot, when in list(due.items()):
                if when <= time.monotonic() and not self._stopping.is_set():
                    del due[slot]
                    self.processes[slot] = self._process(slot)

    def _wait_for_registration(self) -> None:
        """Until each worker process is in the name server; wakes as soon as one dies."""
        start = time.monotonic()
        deadline, report = start + self.startup_timeout, start + _REPORT_EVERY
        pending = {proc.pid: proc for proc in self.processes}
        with self.nameserver.client() as client:
            while True:
                for name in client.list(transport.worker_prefix(self.run_id)):
                    pending.pop(transport.parse_worker_name(name)["pid"], None)
                if not pending:
                    return
                dead = [proc for proc in pending.values() if proc.exitcode is not None]
                if dead:
                    raise UltrarunError(
                        f"worker process {dead[0].name} exited with code {dead[0].exitcode} "
                        "before it registered (its error is printed above). Worker processes "
                        "import your script again: call LocalCluster/minimize under "
                        "'if __name__ == \"__main__\":', and define the worker class or "
                        "function at module level of an importable file")
                now = time.monotonic()
                if now >= report:
                    log.info("%d of %d worker processes up after %.0f s (they import your "
                             "script and ultrarun)", self.n_workers - len(pending),
                             self.n_workers, now - start)
                    report = now + _REPORT_EVERY
                if now >= deadline:
                    raise UltrarunError(
                        f"{len(pending)} of {self.n_workers} worker processes had not registered "
                        f"with the name server after {self.startup_timeout:g} s "
                        "(startup_timeout); is the machine overloaded?")
                multiprocessing.connection.wait([p.sentinel for p in pending.values()],
                                                timeout=0.05)

    def shutdown(self) -> None:
        """Stop the worker processes and the name server. Idempotent."""
        self._stopping.set()
        if self._watcher is not None:
            self._watcher.join(timeout=30)
            self._watcher = None
        self.processes = [proc for proc in self.processes if proc is not None]
        for proc in self.processes:
            if proc.is_alive():
                proc.terminate()
        for proc in self.processes:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)
        self.processes = []
        self.nameserver.shutdown()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> "LocalCluster":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()


def check_importable(obj: Any, what: str) -> None:
    """Raise a one-line ConfigurationError unless worker processes can import ``obj`` by name."""
    qualname = getattr(obj, "__qualname__", "")
    if "<lambda>" in qualname or "<locals>" in qualname:
        kind = "a lambda" if "<lambda>" in qualname else "defined inside a function"
        raise ConfigurationError(
            f"{what} {qualname!r} is {kind}; worker processes import it by name, so define it "
            "with 'def' at module level of a .py file")
    try:
        pickle.dumps(obj)
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        raise ConfigurationError(
            f"{what} {qualname or obj!r} cannot be sent to worker processes ({exc}); define it "
            "with 'def' at module level of a .py file") from None


def check_main_guard() -> None:
    """Raise a ConfigurationError when the running script calls us outside
    ``if __name__ == "__main__":``: each spawned worker would run that call again and die.

    Looks at the line of the main script that is executing now. What multiprocessing does not
    import again passes: interactive sessions, notebooks, ``python -c``, a package's
    ``__main__`` (``python -m package``).
    """
    main = sys.modules.get("__main__")
    spec_name = getattr(getattr(main, "__spec__", None), "name", None) or ""
    if (not getattr(main, "__file__", None) or spec_name == "__main__"
            or spec_name.endswith(".__main__")):
        return
    frame = sys._getframe(1)
    while frame is not None and not (frame.f_code.co_name == "<module>"
                                     and frame.f_globals.get("__name__") in ("__main__",
                                                                              "__mp_main__")):
        frame = frame.f_back
    if frame is None:
        return  # called from a function after the script ran (atexit, a thread)
    try:
        tree = ast.parse(Path(frame.f_code.co_filename).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, ValueError):
        return
    line = frame.f_lineno
    for node in ast.walk(tree):
        if (isinstance(node, ast.If) and _is_main_test(node.test)
                and node.body[0].lineno <= line <= (node.body[-1].end_lineno or line)):
            return
    raise ConfigurationError(
        f"{frame.f_code.co_filename}, line {line}: worker processes import this script again "
        "and would run this line too; put it under 'if __name__ == \"__main__\":'")


def _is_main_test(test: ast.expr) -> bool:
    """``__name__ == "__main__"`` (either way round)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1
            and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = {ast.dump(test.left), ast.dump(test.comparators[0])}
    return sides == {ast.dump(ast.Name("__name__", ast.Load())),
                     ast.dump(ast.Constant("__main__"))}


__all__ = ["LocalCluster"]
