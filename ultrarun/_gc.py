"""Keep the garbage collector's full passes short while a master or worker runs.

A full (generation 2) collection scans every tracked object. In a master that has imported
ConfigSpace, scipy and Pyro4 that takes 50 ms or more, and it stops every thread of the process:
a pause that long leaves every worker of a 10 ms-job run idle. ``gc.freeze()`` moves the objects
that exist when a run starts (modules, the optimizer, the space) out of the collector's sight, so
full passes only scan what the run itself created.
"""
from __future__ import annotations

import contextlib
import gc
import threading
from typing import Iterator

_lock = threading.Lock()
_depth = 0  # runs in this process that want the startup objects frozen


@contextlib.contextmanager
def frozen_startup_objects() -> Iterator[None]:
    """Freeze the objects alive now for the duration of the block (nesting and threads share
    one freeze; the last to leave unfreezes). Garbage is collected first, so none is kept."""
    global _depth
    with _lock:
        if _depth == 0:
            gc.collect()
            gc.freeze()
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                gc.unfreeze()


def freeze_live() -> None:
    """Inside a :func:`frozen_startup_objects` block (else nothing): freeze the objects alive now
    too, without a collection (the caller knows them live for the run: a resumed run's journal,
    its replayed jobs), so full passes stop scanning them; the block's end unfreezes them."""
    with _lock:
        if _depth > 0:
            gc.freeze()


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """No collection while the block builds many objects that hold no cycles (a journal read, a
    Result): each pass would scan them all again, to find no garbage. Inside a
    :func:`frozen_startup_objects` block they are frozen as they are (:func:`freeze_live`) before
    the collector is back, so its first pass need not scan them either."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            freeze_live()
            gc.enable()
