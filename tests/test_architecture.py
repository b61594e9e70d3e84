"""The layout's promises (issue 25): no import circle anywhere in fnn, no private name
imported or read across a module line, fnn.train's folders importing one way, and every
former module path still working as an alias of the moved module."""

import ast
import importlib
import pathlib

import pytest

import fnn
from fnn.moved_modules import MOVED

ROOT = pathlib.Path(fnn.__file__).parent


def _modules() -> dict:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: pathlib.Path) -> tuple[set, list]:
    """The fnn modules ``name`` imports (at any depth of its code) and the private names
    it takes from other modules."""
    tree = ast.parse(path.read_text())
    edges, private, aliases = set(), [], {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("fnn"):
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                if full in MODULES:
                    edges.add(full)
                    aliases[alias.asname or alias.name] = full
                else:
                    edges.add(node.module)
                    if alias.name.startswith("_") and node.module != name:
                        private.append(f"{name} imports {node.module}.{alias.name}")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in MODULES:
                    edges.add(alias.name)
                    if alias.asname:
                        aliases[alias.asname] = alias.name
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in aliases and node.attr.startswith("_")
                and not node.attr.startswith("__")):
            private.append(f"{name} reads {aliases[node.value.id]}.{node.attr}")
    # a package's own __init__ is not an edge of its submodules
    return {e for e in edges if e != name and not name.startswith(e + ".")}, private


GRAPH, PRIVATE = {}, []
for _name, _path in MODULES.items():
    GRAPH[_name], _private = _imports(_name, _path)
    PRIVATE.extend(_private)


def _cycles(graph: dict) -> list:
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in graph:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))
    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_circle_anywhere_in_fnn():
    assert _cycles(GRAPH) == []


def test_the_cycle_finder_finds_one():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_private_name_crosses_a_module_line():
    assert PRIVATE == []


# fnn.train's folders, bottom to top: a module imports only from its own level and below.
LEVELS = ["system", "data", "step", "epoch", "loop", "", "many"]


def _level(module: str) -> int | None:
    if not module.startswith("fnn.train.") or module in MOVED:
        return None
    part = module.split(".")[2]
    return LEVELS.index(part if part in LEVELS else "")


def test_train_imports_run_one_way():
    wrong = [f"{m} ({LEVELS[_level(m)] or 'top'}) imports {e} ({LEVELS[_level(e)] or 'top'})"
             for m, edges in GRAPH.items() if _level(m) is not None
             for e in edges if _level(e) is not None and _level(e) > _level(m)]
    assert wrong == []


@pytest.mark.parametrize("old", sorted(MOVED))
def test_former_module_paths_are_aliases(old):
    module = importlib.import_module(old)
    assert module is importlib.import_module(MOVED[old])
    exec(f"import {old}")                                  # the statement form works too


def test_documented_old_paths_read_the_same_objects():
    from fnn.train.determinism import use_deterministic_ops
    from fnn.train.streaming import STREAM_THRESHOLD_BYTES
    assert fnn.train.augment.random_shift is fnn.train.data.augment.random_shift
    assert STREAM_THRESHOLD_BYTES == fnn.train.data.streaming.STREAM_THRESHOLD_BYTES
    assert fnn.train.ensemble.auto_chunk_size is importlib.import_module(
        "fnn.train.many.ensemble").auto_chunk_size
    assert use_deterministic_ops is fnn.train.system.determinism.use_deterministic_ops
    assert fnn.train.data.kfold_indices is fnn.train.data.splits.kfold_indices
    assert fnn.train.epoch.plan(10, 4, False) == (2, 4, 2)
    assert callable(fnn.train.sweep) and callable(fnn.train.step.make_train_step)
