"""The state machine as an SVG picture, drawn top to bottom as the Step Functions console draws
it, from the rendered definition alone: whatever its states, a Map's ItemProcessor (or a
Parallel's branches) drawn as boxes inside their state, Next edges solid, Catch edges dashed.

Layout: each state goes in the layer of its longest path from StartAt (edges that loop back
are left out of that count); the chain of Next from StartAt keeps the first column, and a state
off it takes its first predecessor's column, or the next free one — so a failure path sits
beside the main one. Each state is coloured by its outcome in the latest run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from typing import Any

CHAR_W, LINE_H, PAD, GAP_X, GAP_Y, HEADER = 7.0, 15.0, 12.0, 56.0, 34.0, 24.0
COLORS = {  # outcome: (fill, stroke)
    "SUCCEEDED": ("#e3f4e4", "#2e7d32"),
    "FAILED": ("#fdecea", "#c62828"),
    "RUNNING": ("#fff4cc", "#b28704"),
    None: ("#f3f3f3", "#9e9e9e"),
}


@dataclass
class _Node:
    name: str
    state: dict[str, Any]
    inner: list[_Layout]
    w: float = 0.0
    h: float = 0.0
    layer: int = 0
    col: int = 0
    x: float = 0.0
    y: float = 0.0


@dataclass
class _Layout:
    nodes: dict[str, _Node]
    edges: list[tuple[str, str, str]]  # (from, to, "next" | "catch")
    w: float = 0.0
    h: float = 0.0
    spine: set[str] = field(default_factory=set)


def outcomes(states: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """A run record's states by state name; a state run once per Map item (``Extract[bookings]``)
    sums its items: failed if one failed, running if one runs, else succeeded."""
    out: dict[str, dict[str, Any]] = {}
    for s in states:
        name = str(s.get("name", "")).split("[")[0]
        entry = out.setdefault(name, {"statuses": set(), "seconds": 0.0, "attempts": 0, "runs": 0})
        entry["statuses"].add(s.get("status"))
        entry["seconds"] += float(s.get("seconds") or 0)
        entry["attempts"] += int(s.get("attempts") or 0)
        entry["runs"] += 1
        if s.get("error"):
            entry["error"] = s["error"]
    for entry in out.values():
        statuses = entry.pop("statuses")
        entry["status"] = next(
            (s for s in ("FAILED", "RUNNING", "SUCCEEDED") if s in statuses), None
        )
    return out


def _targets(state: dict[str, Any]) -> list[tuple[str, str]]:
    out = [(state[k], "next") for k in ("Next", "Default") if state.get(k)]
    out += [(c["Next"], "next") for c in state.get("Choices", []) if c.get("Next")]
    out += [(c["Next"], "catch") for c in state.get("Catch", []) if c.get("Next")]
    return out


def _layout(machine: dict[str, Any]) -> _Layout:
    states: dict[str, Any] = machine["States"]
    nodes = {}
    for name, state in states.items():
        processor = state.get("ItemProcessor") or state.get("Iterator")
        inner = [_layout(processor)] if processor else []
        inner += [_layout(branch) for branch in state.get("Branches", [])]
        nodes[name] = _Node(name, state, inner)
    edges: list[tuple[str, str, str]] = []
    for name, state in states.items():
        for target, kind in _targets(state):
            # A Catch to the state that Next names anyway is the same arrow: drawn once.
            if target in states and not any(e[:2] == (name, target) for e in edges):
                edges.append((name, target, kind))
    layout = _Layout(nodes, edges)
    _size(layout)
    _place(layout, machine["StartAt"])
    return layout


def _size(layout: _Layout) -> None:
    for node in layout.nodes.values():
        text = max(len(node.name) + 4, 24) * CHAR_W + 2 * PAD
        if node.inner:
            inner_w = sum(i.w for i in node.inner) + PAD * (len(node.inner) + 1)
            node.w = max(text, inner_w)
            node.h = HEADER + 2 * LINE_H + max(i.h for i in node.inner) + PAD
        else:
            node.w, node.h = text, 2 * LINE_H + PAD


def _place(layout: _Layout, start: str) -> None:
    nodes, forward = layout.nodes, _forward_edges(layout, start)
    order = _topological(list(nodes), forward)
    for name in order:
        for target in forward.get(name, []):
            nodes[target].layer = max(nodes[target].layer, nodes[name].layer + 1)
    spine: list[str] = []
    step: str | None = start
    while step in nodes and step not in spine:
        spine.append(step)
        step = nodes[step].state.get("Next") or nodes[step].state.get("Default")
    layout.spine = set(spine)
    taken: set[tuple[int, int]] = {(nodes[n].layer, 0) for n in spine}
    predecessors = {n: [a for a, b, _ in layout.edges if b == n] for n in nodes}
    for name in order:
        node = nodes[name]
        if name in layout.spine:
            continue
        preds = [nodes[p].col for p in predecessors[name] if p in nodes]
        col = min(preds) if preds else 1
        while (node.layer, col) in taken:
            col += 1
        node.col = col
        taken.add((node.layer, col))
    layers = max((n.layer for n in nodes.values()), default=0) + 1
    cols = max((n.col for n in nodes.values()), default=0) + 1
    col_w = [max((n.w for n in nodes.values() if n.col == c), default=0.0) for c in range(cols)]
    row_h = [max((n.h for n in nodes.values() if n.layer == r), default=0.0) for r in range(layers)]
    for node in nodes.values():
        node.x = sum(col_w[: node.col]) + GAP_X * node.col + (col_w[node.col] - node.w) / 2
        node.y = sum(row_h[: node.layer]) + GAP_Y * node.layer
    layout.w = sum(col_w) + GAP_X * (cols - 1)
    layout.h = sum(row_h) + GAP_Y * (layers - 1)


def _forward_edges(layout: _Layout, start: str) -> dict[str, list[str]]:
    """Edges without those that loop back (found by a depth-first walk from StartAt)."""
    out: dict[str, list[str]] = {n: [] for n in layout.nodes}
    succ = {n: [b for a, b, _ in layout.edges if a == n] for n in layout.nodes}
    done: set[str] = set()
    path: set[str] = set()

    def visit(name: str) -> None:
        path.add(name)
        for target in succ[name]:
            if target in path:
                continue  # a loop back: not a layer constraint
            if target not in out[name]:
                out[name].append(target)
            if target not in done:
                visit(target)
        path.discard(name)
        done.add(name)

    if start in layout.nodes:
        visit(start)
    return out


def _topological(names: list[str], forward: dict[str, list[str]]) -> list[str]:
    incoming = {n: 0 for n in names}
    for targets in forward.values():
        for t in targets:
            incoming[t] += 1
    ready = [n for n in names if incoming[n] == 0]
    order = []
    while ready:
        name = ready.pop(0)
        order.append(name)
        for t in forward.get(name, []):
            incoming[t] -= 1
            if incoming[t] == 0:
                ready.append(t)
    return order + [n for n in names if n not in order]


def _label(name: str, outcome: dict[str, Any] | None) -> str:
    if not outcome or outcome.get("status") is None:
        return "not run"
    parts = [str(outcome["status"]).lower(), f"{outcome['seconds']:.1f} s"]
    if outcome["attempts"]:
        noun = "attempt" if outcome["attempts"] == 1 else "attempts"
        parts.append(f"{outcome['attempts']} {noun}")
    if outcome["runs"] > 1:
        parts.append(f"{outcome['runs']} items")
    return " · ".join(parts)


def _draw(layout: _Layout, ox: float, oy: float, seen: dict[str, dict[str, Any]]) -> list[str]:
    out: list[str] = []
    nodes = layout.nodes
    for a, b, kind in layout.edges:
        out.append(_edge(nodes[a], nodes[b], kind, ox, oy))
    for node in nodes.values():
        outcome = seen.get(node.name)
        status = outcome.get("status") if outcome else None
        fill, stroke = COLORS.get(status, COLORS[None])
        x, y = ox + node.x, oy + node.y
        tip = f"{node.name} ({node.state.get('Type')}): {_label(node.name, outcome)}"
        if outcome and outcome.get("error"):
            tip += f"; error {outcome['error']}"
        dash = "" if status else ' stroke-dasharray="4 3"'
        out.append(
            f'<g class="state" data-state="{escape(node.name)}" data-status="{status or ""}">'
            f"<title>{escape(tip)}</title>"
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{node.w:.1f}" height="{node.h:.1f}" rx="7" '
            f'fill="{fill}" stroke="{stroke}" stroke-width="1.5"{dash}/>'
            f'<text x="{x + node.w / 2:.1f}" y="{y + PAD / 2 + LINE_H - 3:.1f}" '
            f'text-anchor="middle" font-weight="600">{escape(node.name)}</text>'
            f'<text x="{x + node.w / 2:.1f}" y="{y + PAD / 2 + 2 * LINE_H - 3:.1f}" '
            f'text-anchor="middle" class="detail">{escape(_label(node.name, outcome))}</text>'
        )
        ix = x + (node.w - sum(i.w for i in node.inner) - PAD * (len(node.inner) - 1)) / 2
        for inner in node.inner:
            out.append(
                f'<rect x="{ix - PAD / 2:.1f}" y="{y + HEADER + 2 * LINE_H - PAD / 2:.1f}" '
                f'width="{inner.w + PAD:.1f}" height="{inner.h + PAD:.1f}" rx="5" '
                'fill="#ffffff" stroke="#bbbbbb" stroke-dasharray="2 2"/>'
            )
            out += _draw(inner, ix, y + HEADER + 2 * LINE_H, seen)
            ix += inner.w + PAD
        out.append("</g>")
    return out


def _edge(a: _Node, b: _Node, kind: str, ox: float, oy: float) -> str:
    dash = ' stroke-dasharray="5 4"' if kind == "catch" else ""
    ax, bx = ox + a.x + a.w / 2, ox + b.x + b.w / 2
    a_bottom, b_top = oy + a.y + a.h, oy + b.y
    if b.layer > a.layer and b.col == a.col and kind == "next":
        if b.layer == a.layer + 1:
            path = f"M{ax:.1f},{a_bottom:.1f} L{bx:.1f},{b_top:.1f}"
        else:  # past the states in between, on their right
            side = ox + a.x + a.w + GAP_X / 3
            path = (
                f"M{ox + a.x + a.w:.1f},{oy + a.y + a.h / 2:.1f} C{side:.1f},{oy + a.y + a.h:.1f} "
                f"{side:.1f},{b_top - GAP_Y:.1f} {bx:.1f},{b_top:.1f}"
            )
    elif b.layer > a.layer:  # to another column: leave by the side, enter from above
        right = b.col > a.col
        sx = ox + a.x + (a.w if right else 0)
        sy = oy + a.y + a.h / 2
        cx = sx + (GAP_X * 0.8 if right else -GAP_X * 0.8)
        path = (
            f"M{sx:.1f},{sy:.1f} C{cx:.1f},{sy:.1f} "
            f"{bx:.1f},{b_top - GAP_Y:.1f} {bx:.1f},{b_top:.1f}"
        )
    else:  # a loop back (or sideways): around the left
        sx, sy = ox + a.x, oy + a.y + a.h / 2
        tx, ty = ox + b.x, oy + b.y + b.h / 2
        path = (
            f"M{sx:.1f},{sy:.1f} C{sx - GAP_X:.1f},{sy:.1f} "
            f"{tx - GAP_X:.1f},{ty:.1f} {tx:.1f},{ty:.1f}"
        )
    return (
        f'<path class="edge {kind}" d="{path}" fill="none" stroke="#777" stroke-width="1.3"'
        f'{dash} marker-end="url(#sm-arrow)"/>'
    )


def state_machine_svg(definition: dict[str, Any], states: list[dict[str, Any]]) -> str:
    """The definition drawn as SVG, each state coloured by its outcome in ``states`` (a run
    record's states; empty: nothing has run)."""
    layout = _layout(definition)
    margin = GAP_X
    width, height = layout.w + 2 * margin, layout.h + 2 * PAD
    body = "".join(_draw(layout, margin, PAD, outcomes(states)))
    return (
        f'<svg class="state-machine" viewBox="0 0 {width:.0f} {height:.0f}" width="{width:.0f}" '
        f'role="img" aria-label="state machine" font-family="sans-serif" font-size="12">'
        '<defs><marker id="sm-arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#777"/>'
        f"</marker></defs>{body}</svg>"
    )
