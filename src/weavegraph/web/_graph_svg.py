"""The graph as an SVG picture, laid out in layers from START (no external renderer).

Layout: edges that close a loop (found by a depth-first walk from START) are set aside; every
other node goes in the layer of its longest path from START; END goes last. Each layer is
ordered by the mean position of its parents (a few sweeps), which keeps fan-outs and joins tidy.
Loop edges are drawn on the right side, going up.

Every node is a ``<g class="wg-node" data-node="NAME">`` so a page can style it by state;
conditional edges are dashed (``wg-edge-cond``), a join is a small circle every source enters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

from .._graph import END, START, Graph

__all__ = ["graph_svg"]

_H, _VGAP, _HGAP, _MARGIN, _LOOP = 40, 46, 26, 24, 54
_CHAR = 7.4  # average glyph width of the 13 px sans-serif label


@dataclass(slots=True)
class _Node:
    key: str  # START, END, a node name, or an internal junction key
    label: str
    kind: str  # terminal, node, join, route
    layer: int = 0
    x: float = 0.0
    y: float = 0.0
    width: float = 0.0
    parents: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Edge:
    src: str
    dst: str
    kind: str  # edge, cond, join, goto
    label: str = ""


def _shape(graph: Graph) -> tuple[dict[str, _Node], list[_Edge]]:
    nodes = {START: _Node(START, "START", "terminal")}
    nodes.update({name: _Node(name, name, "node") for name in graph.nodes})
    nodes[END] = _Node(END, "END", "terminal")
    edges = [_Edge(src, dst, "edge") for src, dst in graph.edge_list]
    for src, conds in graph.conditionals.items():
        for number, cond in enumerate(conds):
            if cond.targets is None:  # targets unknown until it runs: a diamond
                hub = f"\0route:{src}:{number}"  # \0: never a node name
                nodes[hub] = _Node(hub, cond.label + "?", "route")
                edges.append(_Edge(src, hub, "cond"))
                continue
            for value, target in cond.targets.items():
                label = cond.label if value == target else value
                edges.append(_Edge(src, target, "cond", label))
    for name, spec in graph.nodes.items():
        edges.extend(_Edge(name, dst, "goto", "goto") for dst in spec.destinations)
    for index, join in enumerate(graph.joins):
        key = f"\0join:{index}"
        nodes[key] = _Node(key, "join", "join")
        edges.extend(_Edge(src, key, "join") for src in join.sources)
        edges.append(_Edge(key, join.target, "join"))
    return nodes, edges


def _loop_edges(nodes: dict[str, _Node], edges: list[_Edge]) -> set[_Edge]:
    """Edges to a node still on the depth-first path: they close a loop."""
    out: dict[str, list[_Edge]] = {key: [] for key in nodes}
    for each in edges:
        out[each.src].append(each)
    back: set[_Edge] = set()
    state: dict[str, int] = {}  # 1: on the path, 2: done
    for root in nodes:  # START first; then anything a walk from START does not reach
        if root in state:
            continue
        stack = [(root, iter(out[root]))]
        state[root] = 1
        while stack:
            key, children = stack[-1]
            edge = next(children, None)
            if edge is None:
                state[key] = 2
                stack.pop()
            elif state.get(edge.dst) == 1:
                back.add(edge)
            elif edge.dst not in state:
                state[edge.dst] = 1
                stack.append((edge.dst, iter(out[edge.dst])))
    return back


def _layers(nodes: dict[str, _Node], forward: list[_Edge]) -> list[list[_Node]]:
    incoming: dict[str, int] = dict.fromkeys(nodes, 0)
    for edge in forward:
        incoming[edge.dst] += 1
        nodes[edge.dst].parents.append(edge.src)
    ready = [key for key in nodes if incoming[key] == 0]
    while ready:  # topological order (the forward edges have no cycle)
        key = ready.pop(0)
        for edge in forward:
            if edge.src == key:
                child = nodes[edge.dst]
                child.layer = max(child.layer, nodes[key].layer + 1)
                incoming[edge.dst] -= 1
                if incoming[edge.dst] == 0:
                    ready.append(edge.dst)
    nodes[END].layer = max(node.layer for key, node in nodes.items() if key != END) + 1
    layers: list[list[_Node]] = [[] for _ in range(nodes[END].layer + 1)]
    for node in nodes.values():
        layers[node.layer].append(node)
    return [layer for layer in layers if layer]


def _order(layers: list[list[_Node]]) -> None:
    """Sort each layer by the mean position of the node's parents in the layers above."""
    for _ in range(3):
        position: dict[str, float] = {}
        for layer in layers:
            for index, node in enumerate(layer):
                parents = [position[p] for p in node.parents if p in position]
                node.x = sum(parents) / len(parents) if parents else float(index)
            layer.sort(key=lambda node: node.x)
            position.update((node.key, float(i)) for i, node in enumerate(layer))


def _place(layers: list[list[_Node]]) -> tuple[float, float]:
    for layer in layers:
        for node in layer:
            if node.kind == "join":
                node.width = 20.0
            else:
                node.width = max(84.0, len(node.label) * _CHAR + 30)
    widest = max(sum(n.width for n in layer) + _HGAP * (len(layer) - 1) for layer in layers)
    width = widest + 2 * _MARGIN + _LOOP
    for number, layer in enumerate(layers):
        total = sum(n.width for n in layer) + _HGAP * (len(layer) - 1)
        x = _MARGIN + (widest - total) / 2
        for node in layer:
            node.x, node.y = x + node.width / 2, _MARGIN + _H / 2 + number * (_H + _VGAP)
            x += node.width + _HGAP
    return width, _MARGIN * 2 + len(layers) * _H + (len(layers) - 1) * _VGAP


