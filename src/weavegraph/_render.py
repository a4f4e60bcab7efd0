"""Drawings of a graph: Mermaid flowcharts and Graphviz DOT.

Plain edges are solid, conditional edges dashed and labelled with the predicate's name (or the
value that selects the target), and each join is drawn as a small junction that every source
enters and the target leaves.
"""

from __future__ import annotations

from ._graph import END, START, Graph

__all__ = ["to_dot", "to_mermaid"]


def _mermaid_label(text: str) -> str:
    return '"' + text.replace('"', "#quot;") + '"'


def to_mermaid(graph: Graph) -> str:
    """The graph as a Mermaid flowchart (top to bottom)."""
    ids = {START: "__start__", END: "__end__"}
    lines = ["flowchart TD", '    __start__(["START"])']
    for index, name in enumerate(graph.nodes):
        ids[name] = f"n{index}"
        lines.append(f"    n{index}[{_mermaid_label(name)}]")
    lines.append('    __end__(["END"])')
    for src, dst in graph.edge_list:
        lines.append(f"    {ids[src]} --> {ids[dst]}")
    for src, conds in graph.conditionals.items():
        for number, cond in enumerate(conds):
            if cond.targets is None:
                hub = f"{ids[src]}_route{number}"
                lines.append(f"    {hub}{{{{{_mermaid_label(cond.label + '?')}}}}}")
                lines.append(f"    {ids[src]} -.-> {hub}")
                continue
            for value, target in cond.targets.items():
                label = cond.label if value == target else f"{cond.label}: {value}"
                lines.append(f"    {ids[src]} -.->|{_mermaid_label(label)}| {ids[target]}")
    for name, spec in graph.nodes.items():
        lines.extend(f'    {ids[name]} -.->|"goto"| {ids[dst]}' for dst in spec.destinations)
    for index, join in enumerate(graph.joins):
        junction = f"join{index}"
        lines.append(f'    {junction}(("join"))')
        lines.extend(f"    {ids[src]} ==> {junction}" for src in join.sources)
        lines.append(f"    {junction} ==> {ids[join.target]}")
    return "\n".join(lines) + "\n"


def _dot_id(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(graph: Graph) -> str:
    """The graph in Graphviz DOT."""
    lines = [
        "digraph weavegraph {",
        "    rankdir=TB;",
        f'    {_dot_id(START)} [label="START", shape=oval];',
    ]
    lines.extend(f"    {_dot_id(name)} [shape=box];" for name in graph.nodes)
    lines.append(f'    {_dot_id(END)} [label="END", shape=oval];')
    for src, dst in graph.edge_list:
        lines.append(f"    {_dot_id(src)} -> {_dot_id(dst)};")
    for src, conds in graph.conditionals.items():
        for number, cond in enumerate(conds):
            if cond.targets is None:
                hub = _dot_id(f"{src}?{number}")
                lines.append(f"    {hub} [label={_dot_id(cond.label + '?')}, shape=diamond];")
                lines.append(f"    {_dot_id(src)} -> {hub} [style=dashed];")
                continue
            for value, target in cond.targets.items():
                label = cond.label if value == target else f"{cond.label}: {value}"
                lines.append(
                    f"    {_dot_id(src)} -> {_dot_id(target)} "
                    f"[style=dashed, label={_dot_id(label)}];"
                )
    for name, spec in graph.nodes.items():
        lines.extend(
            f'    {_dot_id(name)} -> {_dot_id(dst)} [style=dashed, label="goto"];'
            for dst in spec.destinations
        )
    for index, join in enumerate(graph.joins):
        junction = _dot_id(f"join{index}")
        lines.append(f'    {junction} [label="join", shape=circle];')
        lines.extend(f"    {_dot_id(src)} -> {junction} [style=bold];" for src in join.sources)
        lines.append(f"    {junction} -> {_dot_id(join.target)} [style=bold];")
    lines.append("}")
    return "\n".join(lines) + "\n"
