"""The package's modules import each other without a circle, counting the imports inside function bodies too.

The graph is built from the source (``ast``), so nothing is imported: an edge A → B for every ``import`` or
``from ... import`` of a critiq module B in module A, at the top level or in a function (where a circle would
otherwise hide), except under ``if TYPE_CHECKING:`` (never run). ``from critiq.x import y`` is an edge to
``critiq.x.y`` when that is a module, else to ``critiq.x``.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.paths import REPO

PACKAGE = REPO / "critiq"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imported(path: Path) -> set[str]:
    """The critiq modules ``path`` imports anywhere but under ``if TYPE_CHECKING:``."""
    return imported_by(path.read_text(encoding="utf-8"), module_name(path), path.name == "__init__.py")


def imported_by(source: str, name: str, is_package: bool = False) -> set[str]:
    """The critiq modules the source of module ``name`` imports anywhere but under ``if TYPE_CHECKING:``."""
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(source))
    return {module for module in found if module in MODULES and module != name}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, edges = work[-1]
            step = next(edges, None)
            if step is not None:
                if step not in index:
                    index[step] = low[step] = len(index)
                    stack.append(step)
                    on_stack.add(step)
                    work.append((step, iter(sorted(graph.get(step, ())))))
                elif step in on_stack:
                    low[node] = min(low[node], index[step])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_import_graph_of_the_package_has_no_circle() -> None:
    graph = {name: imported(path) for name, path in MODULES.items()}
    assert sum(map(len, graph.values())) > 300  # the graph was read: hundreds of edges, not an empty set
    assert graph["critiq.score.corpus"] >= {"critiq.score.local", "critiq.score.ray", "critiq.score.table"}
    assert circles(graph) == []


def test_a_circle_is_found_where_there_is_one() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"d"}, "f": {"f"}}
    assert circles(graph) == [["a", "b", "c"]]


def test_imports_in_function_bodies_are_edges_and_type_checking_ones_are_not() -> None:
    """The circle score.py ↔ integrations/ray.py had went through a function-level import: it counts."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "from . import table\n"
        "from ..data.reader import iter_tables\n"
        "if TYPE_CHECKING:\n"
        "    from critiq.mine.flow import CritiQFlow\n"
        "def score() -> None:\n"
        "    from critiq.score import ray\n"
        "    import critiq.judge.vote\n"
    )
    edges = imported_by(source, "critiq.score.corpus")
    assert edges == {"critiq.score.table", "critiq.data.reader", "critiq.score.ray", "critiq.judge.vote"}
    graph = {"critiq.score.corpus": edges, "critiq.score.ray": {"critiq.score.corpus"}}
    assert circles(graph) == [["critiq.score.corpus", "critiq.score.ray"]]
