"""The durable event log: the `EventLog` protocol, `EventLogSink`, and code both backends share.

A log keeps every published event of every session, keyed (session_id, id), as its JSON wire
shape; it serves replays older than the bus's ring (an SSE client resuming from an old
`Last-Event-ID`, a run resumed in another process). `EventLogSink` feeds a log from a bus in
batches. The backends are `SQLiteEventLog` and `PostgresEventLog`.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Protocol, Self, runtime_checkable

from .._batching import BatchingSink
from .._errors import EventLogError
from .._event import Event

__all__ = ["EventLog", "EventLogError", "EventLogSink", "check_limit", "event_rows"]


@runtime_checkable
class EventLog(Protocol):
    """Stores events durably, per session, in id order.

    Events without a session are stored under the session ``""``. Appending an event whose
    (session, id) is already stored keeps the stored one, so a retried batch is harmless.
    """

    async def setup(self) -> None:
        """Prepare the backend (create tables, open pools). Safe to call twice."""

    async def aclose(self) -> None:
        """Release the backend's resources. Safe to call twice."""

    async def append(self, events: Sequence[Event]) -> None:
        """Store published events (ids ≥ 1) in one transaction."""

    async def events_after(
        self, session_id: str, event_id: int, *, limit: int | None = None
    ) -> list[Event]:
        """The session's events with an id above `event_id`, in id order, at most `limit`."""

    async def last_id(self, session_id: str) -> int:
        """The highest stored event id of the session, or 0 if it has none."""

    async def delete_session(self, session_id: str) -> bool:
        """Forget a session's events; True if there were any."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


def event_rows(events: Sequence[Event]) -> list[tuple[str, int, str]]:
    """(session_id, id, JSON) for each event.

    Raises:
        ValueError: an event was never published (its id is 0), so it has no place in a log.
    """
    rows = []
    for event in events:
        if event.id < 1:
            raise ValueError(f"only published events can be logged; {event!r} has no id")
        rows.append((event.session_id or "", event.id, event.to_json()))
    return rows


def check_limit(limit: int | None) -> None:
    """Reject a negative `limit`."""
    if limit is not None and limit < 0:
        raise ValueError(f"limit must not be negative; got {limit}")


class EventLogSink(BatchingSink):
    """A lossless bus sink that appends every event to an `EventLog`, in batches.

    Events are buffered and appended once `batch_size` are waiting, or `flush_delay` seconds
    after the first one arrived (so a quiet run is logged within a few milliseconds and a busy
    one costs one transaction per batch, not one per step), and always in `close()`. A batch
    the log refuses is not retried: the failure is raised from the next `handle()` or from
    `close()`, so the bus reports it in its diagnostics and `sink_health()`. The log is not
    closed with the sink.

    Args:
        log: where the events go (set up on first use).
        name: the sink's name on the bus.
        batch_size: the most events appended in one transaction.
        flush_delay: seconds a buffered event may wait for others to share its transaction
            (0: the next turn of the event loop).
    """

    def __init__(
        self,
        log: EventLog,
        *,
        name: str = "event_log",
        batch_size: int = 256,
        flush_delay: float = 0.005,
    ) -> None:
        super().__init__(name, batch_size=batch_size, flush_delay=flush_delay)
        self.log = log

    async def _write(self, batch: list[Event]) -> None:
        await self.log.append(batch)

    def _failed(self, failure: Exception) -> Exception:
        return EventLogError(
            f"event log sink {self.name!r}: a batch of events was not stored: {failure}"
        )
