"""`GraphBuilder`: declare nodes and edges, then `compile()` into an `App`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Self

from ._errors import DuplicateNodeError
from ._graph import END, START, ConditionalEdge, Graph, JoinEdge, Predicate
from ._node import Node, NodeFunction, NodeSpec, RetryPolicy, node_spec
from ._reducers import ReducerRegistry
from ._validate import validate

if TYPE_CHECKING:
    from ._app import App
    from ._config import RuntimeConfig

__all__ = ["GraphBuilder"]


class GraphBuilder:
    """Declares a workflow graph.

    Every method returns the builder, so declarations chain::

        app = (
            GraphBuilder()
            .add_node("fetch", fetch)
            .add_node("summarize", summarize)
            .add_edge(START, "fetch")
            .add_edge("fetch", "summarize")
            .add_edge("summarize", END)
            .compile()
        )

    Edges are checked by `compile()`, so nodes and edges may be declared in any order; a bad
    node name, node object or predicate is refused at once.
    """

    __slots__ = ("_conditionals", "_edges", "_joins", "_nodes", "_reducers")

    def __init__(self) -> None:
        self._nodes: dict[str, NodeSpec] = {}
        self._edges: list[tuple[str, str]] = []
        self._conditionals: list[ConditionalEdge] = []
        self._joins: list[JoinEdge] = []
        self._reducers = ReducerRegistry()

    def add_node(
        self,
        name: str,
        node: NodeFunction | Node,
        *,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        destinations: Sequence[str] = (),
    ) -> Self:
        """Register a node.

        Args:
            name: unique name; START and END are reserved.
            node: ``async def node(snapshot, ctx) -> NodePartial | None``, a plain function
                (run in a worker thread so it cannot block the event loop), or an object with
                such a ``run`` method.
            retry: how to retry the node when it raises; no retry by default.
            timeout: seconds one attempt may take; no limit by default.
            destinations: the nodes this node may send the run to with `goto`; declaring
                them lets `compile()` check them and the diagrams draw them.

        Raises:
            DuplicateNodeError: the name is taken or reserved.
        """
        if not isinstance(name, str) or not name:
            raise DuplicateNodeError(f"node names must be non-empty strings; got {name!r}")
        if name in (START, END):
            raise DuplicateNodeError(f"{name!r} is reserved for the virtual start/end node")
        if name in self._nodes:
            raise DuplicateNodeError(f"node {name!r} is already registered")
        self._nodes[name] = node_spec(name, node, retry, timeout, tuple(destinations))
        return self

    def add_edge(self, source: str | Sequence[str], target: str) -> Self:
        """Add an edge; a list of sources makes a join (the target runs once after all ran)."""
        if isinstance(source, str):
            self._edges.append((source, target))
        else:
            sources = tuple(source)
            if len(sources) == 1:
                self._edges.append((sources[0], target))
            else:
                self._joins.append(JoinEdge(sources, target))
        return self

    def add_conditional_edges(
        self,
        source: str,
        predicate: Predicate,
        targets: Sequence[str] | Mapping[str, str] | None = None,
    ) -> Self:
        """Route from `source` to the node name(s) `predicate(snapshot)` returns.

        The predicate (plain or async) sees the state after the step in which `source` ran and
        returns one name or a list of names (END stops the branch). Declaring `targets` (a list
        of names, or a mapping from the predicate's return values to names) lets `compile()`
        check them and draw them; undeclared targets are checked when the run routes.
        """
        self._conditionals.append(ConditionalEdge.create(source, predicate, targets))
        return self

    def with_reducers(self, registry: ReducerRegistry) -> Self:
        """Use `registry` to merge node updates into the state."""
        self._reducers = registry
        return self

    def build(self) -> Graph:
        """Validate and freeze the declarations into a `Graph` (compile() wraps it in an App)."""
        validate(self._nodes, self._edges, self._conditionals, self._joins)
        edges: dict[str, tuple[str, ...]] = {}
        for src, dst in self._edges:
            edges[src] = (*edges.get(src, ()), dst)
        conditionals: dict[str, tuple[ConditionalEdge, ...]] = {}
        for cond in self._conditionals:
            conditionals[cond.source] = (*conditionals.get(cond.source, ()), cond)
        joins_by_source: dict[str, tuple[JoinEdge, ...]] = {}
        for join in self._joins:
            for src in dict.fromkeys(join.sources):
                joins_by_source[src] = (*joins_by_source.get(src, ()), join)
        return Graph(
            nodes=dict(self._nodes),
            edges=edges,
            conditionals=conditionals,
            joins=tuple(self._joins),
            joins_by_source=joins_by_source,
            reducers=self._reducers.copy(),
        )

    def compile(self, config: RuntimeConfig | None = None) -> App:
        """Validate the graph and return a runnable `App`.

        Raises:
            GraphCompileError: a subclass naming what is wrong and the nodes involved.
        """
        from ._app import App

        return App(self.build(), config)
