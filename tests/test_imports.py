"""mamlib has no import cycle, counting imports under ``TYPE_CHECKING`` and inside functions (strings handed to
``lazy_exports`` or ``import_module`` are not imports)."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import mamlib

ROOT = Path(mamlib.__file__).parent


def import_graph() -> dict[str, set[str]]:
    """Each mamlib module (a package is its ``__init__``) → the mamlib modules it imports anywhere in its file."""
    files = {".".join(p.relative_to(ROOT.parent).with_suffix("").parts).removesuffix(".__init__"): p
             for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in files else node.module
                             for a in node.names}
        graph[module] = {m for m in imported if m in files and m != module}
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[str]:
    """Every cycle found, ``a → b → … → a`` (each imports the next); one edge of each is cut to find more."""
    graph = {module: set(imported) for module, imported in graph.items()}
    cycles = []
    while True:
        try:
            TopologicalSorter(graph).prepare()
            return cycles
        except CycleError as err:
            cycle = err.args[1]  # each module is imported by the next
            cycles.append(" → ".join(reversed(cycle)))
            graph[cycle[1]].discard(cycle[0])


def test_the_cycle_finder_sees_type_only_and_function_level_imports():
    assert import_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) in (
        ["a → b → c → a"], ["b → c → a → b"], ["c → a → b → c"])
    graph = import_graph()
    assert "mamlib.merge.streaming" in graph["mamlib.cli"]  # inside a function
    assert "mamlib.models.packaged" in graph["mamlib.models.base"]  # under TYPE_CHECKING


def test_mamlib_has_no_import_cycle():
    assert import_cycles(import_graph()) == []
