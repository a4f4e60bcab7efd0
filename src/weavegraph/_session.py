"""A session's progress, and how one step's results turn into the next frontier."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from ._error_event import ErrorEvent, ErrorScope
from ._errors import RoutingError
from ._graph import END, Graph, JoinEdge
from ._node import NodePartial
from ._state import VersionedState
from .checkpoint import Checkpoint, RunStatus

__all__ = ["Session", "entry", "new_session_id", "next_frontier", "record_error", "successors"]


def new_session_id() -> str:
    """A fresh random session id: 32 hex digits (as `uuid4().hex`, without importing uuid)."""
    return os.urandom(16).hex()


@dataclass(slots=True)
class Session:
    """A run's progress: its state, the step it reached, and what is due next.

    Attributes:
        id: the session id.
        state: the live state (replaced channel by channel at each barrier).
        step: the last completed superstep (0 before the first).
        frontier: the nodes due in the next step.
        joins: per join key, the sources that ran since the join last fired.
        status: running, interrupted, completed, failed or cancelled.
        paused: where the last interrupt paused the run: before or after a step.
        last: what the last completed step ran, skipped and updated (kept for its checkpoint).
    """

    id: str
    state: VersionedState
    step: int = 0
    frontier: tuple[str, ...] = ()
    joins: dict[str, frozenset[str]] = field(default_factory=dict)
    status: RunStatus = "running"
    paused: Literal["before", "after"] | None = None
    last: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]] = ((), (), ())

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint) -> Session:
        """The session as a checkpoint left it."""
        return cls(
            checkpoint.session_id,
            checkpoint.state.copy(),
            checkpoint.step,
            checkpoint.frontier,
            {key: frozenset(sources) for key, sources in checkpoint.joins.items()},
            checkpoint.status,
            checkpoint.paused,
            (checkpoint.ran_nodes, checkpoint.skipped_nodes, checkpoint.updated_channels),
        )

    def checkpoint(self, graph_hash: str) -> Checkpoint:
        """A checkpoint of the session as it is now (its state copied)."""
        ran, skipped, updated = self.last
        return Checkpoint(
            session_id=self.id,
            step=self.step,
            state=self.state.copy(),
            frontier=self.frontier,
            joins={key: tuple(sorted(v)) for key, v in self.joins.items()} if self.joins else {},
            ran_nodes=ran,
            skipped_nodes=skipped,
            updated_channels=updated,
            status=self.status,
            paused=self.paused if self.status == "interrupted" else None,
            graph_hash=graph_hash,
        )


def record_error(session: Session, exc: BaseException, scope: ErrorScope, **kw: object) -> None:
    """Append `exc` (with its causes) to the session's errors channel; mark the session failed."""
    state = session.state
    event = ErrorEvent.from_exception(exc, scope, **kw)  # type: ignore[arg-type]
    state._set("errors", (*state.errors, event))
    session.status = "failed"


async def successors(
    graph: Graph, name: str, update: NodePartial | None, state: VersionedState
) -> Sequence[str]:
    """Where `name` leads after its step (the fast path skips the snapshot when it can)."""
    if (update is None or update.goto is None) and name not in graph.conditionals:
        return graph.edges.get(name, ())
    goto = None if update is None else update.goto
    try:
        return await graph.routes(name, goto, state.snapshot())
    except RoutingError:
        raise
    except Exception as exc:  # a predicate raised
        raise RoutingError(
            f"routing after node {name!r} failed: {type(exc).__name__}: {exc}"
        ) from exc


async def next_frontier(
    graph: Graph,
    session: Session,
    frontier: Sequence[str],
    updates: Sequence[NodePartial | None],
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The next frontier (de-duplicated, in order) and the join targets still waiting."""
    nxt: dict[str, None] = {}
    waiting: dict[str, None] = {}
    joins_by_source = graph.joins_by_source
    conditionals, edges = graph.conditionals, graph.edges
    for name, update in zip(frontier, updates, strict=True):
        if (update is None or update.goto is None) and name not in conditionals:
            targets: Sequence[str] = edges.get(name, ())  # `successors`' fast path, inlined
        else:
            targets = await successors(graph, name, update, session.state)
        for target in targets:
            nxt[target] = None
        for join in joins_by_source.get(name, ()):
            if _arrive(session, join, name):
                nxt[join.target] = None
                waiting.pop(join.target, None)
            elif join.target not in nxt and join.target != END:
                waiting[join.target] = None
    nxt.pop(END, None)
    return tuple(nxt), tuple(waiting)


def entry(targets: Sequence[str]) -> tuple[str, ...]:
    """The first frontier from START's routes: de-duplicated, in order, END left out."""
    return tuple(t for t in dict.fromkeys(targets) if t != END)


def _arrive(session: Session, join: JoinEdge, source: str) -> bool:
    """Record that `source` ran; True when the join fires (and is reset)."""
    arrived = session.joins.get(join.key, frozenset()) | {source}
    if len(arrived) == len(join.sources):
        session.joins.pop(join.key, None)
        return True
    session.joins[join.key] = arrived
    return False
