"""Run an unchanged HpBandSter script on ultrarun: ``python -m ultrarun.compat.hpbandster SCRIPT
[ARGS...]`` calls :func:`ultrarun.compat.hpbandster.install` and runs SCRIPT as ``__main__``."""
from __future__ import annotations

import runpy
import sys

from . import install


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        raise SystemExit(0 if argv else 2)
    install()
    sys.argv = argv
    runpy.run_path(argv[0], run_name="__main__")


if __name__ == "__main__":
    main()
