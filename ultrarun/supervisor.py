"""``ultrarun worker --n-workers N``: N single-worker processes, each restarted when it dies.

A child that dies (a signal, a non-zero exit) is logged with its exit code or signal, its name
is removed from the name server (so ``ultrarun status`` does not list it forever), and it is
started again after a back-off, up to a limit of quick deaths in a row. A child that exits 0
ended on purpose (its ``--lifetime``, its idle ``--timeout``, a SIGTERM) and is not restarted.
See docs/worker.md ("Several workers per node") and docs/architecture.md.
"""
from __future__ import annotations

import logging
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

log = logging.getLogger(__name__)


def describe_exit(code: int) -> str:
    """``exit code 3`` or ``killed by SIGKILL`` (a Popen return code)."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


@dataclass
class Restarts:
    """When to start a dead child again (pure: the caller passes how long the child lived).

    The ``n``-th quick death in a row of a slot waits ``min(cap, base * 2 ** (n - 1))`` seconds;
    after ``limit`` quick deaths in a row the slot is given up. A child that lived ``stable``
    seconds or more did not die quickly: its slot's count starts again."""

    limit: int = 5
    base: float = 1.0
    cap: float = 60.0
    stable: float = 60.0
    quick: dict[int, int] = field(default_factory=dict)

    def after_death(self, slot: int, lived: float) -> float | None:
        """Seconds to wait before starting the slot again, or None to give it up."""
        n = 1 if lived >= self.stable else self.quick.get(slot, 0) + 1
        self.quick[slot] = n
        if n > self.limit:
            return None
        return min(self.cap, self.base * 2 ** (n - 1))


class Supervisor:
    """Runs ``argv_for(slot)`` for every slot and keeps them running (see the module
    docstring). ``unregister(pid, slot)`` removes a dead child's name from the name server.
    ``stop()`` (from a signal handler) forwards SIGTERM to the children and restarts nothing
    more; :meth:`run` returns when every child has ended: 0 if all ended on purpose."""

    def __init__(self, argv_for: Callable[[int], Sequence[str]], n: int,
                 unregister: Callable[[int, int], Any] | None = None,
                 restarts: Restarts | None = None, clock: Any = time,
                 poll: float = 0.2, popen: Callable[..., Any] = subprocess.Popen):
        self.argv_for = argv_for
        self.n = n
        self.unregister = unregister
        self.restarts = restarts or Restarts()
        self.clock = clock
        self.poll = poll
        self.popen = popen
        self.children: dict[int, tuple[Any, float]] = {}  # slot -> (process, started)
        self.due: dict[int, float] = {}  # slot -> when to start it again
        self.failed: dict[int, int] = {}  # slot -> the return code it was given up with
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def _start(self, slot: int) -> None:
        proc = self.popen(list(self.argv_for(slot)))
        self.children[slot] = (proc, self.clock.monotonic())

    def stop(self, signum: int = signal.SIGTERM) -> None:
        """Stop restarting; send ``signum`` to every running child."""
        self._stop.set()
        with self._lock:
            procs = [proc for proc, _ in self.children.values()]
        for proc in procs:
            if proc.poll() is None:
                try:
                    proc.send_signal(signum)
                except ProcessLookupError:
                    pass

    def run(self) -> int:
        with self._lock:
            for slot in range(self.n):
                self._start(slot)
        while True:
            with self._lock:
                self._reap()
                if self._stop.is_set():
                    self.due.clear()
                now = self.clock.monotonic()
                for slot, when in sorted(self.due.items()):
                    if when <= now:
                        del self.due[slot]
                        log.warning("starting worker %d again", slot)
                        self._start(slot)
                if not self.children and not self.due:
                    break
            self._stop.wait(self.poll)
        return max((abs(code) for code in self.failed.values()), default=0)

    def _reap(self) -> None:
        """Caller holds the lock: note the children that ended; plan their restarts."""
        for slot, (proc, started) in list(self.children.items()):
            code = proc.poll()
            if code is None:
                continue
            del self.children[slot]
            if code == 0:
                log.info("worker %d (pid %d) ended (exit code 0)", slot, proc.pid)
                continue
            if self.unregister is not None:
                try:
                    self.unregister(proc.pid, slot)
                except Exception as exc:  # the name server may be gone: the dispatcher's
                    log.debug("could not unregister worker %d: %s", slot, exc)  # probe will
            if self._stop.is_set():
                log.info("worker %d (pid %d) ended: %s", slot, proc.pid, describe_exit(code))
                continue
            lived = self.clock.monotonic() - started
            delay = self.restarts.after_death(slot, lived)
            if delay is None:
                self.failed[slot] = code
                log.error("worker %d (pid %d) died: %s, after %.0f s; it died %d times in a "
                          "row within %.0f s of its start: not starting it again", slot,
                          proc.pid, describe_exit(code), lived, self.restarts.limit + 1,
                          self.restarts.stable)
                continue
            self.due[slot] = self.clock.monotonic() + delay
            log.warning("worker %d (pid %d) died: %s, after %.0f s; starting it again in "
                        "%g s (quick death %d of %d allowed)", slot, proc.pid,
                        describe_exit(code), lived, delay, self.restarts.quick[slot],
                        self.restarts.limit)


__all__ = ["Supervisor", "Restarts", "describe_exit"]
