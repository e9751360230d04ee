"""The layout's rules, checked on the source (docs/architecture.md): Pyro4 behind one door, the
master above the executor contract only, and a worker that starts without the optimisation
stack."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

from conftest import ROOT_DIR

PACKAGE = ROOT_DIR / "ultrarun"


def _modules() -> dict[str, ast.Module]:
    return {str(path.relative_to(ROOT_DIR)): ast.parse(path.read_text(), str(path))
            for path in sorted(PACKAGE.rglob("*.py"))}


def _imported(tree: ast.Module) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add(("." * node.level) + (node.module or ""))
    return names


def test_only_transport_imports_pyro4_or_touches_pyro_internals():
    """The one door is the package ultrarun/transport/: no module outside it imports Pyro4 or
    touches a ``_pyro`` name."""
    modules = _modules()
    assert "ultrarun/transport/__init__.py" in modules and "ultrarun/transport.py" not in modules
    offenders = []
    for name, tree in modules.items():
        if name.startswith("ultrarun/transport/"):
            continue
        if any(module.split(".")[0] == "Pyro4" for module in _imported(tree)):
            offenders.append(f"{name} imports Pyro4")
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_pyro"):
                offenders.append(f"{name}:{node.lineno} touches {node.attr}")
    assert offenders == []


def test_the_master_depends_on_the_executor_contract_not_on_runners():
    imported = _imported(_modules()["ultrarun/master.py"])
    assert ".executor" in imported
    assert not any("runners" in module for module in imported), imported


def test_importing_the_worker_does_not_load_the_optimisation_stack():
    """Worker processes start fast: no ConfigSpace, scipy or matplotlib behind them."""
    code = ("import sys, ultrarun.worker, ultrarun.cli; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'ConfigSpace', 'scipy', 'matplotlib', 'pandas'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=Path(ROOT_DIR))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_the_dispatcher_worker_messages_are_written_in_the_protocol_module_only():
    """Each message is a record in ultrarun/protocol.py with to_wire/from_wire; no other module
    builds one as a dict of its fields (a job or a result names its token and attempt)."""
    offenders = []
    for name, tree in _modules().items():
        if name == "ultrarun/protocol.py":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Dict):
                keys = {k.value for k in node.keys if isinstance(k, ast.Constant)}
                if {"token", "attempt"} <= keys or {"acked", "held"} <= keys:
                    offenders.append(f"{name}:{node.lineno}")
    assert offenders == []
