"""Exceptions raised by weavegraph.

Every error the library raises on purpose derives from one root::

    WeavegraphError
    ├── GraphCompileError             the graph cannot be compiled
    │   ├── NoEntryError              nothing leaves START
    │   ├── DuplicateNodeError        a name registered twice, or a reserved name
    │   ├── UnknownNodeError          an edge names a node that does not exist
    │   ├── DuplicateEdgeError        the same edge added twice
    │   ├── EdgeFromEndError          an edge leaves END
    │   ├── UnreachableNodeError      no path from START reaches the node
    │   └── DeadEndError              no path from the node reaches END
    ├── RoutingError                  routing after a step failed or named no node
    ├── ReducerError                  a reducer failed to merge a step's updates
    ├── NodeExecutionError            a node failed (after its retries); `__cause__` is why
    ├── RecursionLimitError           a run took more steps than its recursion_limit
    ├── RunTimeoutError               a run took longer than its timeout
    ├── SessionError                  an unknown session, or one that cannot run now
    ├── CheckpointError               a checkpoint could not be saved or loaded
    ├── EventLogError                 the durable event log could not store or read events
    ├── QueueError                    the run queue could not store, claim or update a run
    └── EventBusError                 the event bus was used in a way it cannot serve
        └── StreamClosedError         a stream has ended and holds no more events
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._state import VersionedState

__all__ = [
    "CheckpointError",
    "DeadEndError",
    "DuplicateEdgeError",
    "DuplicateNodeError",
    "EdgeFromEndError",
    "EventBusError",
    "EventLogError",
    "GraphCompileError",
    "NoEntryError",
    "NodeExecutionError",
    "QueueError",
    "RecursionLimitError",
    "ReducerError",
    "RoutingError",
    "RunTimeoutError",
    "SessionError",
    "UnknownNodeError",
    "UnreachableNodeError",
    "WeavegraphError",
]


class WeavegraphError(Exception):
    """Root of every error weavegraph raises on purpose."""


class GraphCompileError(WeavegraphError):
    """The graph is not valid; the message names the nodes involved."""


class NoEntryError(GraphCompileError):
    """No edge leaves START, so nothing would ever run."""


class DuplicateNodeError(GraphCompileError):
    """A node name was registered twice, or a reserved name was used."""


class UnknownNodeError(GraphCompileError):
    """An edge or a declared conditional target names a node that does not exist."""


class DuplicateEdgeError(GraphCompileError):
    """The same edge was added twice."""


class EdgeFromEndError(GraphCompileError):
    """An edge leaves END; END is where branches stop."""


class UnreachableNodeError(GraphCompileError):
    """No path from START reaches these nodes."""


class DeadEndError(GraphCompileError):
    """No path from these nodes reaches END."""


class RoutingError(WeavegraphError):
    """A predicate raised, or a conditional edge or `goto` chose a target that is no node."""


class ReducerError(WeavegraphError):
    """A reducer raised while merging a step's updates; `__cause__` is its error."""


class NodeExecutionError(WeavegraphError):
    """A node raised (after all its retries) or timed out.

    Attributes:
        node: the failing node's name.
        step: the superstep it failed in.
        state: the state at the failure, with the error recorded in its `errors` channel.
    """

    def __init__(
        self, message: str, *, node: str, step: int, state: VersionedState | None = None
    ) -> None:
        super().__init__(message)
        self.node = node
        self.step = step
        self.state = state


class RecursionLimitError(WeavegraphError):
    """The run reached its recursion_limit; `frontier` holds the nodes that were due next."""

    def __init__(self, message: str, *, limit: int, frontier: Iterable[str]) -> None:
        super().__init__(message)
        self.limit = limit
        self.frontier = tuple(frontier)


class RunTimeoutError(WeavegraphError):
    """The whole run took longer than its `timeout`; it was cancelled cleanly."""


class SessionError(WeavegraphError):
    """The session does not exist, or cannot do what was asked in its present status."""


class CheckpointError(WeavegraphError):
    """A checkpoint could not be saved or loaded; the backend's error is the `__cause__`."""


class EventLogError(WeavegraphError):
    """The durable event log could not store or read events; the backend's error is the
    `__cause__`."""


class QueueError(WeavegraphError):
    """The run queue could not store, claim or update a run (or a run id is taken); a
    database failure is the `__cause__`."""


class EventBusError(WeavegraphError):
    """The event bus was used in a way it cannot serve (for example, after it was closed)."""
