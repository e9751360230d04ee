"""The package's layout, read from its source with ``ast``: no import cycle, one writer per file
format, each shared name defined once, module docstrings that point to docs/ (not DESIGN.md)."""
from __future__ import annotations

import ast
from pathlib import Path

import ultrarun

PACKAGE = Path(ultrarun.__file__).resolve().parent


def _modules() -> dict[str, tuple[Path, ast.Module]]:
    """``{dotted name: (path, tree)}`` of every module under ultrarun/."""
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = (path, ast.parse(path.read_text(encoding="utf-8"), str(path)))
    return out


def _imports(name: str, path: Path, tree: ast.Module, modules: dict) -> set[str]:
    """The ultrarun modules ``name`` imports, at any depth of its code (inside functions too:
    a lazy import that closes a cycle hides the cycle, it does not remove it)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            submodules = {f"{target}.{alias.name}" for alias in node.names} & modules.keys()
            found |= submodules if len(submodules) == len(node.names) else submodules | {target}
    return {m for m in found if m in modules and m != name}


def test_no_import_cycle_inside_the_package():
    modules = _modules()
    graph = {name: _imports(name, path, tree, modules) for name, (path, tree) in modules.items()}
    cycles, state, stack = [], {}, []

    def visit(name: str) -> None:
        state[name] = "open"
        stack.append(name)
        for other in sorted(graph[name]):
            if state.get(other) == "open":
                cycles.append(" -> ".join(stack[stack.index(other):] + [other]))
            elif other not in state:
                visit(other)
        stack.pop()
        state[name] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name)
    assert not cycles, "import cycles: " + "; ".join(cycles)


def _calls(tree: ast.Module):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            yield node, func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _opens_to_append(call: ast.Call) -> bool:
    """``open(file, mode)`` or ``path.open(mode)`` with a mode that may be "a..."."""
    position = 0 if isinstance(call.func, ast.Attribute) else 1
    modes = [kw.value for kw in call.keywords if kw.arg == "mode"] + call.args[position:position + 1]
    return any(isinstance(c, ast.Constant) and isinstance(c.value, str) and c.value.startswith("a")
               for mode in modes for c in ast.walk(mode))


def test_one_writer_per_file_format():
    """Files are appended to (JSON lines, CSV) and CSV is written by ``ultrarun/_files.py`` only."""
    appenders, csv_writers = [], []
    for name, (path, tree) in _modules().items():
        for call, func in _calls(tree) if name != "ultrarun._files" else ():
            if func == "open" and _opens_to_append(call):
                appenders.append(f"{name}:{call.lineno}")
            if func in ("writer", "DictWriter"):
                csv_writers.append(f"{name}:{call.lineno}")
    assert not appenders, f"files appended to outside ultrarun/_files.py: {appenders}"
    assert not csv_writers, f"CSV written outside ultrarun/_files.py: {csv_writers}"


def test_shared_names_are_defined_once():
    definitions: dict[str, list[str]] = {"ConfigId": [], "TIMESTAMP_KEYS": []}
    for name, (path, tree) in _modules().items():
        for node in tree.body:
            targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
            for target in targets:
                if isinstance(target, ast.Name) and target.id in definitions:
                    definitions[target.id].append(name)
    assert definitions == {"ConfigId": ["ultrarun.job"], "TIMESTAMP_KEYS": ["ultrarun.job"]}


def test_module_docstrings_point_to_docs_not_to_design_md():
    """DESIGN.md is not in the repository; docs/architecture.md is the project's own copy."""
    root = PACKAGE.parent
    for name, (path, tree) in _modules().items():
        docstring = ast.get_docstring(tree) or ""
        assert "DESIGN" not in docstring, f"{name} cites DESIGN.md; point to a page in docs/"
        pages = {word.strip("`.,:;()") for word in docstring.split() if "docs/" in word}
        missing = [page for page in pages if not (root / page).exists()]
        assert not missing or not (root / "docs").is_dir(), f"{name} points to missing {missing}"
