"""``ultraopt.hdl``: ultraopt's Hyperparameter Description Language on ConfigSpace 1.x.

An HDL is a dict: ``{"name": {"_type": "int_uniform", "_value": [2, 20], "_default": 2}}``
declares a hyperparameter, a plain value a constant, a nested dict a group whose names are
prefixed ``group:``, and ``"group(choice)": {"option_a": {...}, "option_b": {...}}`` a choice:
a categorical ``group:__choice__`` whose options' hyperparameters are active only when chosen.
``"__condition"``, ``"__activate"`` and ``"__forbidden"`` keys add conditions and forbidden
combinations, as in ultraopt.

- :func:`hdl2cs` turns an HDL into a ``ConfigurationSpace`` (``fmin`` takes an HDL too);
- :func:`layering_config` turns a sampled configuration back into nested dicts
  (``{"classifier": {"KNeighborsClassifier": {"n_neighbors": 3, ...}}}``);
- :func:`plot_hdl` draws the HDL's tree as Graphviz (DOT) source.

What differs: choice values keep their Python types (ultraopt encodes them as strings such as
``"True:bool"``; :func:`layering_config` decodes those too), and a quantized range
(``quniform``, ``int_quniform``) is an ordinal hyperparameter over its grid, since ConfigSpace
1.x has no ``q``. See docs/migrating.md.
"""
from __future__ import annotations

import math
import re
from typing import Any, Mapping

import numpy as np
from ConfigSpace import (CategoricalHyperparameter, ConfigurationSpace, Constant,
                         EqualsCondition, ForbiddenAndConjunction, ForbiddenEqualsClause,
                         ForbiddenInClause, InCondition, OrdinalHyperparameter,
                         UniformFloatHyperparameter, UniformIntegerHyperparameter)

from ultrarun.errors import ConfigurationError

#: the largest grid a quantized range becomes an ordinal over (beyond it, ``q`` is dropped)
MAX_GRID = 10_000
_CHOICE = re.compile(r"(.*)\((.*)\)$")
_ENCODED = re.compile(r"^(.*):(int|float|bool|NoneType|str)$")
TYPES = ("choice", "ordinal", "uniform", "quniform", "loguniform", "qloguniform", "int_uniform",
         "int_quniform", "int_loguniform", "int_qloguniform")


def _is_leaf(key: str, value: Any) -> bool:
    return key.startswith("__") or not isinstance(value, dict) or "_type" in value


def _grid(low: float, high: float, q: float, integer: bool) -> list | None:
    count = math.floor((high - low) / q + 1e-9) + 1
    if count > MAX_GRID:
        return None
    values = [low + i * q for i in range(count)]
    return [int(round(v)) for v in values] if integer else [round(v, 10) for v in values]


def _hyperparameter(name: str, spec: Any) -> Any:
    if not isinstance(spec, dict):
        return Constant(name, spec)
    kind, value, default = spec.get("_type"), spec.get("_value"), spec.get("_default")
    if kind not in TYPES:
        raise ConfigurationError(f"HDL {name!r}: _type is {kind!r}; use one of {list(TYPES)}")
    if not isinstance(value, (list, tuple)) or not value:
        raise ConfigurationError(f"HDL {name!r}: _value must be a non-empty list, got {value!r}")
    extra = {} if default is None else {"default_value": default}
    if kind in ("choice", "ordinal"):
        if len(value) == 1:
            return Constant(name, value[0])
        cls = CategoricalHyperparameter if kind == "choice" else OrdinalHyperparameter
        return cls(name, list(value), **extra)
    integer, log = kind.startswith("int_"), "log" in kind
    low, high = value[0], value[1]
    q = value[2] if len(value) > 2 else None
    if kind.endswith("quniform") and q:  # quniform, int_quniform: the grid
        grid = _grid(low, high, q, integer)
        if grid is not None:
            if default is not None and default not in grid:
                extra["default_value"] = min(grid, key=lambda v: abs(v - default))
            return OrdinalHyperparameter(name, grid, **extra)
    cls = UniformIntegerHyperparameter if integer else UniformFloatHyperparameter
    return cls(name, low, high, log=log, **extra)


def _space(hdl: Mapping[str, Any], is_choice: bool = False) -> ConfigurationSpace:
    cs = ConfigurationSpace()
    options = [_CHOICE.sub(r"\1", k) for k, v in hdl.items() if not _is_leaf(k, v)]
    option_hp = None
    if is_choice:
        option_hp = CategoricalHyperparameter("__choice__", options) if len(options) > 1 else \
            Constant("__choice__", options[0])
        cs.add(option_hp)
    store: dict[str, Any] = {}
    special: dict[str, Any] = {}
    for key, value in hdl.items():
        mat = _CHOICE.match(key)
        if mat and isinstance(value, dict):
            name, method = mat.groups()
            if method != "choice":
                raise ConfigurationError(f"HDL key {key!r}: the only suffix is (choice)")
            _attach(cs, name, _space(value, True), option_hp)
        elif _is_leaf(key, value):
            if key.startswith("__"):
                special[key] = value
            else:
                store[key] = _hyperparameter(key, value)
                cs.add(store[key])
        else:
            _attach(cs, key, _space(value, False), option_hp)
    for key, value in special.items():
        if key == "__condition":
            for item in value:
                cs.add(_condition(store, item["_child"], item["_parent"], item["_values"]))
        elif key == "__activate":
            for parent, by_value in value.items():
                children: dict[str, list] = {}
                for parent_value, names in by_value.items():
                    for child in [names] if isinstance(names, str) else names:
                        children.setdefault(child, []).append(parent_value)
                for child, values in children.items():
                    if len(values) < len(by_value):  # active for every value: no condition
                        cs.add(_condition(store, child, parent, values))
        elif key == "__forbidden":
            for item in value:
                clauses = [ForbiddenInClause(store[n], list(v)) if isinstance(v, list) and
                           len(v) > 1 else ForbiddenEqualsClause(
                               store[n], v[0] if isinstance(v, list) else v)
                           for n, v in item.items()]
                cs.add(clauses[0] if len(clauses) == 1 else ForbiddenAndConjunction(*clauses))
        else:
            raise ConfigurationError(f"HDL key {key!r}: use __condition, __activate or "
                                     "__forbidden")
    return cs


