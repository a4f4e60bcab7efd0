"""Checks that turn a graph declaration into precise `GraphCompileError`s."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from ._errors import (
    DeadEndError,
    DuplicateEdgeError,
    EdgeFromEndError,
    GraphCompileError,
    NoEntryError,
    UnknownNodeError,
    UnreachableNodeError,
)
from ._graph import END, START, ConditionalEdge, JoinEdge
from ._node import NodeSpec

__all__ = ["validate"]


def validate(
    nodes: Mapping[str, NodeSpec],
    edges: Sequence[tuple[str, str]],
    conditionals: Sequence[ConditionalEdge],
    joins: Sequence[JoinEdge],
) -> None:
    """Raise the first problem found, in this order: names, duplicates, entry, reachability."""
    _check_names(nodes, edges, conditionals, joins)
    _check_duplicates(edges, joins)
    if not any(src == START for src, _ in edges) and not any(
        c.source == START for c in conditionals
    ):
        raise NoEntryError(
            "the graph has no entry: add an edge from START, e.g. add_edge(START, "
            f"{next(iter(nodes), 'first_node')!r})"
        )
    forward: dict[str, set[str]] = {name: set() for name in (START, *nodes)}
    for src, dst in edges:
        forward[src].add(dst)
    for join in joins:
        for src in join.sources:
            forward[src].add(join.target)
    for name, spec in nodes.items():
        forward[name].update(spec.destinations)
    for cond in conditionals:
        # An undeclared conditional edge may lead anywhere, END included.
        targets = cond.targets.values() if cond.targets is not None else (*nodes, END)
        forward[cond.source].update(targets)
    reached = _closure([START], forward)
    unreachable = [name for name in nodes if name not in reached]
    if unreachable:
        raise UnreachableNodeError(
            f"no path from START reaches {_names(unreachable)}; add an edge to "
            f"{'it' if len(unreachable) == 1 else 'them'} or remove {_pronoun(unreachable)}"
        )
    backward: dict[str, set[str]] = {name: set() for name in (END, *nodes)}
    for src, reached_from_src in forward.items():
        for dst in reached_from_src:
            if dst in backward and src in backward:
                backward[dst].add(src)
    reaches_end = _closure([END], backward)
    dead = [name for name in nodes if name not in reaches_end]
    if dead:
        raise DeadEndError(
            f"no path from {_names(dead)} reaches END; add an edge towards END "
            f"(e.g. add_edge({dead[0]!r}, END))"
        )


def _check_names(
    nodes: Mapping[str, NodeSpec],
    edges: Sequence[tuple[str, str]],
    conditionals: Sequence[ConditionalEdge],
    joins: Sequence[JoinEdge],
) -> None:
    for src, dst in edges:
        where = f"edge {src!r} -> {dst!r}"
        if src == END:
            raise EdgeFromEndError(f"{where} leaves END; END is where branches stop")
        if dst == START:
            raise GraphCompileError(f"{where} enters START; START only has outgoing edges")
        _known(src, nodes, where, allow=(START,))
        _known(dst, nodes, where, allow=(END,))
    for spec in nodes.values():
        for target in spec.destinations:
            _known(target, nodes, f"destinations of node {spec.name!r}", allow=(END,))
    for cond in conditionals:
        where = f"conditional edge from {cond.source!r} ({cond.label})"
        if cond.source == END:
            raise EdgeFromEndError(f"{where} leaves END; END is where branches stop")
        _known(cond.source, nodes, where, allow=(START,))
        for target in (cond.targets or {}).values():
            _known(target, nodes, f"{where}, declared target", allow=(END,))
    for join in joins:
        where = f"join {list(join.sources)!r} -> {join.target!r}"
        for src in join.sources:
            if src in (START, END):
                raise GraphCompileError(f"{where}: a join's sources must be nodes, not {src!r}")
            _known(src, nodes, where)
        _known(join.target, nodes, where, allow=(END,))


def _check_duplicates(edges: Sequence[tuple[str, str]], joins: Sequence[JoinEdge]) -> None:
    seen: set[tuple[str, str]] = set()
    for edge in edges:
        if edge in seen:
            raise DuplicateEdgeError(f"edge {edge[0]!r} -> {edge[1]!r} is declared twice")
        seen.add(edge)
    seen_joins: set[tuple[frozenset[str], str]] = set()
    for join in joins:
        if len(set(join.sources)) != len(join.sources):
            raise DuplicateEdgeError(f"join {list(join.sources)!r} names a source twice")
        key = (frozenset(join.sources), join.target)
        if key in seen_joins:
            raise DuplicateEdgeError(
                f"join {list(join.sources)!r} -> {join.target!r} is declared twice"
            )
        seen_joins.add(key)


def _known(name: str, nodes: Mapping[str, NodeSpec], where: str, allow: Iterable[str] = ()) -> None:
    if name in nodes or name in allow:
        return
    import difflib  # only for an error message: not on the import path of the package

    close = difflib.get_close_matches(name, list(nodes), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    registered = ", ".join(nodes) if nodes else "none"
    raise UnknownNodeError(
        f"unknown node {name!r} in {where}{hint}; registered nodes: {registered}"
    )


def _closure(start: Iterable[str], graph: Mapping[str, Iterable[str]]) -> set[str]:
    seen = set(start)
    todo = list(seen)
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _names(names: Sequence[str]) -> str:
    quoted = [repr(n) for n in names]
    return ("node " if len(names) == 1 else "nodes ") + ", ".join(quoted)


def _pronoun(names: Sequence[str]) -> str:
    return "it" if len(names) == 1 else "them"
