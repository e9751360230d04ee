"""HpBandSter's module paths on ultrarun: change ``hpbandster`` to ``ultrarun.compat.hpbandster``
in a script's imports, or call :func:`install` first and change nothing.

Constructors take HpBandSter's parameters in HpBandSter's positional order; ``port=None`` /
``nameserver_port=None`` mean Pyro's default port (``PYRO_NS_PORT`` or 9090); brackets are sized
with HpBandSter's formula. A Result pickled by HpBandSter loads with :func:`load` (or with
``pickle.load`` after :func:`install`). Importing it lets ConfigSpace take ConfigSpace 0.4's
arguments (:mod:`ultrarun.compat.configspace`). What differs on purpose is in docs/migrating.md.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import io
import pickle
import sys
from typing import Any, BinaryIO

from ...errors import ConfigurationError
from ..configspace import accept_legacy_spaces

accept_legacy_spaces()  # HpBandSter's examples write ConfigSpace 0.4's arguments

ALIAS = "hpbandster"


def _target(name: str) -> str:
    """``hpbandster.x.y`` -> ``ultrarun.compat.hpbandster.x.y``."""
    return __name__ + name[len(ALIAS):]


class _AliasFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves ``hpbandster`` and its submodules to this package's modules, on import."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != ALIAS and not fullname.startswith(ALIAS + "."):
            return None
        try:
            found = importlib.util.find_spec(_target(fullname))
        except ModuleNotFoundError:  # its parent is not in the drop-in either
            found = None
        if found is None:
            return None  # a module HpBandSter has and the drop-in does not (hpbandster.examples)
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: Any) -> Any:
        module = importlib.import_module(_target(spec.name))
        spec.loader_state = module.__spec__
        return module

    def exec_module(self, module: Any) -> None:
        # the module ran when it was imported under its own name; the import system has just
        # given it the alias's spec: give it back its own
        module.__spec__ = module.__spec__.loader_state


_FINDER = _AliasFinder()


def install() -> None:
    """Make ``import hpbandster`` (and ``hpbandster.core.worker``, ...) give these modules.

    Call it at the top of a script, before anything imports hpbandster, and outside the
    ``if __name__ == "__main__":`` guard, so processes started with "spawn" (which re-import the
    script) alias too. Idempotent; :func:`uninstall` undoes it.
    """
    if _FINDER in sys.meta_path:
        return
    loaded = sys.modules.get(ALIAS)
    if loaded is not None and not loaded.__name__.startswith(__name__):
        raise ConfigurationError(f"the real hpbandster is already imported (from "
                                 f"{getattr(loaded, '__file__', '?')}); call "
                                 "ultrarun.compat.hpbandster.install() before importing it")
    sys.meta_path.insert(0, _FINDER)


def uninstall() -> None:
    """Undo :func:`install`: forget the ``hpbandster`` aliases."""
    if _FINDER in sys.meta_path:
        sys.meta_path.remove(_FINDER)
    for name in [n for n in sys.modules if n == ALIAS or n.startswith(ALIAS + ".")]:
        if sys.modules[name].__name__.startswith(__name__):
            del sys.modules[name]


class Unpickler(pickle.Unpickler):
    """Reads pickles that name HpBandSter's classes (a pickled ``Result``, ``Job``, worker...)."""

    def find_class(self, module: str, name: str) -> Any:
        if module == ALIAS or module.startswith(ALIAS + "."):
            module = _target(module)
        return super().find_class(module, name)


def load(file: BinaryIO) -> Any:
    """``pickle.load`` for pickles written with HpBandSter's classes."""
    return Unpickler(file).load()


def loads(data: bytes) -> Any:
    """``pickle.loads`` for pickles written with HpBandSter's classes."""
    return load(io.BytesIO(data))


__all__ = ["install", "uninstall", "load", "loads", "Unpickler"]
