"""What the run queue returns: `QueuedRun` (a row of the runs table) and `QueueStats`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .._json import JSONValue
from .._time import format_timestamp

__all__ = ["FINISHED", "QueueStats", "QueuedRun", "run_from_row", "stamp"]

FINISHED = frozenset({"succeeded", "failed", "cancelled"})


@dataclass(frozen=True, slots=True)
class QueuedRun:
    """A run in the queue, as the database had it. Its id is also its session id.

    Attributes:
        input: the run's initial state (a JSON object).
        status: ``queued``, ``running``, ``succeeded``, ``failed`` or ``cancelled``.
        attempt: how many times it has been claimed (a release does not count).
        lease_owner, lease_expires_at: the worker holding it and until when (server time).
        cancel_requested: `RunQueue.cancel()` asked its worker to stop it.
        error: why its last attempt failed, or None.
    """

    id: str
    graph: str
    input: dict[str, JSONValue]
    status: str
    attempt: int
    max_attempts: int
    lease_owner: str | None
    lease_expires_at: datetime | None
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None

    @property
    def finished(self) -> bool:
        """True once the run succeeded, failed or was cancelled."""
        return self.status in FINISHED

    def to_json(self) -> dict[str, JSONValue]:
        """Every field but `input`, timestamps as RFC 3339 text (or None)."""
        return {
            "id": self.id,
            "graph": self.graph,
            "status": self.status,
            "attempt": self.attempt,
            "max_attempts": self.max_attempts,
            "lease_owner": self.lease_owner,
            "lease_expires_at": stamp(self.lease_expires_at),
            "cancel_requested": self.cancel_requested,
            "created_at": stamp(self.created_at),
            "started_at": stamp(self.started_at),
            "finished_at": stamp(self.finished_at),
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class QueueStats:
    """How much work waits and who is there to do it.

    Attributes:
        oldest_queued_age: seconds the oldest queued run has waited, or None.
        workers: the workers seen lately, each with owner, graph, host, pid and seen_at.
    """

    queued: int
    running: int
    oldest_queued_age: float | None
    workers: list[dict[str, JSONValue]]

    def to_json(self) -> dict[str, JSONValue]:
        """The stats as a JSON object."""
        return {
            "queued": self.queued,
            "running": self.running,
            "oldest_queued_age": self.oldest_queued_age,
            "workers": [dict(worker) for worker in self.workers],
        }


def run_from_row(row: Sequence[Any]) -> QueuedRun:
    (run_id, graph, input, status, attempt, max_attempts, lease_owner, lease_expires_at,
     cancel_requested, created_at, started_at, finished_at, error) = row[:13]  # fmt: skip
    return QueuedRun(
        id=run_id,
        graph=graph,
        input=input,
        status=status,
        attempt=attempt,
        max_attempts=max_attempts,
        lease_owner=lease_owner,
        lease_expires_at=_utc(lease_expires_at),
        cancel_requested=cancel_requested,
        created_at=created_at.astimezone(UTC),
        started_at=_utc(started_at),
        finished_at=_utc(finished_at),
        error=error,
    )


def _utc(when: datetime | None) -> datetime | None:
    return None if when is None else when.astimezone(UTC)


def stamp(when: datetime | None) -> str | None:
    return None if when is None else format_timestamp(when)
