"""The `Checkpoint` record and the `Checkpointer` protocol every backend implements."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Literal, Protocol, Self, runtime_checkable

from .._json import JSONValue
from .._state import VersionedState
from .._time import format_timestamp, parse_timestamp, utc_now

__all__ = ["ANY_STEP", "Checkpoint", "Checkpointer", "RunStatus", "check_paging"]


class _AnyStep:
    """The type of `ANY_STEP`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ANY_STEP"


ANY_STEP = _AnyStep()
"""Default of `Checkpointer.save(expected_step=...)`: save whatever the latest step is."""

RunStatus = Literal["running", "interrupted", "completed", "failed", "cancelled"]


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The state of a session after one completed superstep.

    Attributes:
        session_id: the session.
        step: the superstep just completed (0 for the initial state).
        state: every channel with its version.
        frontier: the nodes due in the next step, in order.
        joins: for each join (by its key), the sources that have run since it last fired.
        ran_nodes: the nodes that ran in this step, in frontier order.
        skipped_nodes: nodes routed to in this step that did not become due (a join still
            waiting for other sources).
        updated_channels: the channels whose version went up in this step.
        status: where the run stands after this step.
        paused: for an interrupted run, whether it paused before the next step or after
            this one (resuming runs the next step without pausing again in the first case).
        created_at: when the checkpoint was made (UTC).
        graph_hash: digest of the graph's shape, to notice a changed graph on resume.
    """

    session_id: str
    step: int
    state: VersionedState
    frontier: tuple[str, ...] = ()
    joins: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    ran_nodes: tuple[str, ...] = ()
    skipped_nodes: tuple[str, ...] = ()
    updated_channels: tuple[str, ...] = ()
    status: RunStatus = "running"
    paused: Literal["before", "after"] | None = None
    created_at: datetime = field(default_factory=utc_now)
    graph_hash: str = ""

    def to_dict(self) -> dict[str, JSONValue]:
        """The checkpoint as a JSON object."""
        return {
            "session_id": self.session_id,
            "step": self.step,
            "state": self.state.to_dict(),
            "frontier": list(self.frontier),
            "joins": {key: list(sources) for key, sources in self.joins.items()},
            "ran_nodes": list(self.ran_nodes),
            "skipped_nodes": list(self.skipped_nodes),
            "updated_channels": list(self.updated_channels),
            "status": self.status,
            "paused": self.paused,
            "created_at": format_timestamp(self.created_at),
            "graph_hash": self.graph_hash,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, JSONValue]) -> Checkpoint:
        """Inverse of `to_dict`."""
        return cls(
            session_id=data["session_id"],
            step=data["step"],
            state=VersionedState.from_dict(data["state"]),
            frontier=tuple(data["frontier"]),
            joins={key: tuple(sources) for key, sources in data["joins"].items()},
            ran_nodes=tuple(data["ran_nodes"]),
            skipped_nodes=tuple(data["skipped_nodes"]),
            updated_channels=tuple(data["updated_channels"]),
            status=data["status"],
            paused=data.get("paused"),
            created_at=parse_timestamp(data["created_at"]),
            graph_hash=data["graph_hash"],
        )


@runtime_checkable
class Checkpointer(Protocol):
    """Stores every step's checkpoint of every session.

    `save` with `expected_step` is an optimistic-concurrency save: it succeeds only if the
    session's latest saved step is `expected_step` (None: the session has none), so of two
    writers expecting the same step exactly one wins; the other gets `CheckpointError`.
    The latest checkpoint is always the one with the highest step, whatever the save order.
    """

    async def setup(self) -> None:
        """Prepare the backend (create tables, open pools). Safe to call twice."""

    async def aclose(self) -> None:
        """Release the backend's resources. Safe to call twice."""

    async def save(
        self, checkpoint: Checkpoint, *, expected_step: int | _AnyStep | None = ANY_STEP
    ) -> None:
        """Store `checkpoint` (replacing one of the same session and step)."""

    async def load_latest(self, session_id: str) -> Checkpoint | None:
        """The checkpoint with the highest step, or None for an unknown session."""

    async def load(self, session_id: str, step: int) -> Checkpoint | None:
        """The checkpoint of one step, or None."""

    async def history(
        self,
        session_id: str,
        *,
        limit: int | None = None,
        offset: int = 0,
        from_step: int | None = None,
        to_step: int | None = None,
        ran_node: str | None = None,
        newest_first: bool = False,
    ) -> Sequence[Checkpoint]:
        """The session's checkpoints in step order, filtered and paged."""

    async def list_sessions(self) -> Sequence[str]:
        """Every session with at least one checkpoint, sorted."""

    async def delete_session(self, session_id: str) -> bool:
        """Forget a session's checkpoints; True if there were any."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def check_paging(limit: int | None, offset: int) -> None:
    """Reject a negative `limit` or `offset` of a history query (every backend's rule)."""
    if offset < 0 or (limit is not None and limit < 0):
        raise ValueError("offset and limit must not be negative")
