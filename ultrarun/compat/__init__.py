"""Drop-in modules for scripts written for HpBandSter, ultraopt and DeepHyper.

``ultrarun.compat.hpbandster`` mirrors ``hpbandster``'s module paths, ``ultrarun.compat.ultraopt``
ultraopt's ``async_comm``, optimizers and ``fmin``, and ``ultrarun.compat.deephyper`` DeepHyper's
evaluators. Each keeps its library's constructor parameters and positional order, so a script
changes only its imports (or calls ``ultrarun.compat.hpbandster.install()`` and changes nothing).
What differs on purpose is listed in docs/migrating.md.
"""
from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import time
from pathlib import Path
from typing import Any

from ..transport import DEFAULT_NAMESERVER_PORT as PYRO_DEFAULT_PORT  # Pyro's 9090


def pyro_port(port: Any) -> int:
    """``port``, or for None the port Pyro4's ``locateNS``/``startNS`` would use: the
    ``PYRO_NS_PORT`` environment variable if set, else 9090."""
    if port is not None:
        return int(port)
    raw = os.environ.get("PYRO_NS_PORT")
    if raw is None:
        return PYRO_DEFAULT_PORT
    try:
        return int(raw)
    except ValueError:
        from ..errors import ConfigurationError

        raise ConfigurationError(f"PYRO_NS_PORT is {raw!r}; it must be a port number") from None


#: where a compat run keeps its journal when the script names none (HpBandSter and ultraopt
#: write none): a per-user directory, out of the current directory, one file per run
JOURNAL_DIR = os.path.join("~", ".ultrarun", "journals")

log = logging.getLogger(__name__)


def private_journal(run_id: Any) -> Path:
    """A new journal file of its own for a run whose script names none.

    A path in :data:`JOURNAL_DIR` (made mode 0700) with the run id, the time, the process id
    and a random part in its name, so two runs, even with one run id in one directory, never
    share one. The compat masters remove it when they shut down; a
    run that crashed leaves it there to resume from (its path is logged at start).
    """
    folder = Path(os.path.expanduser(JOURNAL_DIR))
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    stem = re.sub(r"[^\w.-]", "_", str(run_id))[:64]
    path = folder / (f"{stem}-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-"
                     f"{secrets.token_hex(4)}.journal.jsonl")
    log.info("run %s keeps its journal in %s (removed when it shuts down; after a crash, "
             "resume with resume=True, checkpoint_file=<that path>)", run_id, path)
    return path


def remove_journal(path: Path | None) -> None:
    """Remove a journal :func:`private_journal` made (the run shut down)."""
    if path is not None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


__all__ = ["pyro_port", "PYRO_DEFAULT_PORT", "private_journal", "remove_journal", "JOURNAL_DIR"]
