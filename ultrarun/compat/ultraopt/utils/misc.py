"""``ultraopt.utils.misc``: ultraopt's checkpoint, the optimizer dumped with joblib."""
from __future__ import annotations

import os
import threading
from typing import Any


def dump_checkpoint(optimizer: Any, path: Any) -> None:
    """Write ``optimizer`` to ``path`` with joblib, whole or not at all; the file it replaces
    is kept as ``<path>.bak``, as ultraopt keeps."""
    import joblib

    path = os.fspath(path)
    partial = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
    joblib.dump(optimizer, partial)
    if os.path.exists(path):
        os.replace(path, path + ".bak")
    os.replace(partial, path)


class Checkpoint:
    """ultraopt's checkpoint: the optimizer, dumped with joblib to ``path`` every ``freq``
    results (and by :meth:`write`). The file is replaced whole (a crash mid-write leaves the
    last complete one); the one it replaces is kept as ``<path>.bak``, as ultraopt keeps."""

    def __init__(self, optimizer: Any, path: Any, freq: int = 10):
        self.optimizer, self.path, self.freq = optimizer, path, max(1, int(freq))
        self.count = 0
        self._lock = threading.Lock()

    def result(self) -> None:
        """One more result was told: write every ``freq`` of them."""
        self.count += 1
        if self.count % self.freq == 0:
            self.write()

    def write(self) -> None:
        if self.path is not None:
            with self._lock:
                dump_checkpoint(self.optimizer, self.path)


__all__ = ["Checkpoint", "dump_checkpoint"]