def _half_height(node: _Node) -> float:
    return 10.0 if node.kind == "join" else _H / 2


def _path(src: _Node, dst: _Node, loop: bool) -> tuple[str, float, float]:
    """The path's d attribute, and where its label goes."""
    if loop or dst.layer <= src.layer:  # up the right-hand side, back into the target
        x1, y1 = src.x + src.width / 2, src.y
        x2, y2 = dst.x + dst.width / 2, dst.y
        bend = max(x1, x2) + _LOOP
        d = f"M{x1:.1f},{y1:.1f} C{bend:.1f},{y1:.1f} {bend:.1f},{y2:.1f} {x2 + 2:.1f},{y2:.1f}"
        return d, bend - 10, (y1 + y2) / 2
    x1, y1 = src.x, src.y + _half_height(src)
    x2, y2 = dst.x, dst.y - _half_height(dst) - 2
    dy = (y2 - y1) / 2
    d = f"M{x1:.1f},{y1:.1f} C{x1:.1f},{y1 + dy:.1f} {x2:.1f},{y2 - dy:.1f} {x2:.1f},{y2:.1f}"
    return d, (x1 + x2) / 2, (y1 + y2) / 2


_STYLE = """
.wg-graph{font:13px system-ui,-apple-system,"Segoe UI",sans-serif}
.wg-node rect,.wg-node circle,.wg-node polygon{fill:#fff;stroke:#64748b;stroke-width:1.5}
.wg-terminal rect{fill:#f1f5f9}
.wg-node text{fill:#0f172a;text-anchor:middle;dominant-baseline:central}
.wg-join circle{fill:#e2e8f0}
.wg-edge{fill:none;stroke:#94a3b8;stroke-width:1.5}
.wg-edge-cond,.wg-edge-goto{stroke-dasharray:5 4}
.wg-edge-join{stroke:#64748b;stroke-width:2}
.wg-edge-label{font-size:11px;fill:#475569;text-anchor:middle;paint-order:stroke;
stroke:#fff;stroke-width:4px;stroke-linejoin:round}
.wg-arrow{fill:#94a3b8}
"""


def _name(node: _Node, attribute: str) -> str:
    """The node's name as a data attribute; junctions and route diamonds have none."""
    return f' {attribute}="{escape(node.key)}"' if node.kind in ("node", "terminal") else ""


def _draw_node(node: _Node, index: int) -> str:
    label = escape(node.label)
    head = (
        f'<g class="wg-node wg-{node.kind}" id="wg-node-{index}"{_name(node, "data-node")} '
        f'transform="translate({node.x:.1f},{node.y:.1f})">'
    )
    w, h = node.width, _H
    if node.kind == "join":
        shape = '<circle r="9"/><title>join</title>'
    elif node.kind == "route":
        shape = (
            f'<polygon points="{-w / 2:.1f},0 0,{-h / 2} {w / 2:.1f},0 0,{h / 2}"/>'
            f"<text>{label}</text>"
        )
    else:
        radius = h / 2 if node.kind == "terminal" else 9
        shape = (
            f'<rect x="{-w / 2:.1f}" y="{-h / 2}" width="{w:.1f}" height="{h}" rx="{radius}"/>'
            f'<text class="wg-label">{label}</text>'
        )
        if node.kind == "node":
            shape += f'<text class="wg-badge" x="{w / 2 - 4:.1f}" y="{-h / 2 + 2}"></text>'
    return head + shape + "</g>"


def graph_svg(graph: Graph) -> str:
    """The graph as a standalone SVG document (see the module docstring for its classes)."""
    nodes, edges = _shape(graph)
    loops = _loop_edges(nodes, edges)
    layers = _layers(nodes, [e for e in edges if e not in loops])
    _order(layers)
    width, height = _place(layers)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="wg-graph" viewBox="0 0 {width:.0f} '
        f'{height:.0f}" width="{width:.0f}" height="{height:.0f}" role="img" '
        'aria-label="workflow graph">',
        f"<style>{_STYLE}</style>",
        '<defs><marker id="wg-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path class="wg-arrow" '
        'd="M0,0L10,5L0,10z"/></marker></defs>',
    ]
    labels = []
    for edge in edges:
        src, dst = nodes[edge.src], nodes[edge.dst]
        d, lx, ly = _path(src, dst, edge in loops)
        marker = "" if dst.kind == "join" else ' marker-end="url(#wg-arrow)"'
        parts.append(
            f'<path class="wg-edge wg-edge-{edge.kind}"{_name(src, "data-from")}'
            f'{_name(dst, "data-to")} d="{d}"{marker}/>'
        )
        if edge.label:
            labels.append(
                f'<text class="wg-edge-label" x="{lx:.1f}" y="{ly + 4:.1f}">'
                f"{escape(edge.label)}</text>"
            )
    parts.extend(labels)  # drawn after every edge, so no line crosses a label
    parts.extend(_draw_node(node, i) for i, node in enumerate(n for layer in layers for n in layer))
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
