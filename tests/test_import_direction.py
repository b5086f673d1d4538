"""The core's modules import one another one way: no circle, counting every import (at the top, inside a function,
under ``TYPE_CHECKING``), as docs/architecture.md ("Imports run downhill") describes. A circle found names its
modules in order, each with the line that imports the next."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORE = REPO / "agencystack"


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(CORE.rglob("*.py")):
        if "templates" in path.relative_to(CORE).parts:
            continue  # the scaffold's templates: files it writes, not modules of the core
        name = ".".join(path.relative_to(REPO).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def imports(modules: dict[str, Path]) -> dict[str, dict[str, int]]:
    """module -> {core module it imports: the first line that does}; ``from package import name`` imports the
    submodule ``name`` when there is one, else the package."""
    graph: dict[str, dict[str, int]] = {}
    for name, path in modules.items():
        edges = graph.setdefault(name, {})
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                base = node.module
                if node.level:
                    package = name.split(".")[: len(name.split(".")) - node.level + (path.name == "__init__.py")]
                    base = ".".join([*package, node.module])
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            else:
                continue
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    edges.setdefault(target, node.lineno)
    return graph


def circles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """Each circle (a strongly connected set of two modules or more) as one path through it, back to its start."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, {}):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            members = []
            while True:
                member = stack.pop()
                members.append(member)
                if member == node:
                    break
            if len(members) > 1:
                found.append(_path_through(sorted(members), graph))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _path_through(members: list[str], graph: dict[str, dict[str, int]]) -> list[str]:
    """A shortest path from the first member back to itself, within the members (breadth first)."""
    start, inside = members[0], set(members)
    came: dict[str, str] = {}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for target in sorted(graph[node]):
            if target == start:
                path = [node]
                while path[-1] != start:
                    path.append(came[path[-1]])
                return [*reversed(path), start]
            if target in inside and target not in came:
                came[target] = node
                queue.append(target)
    return members


def test_the_core_imports_in_no_circle():
    modules = _modules()
    graph = imports(modules)
    described = [" -> ".join(f"{a} (line {graph[a][b]})" for a, b in zip(circle, circle[1:])) + f" -> {circle[-1]}"
                 for circle in circles(graph)]
    assert described == []


def test_the_check_sees_a_type_only_circle():
    graph = {"a": {"b": 3}, "b": {"c": 7}, "c": {"a": 12}, "d": {"a": 1}}
    assert circles(graph) == [["a", "b", "c", "a"]]
    assert circles({"a": {"b": 1}, "b": {}}) == []
    modules = _modules()
    assert imports(modules)["agencystack.hookspecs"]["agencystack.context"]  # a TYPE_CHECKING import counts
