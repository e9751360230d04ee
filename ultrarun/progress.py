"""What a running master shows of its progress (``show_progress``): a tqdm bar on a terminal,
log lines elsewhere, at a steady interval whether jobs finish or not. What the line says:
docs/master.md.
"""
from __future__ import annotations

import logging
import math
import sys
import threading
import time
from typing import IO, Any, Callable

log = logging.getLogger(__name__)


class Progress:
    """Progress of one ``Master.run``: call :meth:`update` for every finished job, then
    :meth:`close`.

    Args:
        run_id: shown in front of every line.
        total: jobs the run will finish if nothing stops it early (None: not known).
        time_left: seconds until the run's deadline (inf: none).
        bar: a tqdm bar (True) or log lines (False).
        interval: seconds between two log lines.
        first: seconds until the first log line (default ``interval``).
        logger, file, clock: where lines go and what time it is (tests inject them).
    """

    def __init__(self, run_id: Any, total: int | None = None, time_left: float = math.inf,
                 bar: bool = False, interval: float = 30.0, logger: logging.Logger | None = None,
                 file: IO[str] | None = None, clock: Callable[[], float] = time.monotonic,
                 first: float | None = None):
        self.run_id = run_id
        self.total = total
        self.clock = clock
        self.interval = float(interval)
        self.logger = logger or log
        self.done = 0
        self.running = 0
        self.failed = 0
        self.best: tuple[float, float] | None = None  # (budget, loss) on the largest budget
        self._start = clock()
        self._deadline = self._start + time_left
        self._next_line = self._start + (self.interval if first is None else float(first))
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None
        self._bar: Any = None
        if bar:
            from tqdm import tqdm

            self._bar = tqdm(total=total, unit="job", desc=f"run {run_id}", dynamic_ncols=True,
                             file=file)

    def update(self, running: int, failed: int, best_per_budget: dict[float, float]) -> None:
        """One more job finished; ``best_per_budget`` is the best loss seen on each budget."""
        self.done += 1
        self.running, self.failed = running, failed
        if best_per_budget:
            budget = max(best_per_budget)
            self.best = (budget, best_per_budget[budget])
        if self._bar is not None:
            self._bar.update(1)
            self._bar.set_postfix(self._postfix(), refresh=False)
            return
        self.tick()

    def tick(self) -> None:
        """Log the line if it is due (log lines only)."""
        with self._lock:
            now = self.clock()
            if self._bar is None and now >= self._next_line:
                self.logger.info("%s", self.line())
                self._next_line = now + self.interval

    def start(self) -> "Progress":
        """Log lines: a thread ticks, so a line comes every interval even while no job ends."""
        if self._bar is None and self._ticker is None:
            self._ticker = threading.Thread(target=self._tick_loop, name="master-progress",
                                            daemon=True)
            self._ticker.start()
        return self

    def _tick_loop(self) -> None:
        while not self._stop.wait(max(0.05, min(self.interval, self._next_line - self.clock()))):
            self.tick()

    def line(self, eta: bool = True) -> str:
        """``run exp1: 12/40 jobs, 2 running, 1 failed, best 0.412 on budget 27, ETA 1m20s``."""
        done = f"{self.done}/{self.total}" if self.total else f"{self.done}"
        parts = [f"run {self.run_id}: {done} jobs", f"{self.running} running",
                 f"{self.failed} failed"]
        if self.best is not None:
            parts.append(f"best {self.best[1]:.4g} on budget {self.best[0]:g}")
        seconds = self._eta() if eta else None
        if seconds is not None:
            parts.append(f"ETA {_duration(seconds)}")
        return ", ".join(parts)

    def _postfix(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"running": self.running, "failed": self.failed}
        if self.best is not None:
            shown[f"best@{self.best[0]:g}"] = f"{self.best[1]:.4g}"
        if math.isfinite(self._deadline):
            shown["left"] = _duration(max(0.0, self._deadline - self.clock()))
        return shown

    def _eta(self) -> float | None:
        """Seconds until the end: from the pace so far and the total, capped by the deadline."""
        now = self.clock()
        left = self._deadline - now
        if self.total and self.done:
            by_pace = (now - self._start) / self.done * max(self.total - self.done, 0)
            return max(0.0, min(by_pace, left))
        return max(0.0, left) if math.isfinite(left) else None

    def close(self) -> None:
        """End the bar, or log the last line. Idempotent."""
        self._stop.set()
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.done and self._next_line != math.inf:
            self.logger.info("%s; took %s", self.line(eta=False),
                             _duration(self.clock() - self._start))
        self._next_line = math.inf


def ensure_logging(logger: logging.Logger, all_of_ultrarun: bool = True) -> None:
    """INFO lines of ``logger`` (and of all ultrarun) reach stderr when the program configured
    no logging at all (a script run by a batch scheduler would otherwise log nothing)."""
    top = logging.getLogger("ultrarun")
    if all_of_ultrarun and not top.hasHandlers():
        for below, ours in list(_installed.items()):  # one handler above them now: no copies
            below.removeHandler(ours)
            del _installed[below]
    elif logger.hasHandlers():
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    for target in (top, logger) if all_of_ultrarun else (logger,):  # the top first: once
        if not target.hasHandlers():
            target.addHandler(handler)
            _installed[target] = handler
        if target.level == logging.NOTSET:
            target.setLevel(logging.INFO)


_installed: dict[logging.Logger, logging.Handler] = {}  # by ensure_logging


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


__all__ = ["Progress", "ensure_logging"]
