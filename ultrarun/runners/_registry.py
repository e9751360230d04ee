"""Backends by name, so ``Evaluator.create(method=...)`` and configuration files can pick one.

A new backend (the Pyro dispatcher, say) becomes available everywhere with one call:
``register_runner("pyro", PyroRunner)``, where ``PyroRunner(single_worker, n_workers=None,
**kwargs)`` subclasses :class:`AbstractParallelRunner`.
"""
from __future__ import annotations

import importlib
from typing import Any, Callable

from ..errors import ConfigurationError
from ._base import AbstractRunner

RunnerFactory = Callable[..., AbstractRunner]

#: name -> factory(single_worker, **kwargs), or "module:attribute" to import on first use (so
#: optional dependencies such as mpi4py and ray are imported only when asked for).
_RUNNERS: dict[str, RunnerFactory | str] = {
    "serial": "ultrarun.runners._serial:SerialRunner",
    "thread": "ultrarun.runners._thread:ThreadRunner",
    "process": "ultrarun.runners._process:ProcessRunner",
    "dask": "ultrarun.runners._dask:DaskParallelRunner",
    "mpicomm": "ultrarun.runners._mpi:MPICommRunner",
    "ray": "ultrarun.runners._ray:RayRunner",
    "pyro": "ultrarun.runners._pyro:PyroRunner",
}


def register_runner(name: str, factory: RunnerFactory | str) -> None:
    """Make ``factory(single_worker, **kwargs)`` available as backend ``name``."""
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"a backend name must be a non-empty str, got {name!r}")
    _RUNNERS[name] = factory


def runner_names() -> list[str]:
    """The registered backend names."""
    return sorted(_RUNNERS)


def make_runner(name: str, single_worker: AbstractRunner, **kwargs: Any) -> AbstractRunner:
    """Wrap ``single_worker`` in backend ``name`` (``"serial"``, ``"process"``, ``"dask"``...);
    ConfigurationError naming the choices if ``name`` is unknown."""
    try:
        factory = _RUNNERS[name]
    except (KeyError, TypeError):
        raise ConfigurationError(f"unknown runner backend {name!r}; "
                                 f"choose one of {runner_names()}") from None
    if isinstance(factory, str):
        module, _, attribute = factory.partition(":")
        factory = getattr(importlib.import_module(module), attribute)
    return factory(single_worker, **kwargs)


__all__ = ["register_runner", "runner_names", "make_runner"]