def _condition(store: dict, child: str, parent: str, values: Any) -> Any:
    if isinstance(values, list) and len(values) == 1:
        values = values[0]
    if isinstance(values, list):
        return InCondition(store[child], store[parent], values)
    return EqualsCondition(store[child], store[parent], values)


def _attach(cs: ConfigurationSpace, name: str, sub: ConfigurationSpace, option_hp: Any) -> None:
    if len(sub) == 0:
        return
    parent = None if option_hp is None else {"parent": option_hp, "value": name}
    if parent is not None and isinstance(option_hp, Constant):
        parent = None  # the only option: always active
    cs.add_configuration_space(name, sub, parent_hyperparameter=parent)


def hdl2cs(hdl: Mapping[str, Any]) -> ConfigurationSpace:
    """The ``ConfigurationSpace`` an HDL describes (see the module docstring)."""
    if isinstance(hdl, ConfigurationSpace):
        return hdl
    if not isinstance(hdl, Mapping):
        raise ConfigurationError(f"an HDL is a dict, got {type(hdl).__name__}")
    return _space(hdl)


HDL2CS = lambda: hdl2cs  # noqa: E731  (ultraopt's older spelling: HDL2CS()(hdl))


def _decode(value: Any) -> Any:
    """ultraopt's encoded strings (``"True:bool"``, ``"2:int"``) as the values they encode."""
    if isinstance(value, np.generic):  # a configuration straight from ConfigSpace
        return value.item()
    if not isinstance(value, str):
        return value
    mat = _ENCODED.match(value)
    if mat is None:
        return value
    text, kind = mat.groups()
    try:
        return {"int": int, "float": float, "str": str, "bool": lambda t: t == "True",
                "NoneType": lambda t: None}[kind](text)
    except ValueError:
        return value


def layering_config(config: Mapping[str, Any]) -> dict:
    """A flat configuration (``"a:b:c": value``, ``"a:__choice__": option``) as nested dicts;
    an option chosen in a choice becomes a key holding its own hyperparameters."""
    result: dict = {}
    for key, value in sorted(dict(config).items()):
        path = key.split(":")
        value = _decode(value)
        if path[-1] == "__choice__":
            path, value = path[:-1] + [str(value)], {}
        if path[-1] == "placeholder":
            continue
        node = result
        for part in path[:-1]:
            node = node.setdefault(part, {})
        if isinstance(value, dict):
            node.setdefault(path[-1], {})
        else:
            node[path[-1]] = value
    return result


config2dict = layering_config  # ultraopt's older name


class HDLGraph:
    """The tree of an HDL as Graphviz source: ``.source`` (DOT), ``save(path)``; with the
    ``graphviz`` package installed, :func:`plot_hdl` returns a ``graphviz.Source`` instead."""

    def __init__(self, source: str):
        self.source = source

    def save(self, filename: str) -> str:
        with open(filename, "w", encoding="utf-8") as fh:
            fh.write(self.source)
        return filename

    def __str__(self) -> str:
        return self.source


def plot_hdl(hdl: Mapping[str, Any], title: str = "HDL") -> Any:
    """Draw the HDL as a tree: groups and choices as boxes, hyperparameters as leaves with
    their type and range."""
    lines = [f'digraph "{title}" {{', "  rankdir=LR;", '  node [fontname="Helvetica"];']
    counter = iter(range(1_000_000))

    def node(label: str, shape: str) -> str:
        name = f"n{next(counter)}"
        lines.append(f'  {name} [label="{label}", shape={shape}];')
        return name

    def walk(tree: Mapping[str, Any], parent: str) -> None:
        for key, value in tree.items():
            if key.startswith("__"):
                continue
            if _is_leaf(key, value):
                label = (f"{key}\\n{value.get('_type')} {value.get('_value')}"
                         if isinstance(value, dict) else f"{key} = {value!r}")
                child = node(label.replace('"', "'"), "ellipse")
            else:
                child = node(key, "box")
                walk(value, child)
            lines.append(f"  {parent} -> {child};")

    walk(hdl, node(title, "doubleoctagon"))
    lines.append("}")
    source = "\n".join(lines)
    try:
        import graphviz
    except ImportError:
        return HDLGraph(source)
    return graphviz.Source(source)


__all__ = ["hdl2cs", "HDL2CS", "layering_config", "config2dict", "plot_hdl", "HDLGraph"]
