"""The poller's state graph as SVG, drawn from its ASL definition, with the path an execution took.

States are boxes in rows (each below every state that leads to it, loops aside), transitions are arrows
(a loop back goes round the right-hand side), Choice branches carry their rule and Catch edges are dashed.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from html import escape
from typing import Any

NODE_WIDTH = 170
NODE_HEIGHT = 36
COLUMN = 200
ROW = 92
MARGIN = 24
_OPERATORS = (
    ("GreaterThanEquals", "≥"),
    ("LessThanEquals", "≤"),
    ("GreaterThan", ">"),
    ("LessThan", "<"),
    ("Equals", "="),
    ("Matches", "~"),
)


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str = ""
    kind: str = "next"  # next, choice, default, catch


def _short(path: Any) -> str:
    return str(path).removeprefix("$.")


def rule_text(rule: Mapping[str, Any]) -> str:
    """A Choice rule in a few words: `status = COMPLETE`, `try_count ≥ poll.max_tries`."""
    for joiner in ("And", "Or"):
        if joiner in rule:
            return f" {joiner.lower()} ".join(rule_text(inner) for inner in rule[joiner])
    if "Not" in rule:
        return f"not ({rule_text(rule['Not'])})"
    variable = _short(rule.get("Variable", "?"))
    for key, value in rule.items():
        if key in ("Variable", "Next"):
            continue
        if key.startswith("Is"):
            quality = key[2:].lower()
            return f"{variable} {quality}" if value is True else f"{variable} not {quality}"
        for suffix, symbol in _OPERATORS:
            name = key.removesuffix("Path")
            if name.endswith(suffix):
                shown = _short(value) if key.endswith("Path") else json_text(value)
                return f"{variable} {symbol} {shown}"
    return variable


def json_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def edges(definition: Mapping[str, Any]) -> list[Edge]:
    """Every transition of the definition, labelled."""
    found: list[Edge] = []
    for name, state in definition["States"].items():
        if "Next" in state:
            found.append(Edge(name, state["Next"]))
        for choice in state.get("Choices", []):
            found.append(Edge(name, choice["Next"], rule_text(choice), "choice"))
        if "Default" in state:
            found.append(Edge(name, state["Default"], "otherwise", "default"))
        for catcher in state.get("Catch", []):
            errors = ", ".join(catcher.get("ErrorEquals", []))
            found.append(Edge(name, catcher["Next"], f"catch {errors}", "catch"))
    return found


def _ranks(definition: Mapping[str, Any], transitions: list[Edge]) -> tuple[dict[str, int], set[Edge]]:
    """Each state's row (the longest path to it without going round a loop) and the edges that loop back."""
    start = definition["StartAt"]
    outgoing: dict[str, list[Edge]] = {}
    for edge in transitions:
        outgoing.setdefault(edge.source, []).append(edge)
    back: set[Edge] = set()
    order: list[str] = []
    visiting: set[str] = set()
    done: set[str] = set()

    def visit(name: str) -> None:  # depth-first: an edge to a state still on the stack closes a loop
        visiting.add(name)
        for edge in outgoing.get(name, []):
            if edge.target in visiting:
                back.add(edge)
            elif edge.target not in done:
                visit(edge.target)
        visiting.discard(name)
        done.add(name)
        order.append(name)

    visit(start)
    for name in definition["States"]:
        if name not in done:
            visit(name)
    rank = dict.fromkeys(order, 0)
    for name in reversed(order):  # a topological order of the forward edges
        for edge in outgoing.get(name, []):
            if edge not in back:
                rank[edge.target] = max(rank[edge.target], rank[name] + 1)
    return rank, back


@dataclass(frozen=True)
class Layout:
    positions: dict[str, tuple[int, int]]  # a state's box: its top-left corner
    edges: list[Edge]
    back: set[Edge]
    width: int
    height: int


def layout(definition: Mapping[str, Any]) -> Layout:
    transitions = edges(definition)
    rank, back = _ranks(definition, transitions)
    rows: dict[int, list[str]] = {}
    for name in definition["States"]:  # in the definition's order within a row
        rows.setdefault(rank[name], []).append(name)
    widest = max(len(row) for row in rows.values())
    positions = {}
    for row, names in rows.items():
        offset = (widest - len(names)) * COLUMN // 2
        for column, name in enumerate(names):
            positions[name] = (MARGIN + offset + column * COLUMN, MARGIN + row * ROW)
    width = MARGIN * 2 + (widest - 1) * COLUMN + NODE_WIDTH + COLUMN // 2  # room for loops on the right
    height = MARGIN * 2 + (len(rows) - 1) * ROW + NODE_HEIGHT
    return Layout(positions, transitions, back, width, height)


