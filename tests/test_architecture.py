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


def _package_imports(name: str, tree: ast.Module) -> set[str]:
    """The ultrarun modules ``name`` imports, as paths (``ultrarun/job.py``, a package as its
    ``__init__.py``); ``from . import x`` imports ``x``."""
    package = list(Path(name).parent.parts)
    dotted = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            dotted += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            base += node.module.split(".") if node.module else []
            dotted += [".".join(base)] + [".".join(base + [a.name]) for a in node.names]
    found = set()
    for module in dotted:
        for path in (module.replace(".", "/") + ".py", module.replace(".", "/") + "/__init__.py"):
            if path.startswith("ultrarun/") and (ROOT_DIR / path).is_file():
                found.add(path)
    return found - {"ultrarun/__init__.py"}


PYRO_SIDE = ("dispatcher", "transport", "worker", "nameserver", "runners")


def test_the_master_depends_on_the_executor_contract_not_on_the_pyro_side():
    """The master, its journal and whatever they import, directly or not, import no
    dispatcher, transport, worker, name server or runner module; the front ends and compat,
    which build the Pyro dispatcher for it, may (and do)."""
    modules = _modules()
    seen, todo = set(), ["ultrarun/master.py"]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += _package_imports(name, modules[name])
    offenders = sorted(m for m in seen if any(part in PYRO_SIDE or part[:-3] in PYRO_SIDE
                                              for part in Path(m).parts))
    assert offenders == [], f"the master reaches {offenders}"
    assert {"ultrarun/executor.py", "ultrarun/journal.py"} <= seen
    assert "ultrarun/dispatcher.py" in _package_imports(
        "ultrarun/frontends.py", modules["ultrarun/frontends.py"])


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


def test_the_master_takes_a_dozen_parameters_and_leaves_the_journal_to_its_module():
    """HpBandSter's long signature lives in the front ends and compat; the journal's file is
    the journal's own."""
    tree = _modules()["ultrarun/master.py"]
    init = next(node for cls in tree.body if isinstance(cls, ast.ClassDef) and cls.name == "Master"
                for node in cls.body if isinstance(node, ast.FunctionDef) and node.name == "__init__")
    args = init.args
    assert len(args.posonlyargs + args.args + args.kwonlyargs) - 1 <= 12  # self aside
    assert args.vararg is None and args.kwarg is None
    touched = [node.lineno for node in ast.walk(tree)
               if isinstance(node, ast.Attribute) and node.attr == "_fh"]
    assert touched == [], f"master.py touches the journal's file handle at lines {touched}"
