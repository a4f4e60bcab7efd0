"""The compiled graph: nodes, edges, conditional edges and joins, and how a step routes."""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

from ._errors import RoutingError
from ._node import Goto, NodeSpec
from ._reducers import ReducerRegistry
from ._state import StateSnapshot

__all__ = ["END", "START", "ConditionalEdge", "Graph", "JoinEdge", "Predicate"]

START = "__start__"
"""The virtual node every run starts from."""
END = "__end__"
"""The virtual node where branches stop."""

PredicateResult: TypeAlias = str | Sequence[str]
Predicate: TypeAlias = Callable[[StateSnapshot], PredicateResult | Awaitable[PredicateResult]]


@dataclass(frozen=True, slots=True)
class ConditionalEdge:
    """Routes from `source` to what `predicate` returns for the state after the step.

    `targets`, when declared, maps each value the predicate may return to a node name (a
    declared list maps each name to itself); it lets compile() check the targets.
    """

    source: str
    predicate: Predicate
    targets: Mapping[str, str] | None
    is_async: bool

    @classmethod
    def create(
        cls,
        source: str,
        predicate: Predicate,
        targets: Sequence[str] | Mapping[str, str] | None,
    ) -> ConditionalEdge:
        if not callable(predicate):
            raise TypeError(f"predicate of the conditional edge from {source!r} must be callable")
        if isinstance(targets, str):
            targets = [targets]
        declared = (
            None
            if targets is None
            else dict(targets)
            if isinstance(targets, Mapping)
            else {t: t for t in targets}
        )
        return cls(source, predicate, declared, inspect.iscoroutinefunction(predicate))

    @property
    def label(self) -> str:
        """A readable name of the predicate, for diagrams and errors."""
        return getattr(self.predicate, "__name__", type(self.predicate).__name__)

    async def choose(self, snapshot: StateSnapshot, nodes: Mapping[str, NodeSpec]) -> list[str]:
        """Evaluate the predicate and resolve its answer into node names (or END)."""
        result = self.predicate(snapshot)
        if self.is_async:
            result = await result  # type: ignore[misc]
        chosen = [result] if isinstance(result, str) else list(result)  # type: ignore[arg-type]
        out = []
        for value in chosen:
            target = value
            if self.targets is not None:
                if value not in self.targets:
                    raise RoutingError(
                        f"conditional edge from {self.source!r} ({self.label}) returned {value!r}, "
                        f"which is not one of its declared targets: {', '.join(self.targets)}"
                    )
                target = self.targets[value]
            out.append(check_target(target, nodes, f"conditional edge from {self.source!r}"))
        return out


@dataclass(frozen=True, slots=True)
class JoinEdge:
    """`target` runs once after every one of `sources` has run."""

    sources: tuple[str, ...]
    target: str

    @property
    def key(self) -> str:
        """A stable name of the join, used in checkpoints."""
        return f"{'+'.join(self.sources)}->{self.target}"


def check_target(target: str, nodes: Mapping[str, NodeSpec], where: str) -> str:
    """Return `target` if it is a node or END, else raise RoutingError naming the nodes."""
    if target == END or target in nodes:
        return target
    raise RoutingError(
        f"{where} routed to unknown node {target!r}; registered nodes: {', '.join(nodes)}"
    )


@dataclass(frozen=True, slots=True)
class Graph:
    """A validated graph. Built by `GraphBuilder.compile()`; read-only afterwards."""

    nodes: Mapping[str, NodeSpec]
    edges: Mapping[str, tuple[str, ...]]
    conditionals: Mapping[str, tuple[ConditionalEdge, ...]]
    joins: tuple[JoinEdge, ...]
    joins_by_source: Mapping[str, tuple[JoinEdge, ...]]
    reducers: ReducerRegistry
    _digest: str = field(default="", init=False, repr=False, compare=False)

    @property
    def edge_list(self) -> list[tuple[str, str]]:
        """Every plain edge as (source, target), in the order they were added per source."""
        return [(src, dst) for src, targets in self.edges.items() for dst in targets]

    def hash(self) -> str:
        """A digest of the graph's shape (names, edges, declared targets, joins)."""
        if not self._digest:  # every runner asks; the graph does not change
            object.__setattr__(self, "_digest", self._shape_digest())
        return self._digest

    def _shape_digest(self) -> str:
        parts = [f"node:{name}>{','.join(spec.destinations)}" for name, spec in self.nodes.items()]
        parts += [f"edge:{src}->{dst}" for src, dst in self.edge_list]
        for src, conds in self.conditionals.items():
            for cond in conds:
                declared = ",".join(sorted(cond.targets.values())) if cond.targets else "*"
                parts.append(f"cond:{src}->{declared}")
        parts += [f"join:{join.key}" for join in self.joins]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]

    async def routes(self, node: str, goto: object, snapshot: StateSnapshot) -> list[str]:
        """Where `node` leads after a step: its edges and conditional edges, or its `goto`."""
        command = normalize_goto(node, goto)
        if command is not None and command.mode == "replace":
            return [check_target(t, self.nodes, f"goto of node {node!r}") for t in command.targets]
        targets = list(self.edges.get(node, ()))
        for cond in self.conditionals.get(node, ()):
            targets.extend(await cond.choose(snapshot, self.nodes))
        if command is not None:
            targets.extend(
                check_target(t, self.nodes, f"goto of node {node!r}") for t in command.targets
            )
        return targets


def normalize_goto(node: str, goto: object) -> Goto | None:
    """Turn a NodePartial.goto value into a Goto (or None)."""
    if goto is None or isinstance(goto, Goto):
        return goto
    if isinstance(goto, str):
        return Goto((goto,), "replace")
    if isinstance(goto, Sequence) and all(isinstance(t, str) for t in goto):
        return Goto(tuple(goto), "replace")
    raise RoutingError(
        f"node {node!r} returned goto={goto!r}; use a node name, a list of names, or Goto"
    )