def path_taken(entered: Iterable[str]) -> tuple[dict[str, int], set[tuple[str, str]]]:
    """From the states entered in order: how often each was entered, and the transitions taken."""
    names = list(entered)
    counts: dict[str, int] = {}
    for name in names:
        counts[name] = counts.get(name, 0) + 1
    return counts, set(itertools.pairwise(names))


def _edge_path(edge: Edge, shape: Layout) -> tuple[str, float, float]:
    """The edge's SVG path and where its label goes."""
    sx, sy = shape.positions[edge.source]
    tx, ty = shape.positions[edge.target]
    if edge in shape.back or ty <= sy:  # round the right-hand side, into the target's right edge
        right1, middle1 = sx + NODE_WIDTH, sy + NODE_HEIGHT / 2
        right2, middle2 = tx + NODE_WIDTH, ty + NODE_HEIGHT / 2
        bulge = max(right1, right2) + COLUMN / 2
        path = f"M{right1},{middle1} C{bulge},{middle1} {bulge},{middle2} {right2 + 6},{middle2}"
        return path, bulge - 10, (middle1 + middle2) / 2
    x1, y1 = sx + NODE_WIDTH / 2, sy + NODE_HEIGHT
    x2, y2 = tx + NODE_WIDTH / 2, ty - 6
    middle = (y1 + y2) / 2
    # A label sits just above its target: the branches of one Choice fan out to different states.
    return f"M{x1},{y1} C{x1},{middle} {x2},{middle} {x2},{y2}", x2, ty - 10


def _label(text: str, x: float, bottom: float) -> str:
    """A label in lines (one per `and`/`or` clause), its last line ending at `bottom`."""
    lines = text.replace(" and ", "\nand ").replace(" or ", "\nor ").split("\n")
    top = bottom - (len(lines) - 1) * 12
    spans = "".join(
        f'<tspan x="{x:.0f}" y="{top + i * 12:.0f}">{escape(line)}</tspan>' for i, line in enumerate(lines)
    )
    return f'<text class="label">{spans}</text>'


def svg(
    definition: Mapping[str, Any],
    entered: Iterable[str] = (),
    current: str | None = None,
) -> str:
    """The graph with the path taken highlighted (each state's entry count) and the current state marked."""
    shape = layout(definition)
    counts, taken = path_taken(entered)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="graph" viewBox="0 0 {shape.width} {shape.height}" '
        f'width="{shape.width}" height="{shape.height}" role="img" aria-label="state graph">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="9" markerHeight="9" '
        'markerUnits="userSpaceOnUse" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z"/></marker>'
        "</defs>",
    ]
    labels = []
    for edge in shape.edges:
        d, lx, ly = _edge_path(edge, shape)
        classes = ["edge", edge.kind] + (["taken"] if (edge.source, edge.target) in taken else [])
        title = escape(f"{edge.source} → {edge.target}" + (f": {edge.label}" if edge.label else ""))
        kinds = " ".join(classes)
        parts.append(f'<path class="{kinds}" d="{d}" marker-end="url(#arrow)"><title>{title}</title></path>')
        if edge.label and edge.kind != "catch":
            labels.append(_label(edge.label, lx, ly))
    parts += labels
    for name, (x, y) in shape.positions.items():
        kind = definition["States"][name].get("Type", "")
        count = counts.get(name, 0)
        classes = ["state", kind.lower()]
        classes += ["visited"] if count else []
        classes += ["current"] if name == current else []
        parts.append(
            f'<g class="{" ".join(classes)}" data-state="{escape(name)}" data-entered="{count}">'
            f"<title>{escape(name)} ({escape(kind)}): entered {count} times</title>"
            f'<rect x="{x}" y="{y}" width="{NODE_WIDTH}" height="{NODE_HEIGHT}" rx="8"/>'
            f'<text x="{x + NODE_WIDTH / 2:.0f}" y="{y + 23}">{escape(name)}</text>'
        )
        if count:
            parts.append(f'<text class="count" x="{x + NODE_WIDTH - 6}" y="{y + 12}">\u00d7{count}</text>')
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)
