"""Imported by the fork server of :class:`ultrarun.local.LocalCluster`: imports the main script
(as multiprocessing would for ``spawn``), so the worker processes forked from it need not."""
from __future__ import annotations

import multiprocessing.spawn
import os

_path = os.environ.get("_ULTRARUN_FORKSERVER_MAIN")
if _path and os.path.isfile(_path):
    multiprocessing.spawn.import_main_path(_path)
