"""No import circles among the modules of jobpoll (tooling) or chalicelib (deployed), lazy imports too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from jobpoll.paths import FUNCTIONS_DIR, ROOT


def _imports(package: Path, name: str) -> dict[str, set[str]]:
    """Module -> the sibling modules it imports anywhere in it (`from . import x`, `from .x import y`)."""
    modules = {path.stem for path in package.glob("*.py")}
    graph: dict[str, set[str]] = {}
    for source in package.glob("*.py"):
        siblings: set[str] = set()
        for node in ast.walk(ast.parse(source.read_text())):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level == 1 and node.module:
                siblings.add(node.module.split(".")[0])
            elif node.level == 1:
                siblings.update(alias.name for alias in node.names)
            elif node.level == 0 and node.module and node.module.startswith(f"{name}."):
                siblings.add(node.module.split(".")[1])
        graph[source.stem] = siblings & modules
    return graph


def _circle(graph: dict[str, set[str]]) -> list[str] | None:
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> list[str] | None:
        for imported in sorted(graph.get(module, ())):
            if imported in path:
                return [*path[path.index(imported) :], imported]
            if imported not in done:
                found = visit(imported, [*path, imported])
                if found:
                    return found
        done.add(module)
        return None

    for module in sorted(graph):
        found = visit(module, [module])
        if found:
            return found
    return None


@pytest.mark.parametrize(
    ("package", "name"),
    [(ROOT / "infra" / "jobpoll", "jobpoll"), (FUNCTIONS_DIR / "chalicelib", "chalicelib")],
)
def test_no_module_imports_itself_through_others(package: Path, name: str) -> None:
    assert _circle(_imports(package, name)) is None


def test_a_circle_is_found() -> None:
    assert _circle({"cli": {"demo"}, "demo": {"render", "cli"}, "render": set()}) == ["cli", "demo", "cli"]
