"""Feeds: where an SSE response takes its events from, one batch at a time.

`StreamFeed` reads a live `EventStream`; when the stream reports a gap (its reader fell behind
the bus's ring, or resumed from an id older than the ring) and a durable `EventLog` is at hand,
the missing ids are read back from the log, so the client still gets every event in order.
`LogFeed` replays a finished run from the log alone. `fill_from_log` is that gap filling on its
own, for every feed that reads a run's ids in order from somewhere that may have holes.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from ..checkpoint import EventLog
from ..events import GAP_SCOPE, Event, EventStream

__all__ = ["Feed", "LogFeed", "StreamFeed", "covered", "fill_from_log", "gap_event"]

#: Most events read from a log at once: a large gap is sent in pages, so memory stays bounded.
PAGE = 512


class Feed(Protocol):
    """A source of event batches for one SSE response."""

    async def next_batch(self) -> list[Event] | None:
        """The next events in id order (at least one), waiting for them; None at the end."""
        ...

    async def aclose(self) -> None:
        """Release the source (idempotent)."""
        ...


def _is_gap(event: Event) -> bool:
    return event.id == 0 and event.scope == GAP_SCOPE and event.kind == "diagnostic"


def gap_event(first: int, last: int, session_id: str | None) -> Event:
    """A GAP_SCOPE diagnostic saying ids `first`..`last` are lost (the stream's own shape)."""
    missed = last - first + 1
    return Event.diagnostic(
        GAP_SCOPE,
        f"stream lagged: missed {missed} events (ids {first}..{last})",
        session_id=session_id,
        metadata={"first_missed_id": first, "last_missed_id": last, "missed": missed},
    )


def covered(page: list[Event]) -> int:
    """The last id a page of `fill_from_log` accounts for (sent or reported as missed)."""
    last = page[-1]
    return int(last.metadata["last_missed_id"]) if _is_gap(last) else last.id


async def fill_from_log(
    log: EventLog | None, session_id: str | None, first: int, last: int, timeout: float
) -> list[Event]:
    """The next page of the ids `first`..`last` (a hole in a stream) from the log.

    Returns the consecutive events the log holds from `first` on (at most PAGE), after waiting
    up to `timeout` seconds for the log to catch up (it is written a moment after the events
    are published). What it still lacks then, up to the next id it holds (or `last`), comes
    back as one GAP_SCOPE diagnostic; so does the whole range without a log. A hole in the
    log is never skipped silently. `covered(page)` is the last id the page accounts for.
    """
    if log is None or session_id is None:
        return [gap_event(first, last, session_id)]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    delay = 0.005
    while True:
        limit = min(PAGE, last - first + 1)
        events = await log.events_after(session_id, first - 1, limit=limit)
        # Only the run of consecutive ids from `first` on: a hole must not be skipped.
        count = 0
        while count < len(events) and events[count].id == first + count:
            count += 1
        if count:
            del events[count:]
            return events
        if loop.time() >= deadline:  # the log lacks them: say so, as the stream would
            stop = min(events[0].id - 1, last) if events else last
            return [gap_event(first, stop, session_id)]
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.1)


class StreamFeed:
    """Batches from a live stream; gaps are filled from `log` when there is one.

    Args:
        stream: the subscription (closed by `aclose`).
        after: the last id the client already has; events up to it are never sent.
        log: the durable log holding this session's events, or None to pass gaps on as they are.
        session_id: the session whose events the bus carries (needed with `log`). The bus must
            carry only this session's events, so that its ids are the session's ids.
        fill_timeout: how long to wait for the log to catch up with a gap before reporting the
            rest of it as missed (the log is written a moment after the events are published).
    """

    __slots__ = ("_fill_timeout", "_gap", "_last", "_log", "_pending", "_session", "_stream")

    def __init__(
        self,
        stream: EventStream,
        *,
        after: int = 0,
        log: EventLog | None = None,
        session_id: str | None = None,
        fill_timeout: float = 5.0,
    ) -> None:
        if log is not None and session_id is None:
            raise ValueError("filling gaps from an event log needs the session_id of the stream")
        self._stream = stream
        self._last = after
        self._log = log
        self._session = session_id
        self._fill_timeout = fill_timeout
        self._gap: tuple[int, int] | None = None  # ids still to read from the log
        self._pending: list[Event] = []  # events after the gap, held until it is filled

    async def next_batch(self) -> list[Event] | None:
        """See `Feed.next_batch`."""
        while True:
            if self._gap is not None:
                batch = await self._fill()
            elif self._pending:
                pending, self._pending = self._pending, []
                batch = self._deliver(pending)  # may hold back a part again, after a gap
            else:
                # Everything ready in one step, as the bus's own sink workers read it.
                ready = await self._stream._next_batch()
                if ready is None:
                    return None
                batch = self._deliver(ready)
            if batch:  # else: all resent, or a gap comes first: go on
                return batch

    def _deliver(self, batch: list[Event]) -> list[Event]:
        """Drop what the client has, and stop at a gap the log can fill (kept for later)."""
        if self._log is not None:
            for index, event in enumerate(batch):
                if _is_gap(event):
                    meta = event.metadata
                    self._gap = (int(meta["first_missed_id"]), int(meta["last_missed_id"]))
                    self._pending = batch[index + 1 :]
                    del batch[index:]
                    break
        last = self._last
        if batch and not (batch[0].id > 0 and last < batch[0].id):  # rare: resent or gap events
            batch = [e for e in batch if e.id == 0 or e.id > last]
        for event in reversed(batch):
            if event.id:
                self._last = event.id
                break
        return batch

    async def _fill(self) -> list[Event]:
        """The next page of the gap from the log, waiting a little for the log to catch up."""
        assert self._gap is not None
        first, last = self._gap
        first = max(first, self._last + 1)
        if first > last:
            self._gap = None
            return []
        page = await fill_from_log(self._log, self._session, first, last, self._fill_timeout)
        stop = covered(page)
        self._gap = None if stop >= last else (stop + 1, last)
        if _is_gap(page[0]):
            self._last = stop
            return page
        return self._deliver(page)

    async def aclose(self) -> None:
        """Close the stream."""
        self._pending = []
        self._gap = None
        await self._stream.aclose()


class LogFeed:
    """Batches replayed from the log of a session that is over, up to its STREAM_END."""

    __slots__ = ("_cursor", "_done", "_log", "_session")

    def __init__(self, log: EventLog, session_id: str, *, after: int = 0) -> None:
        self._log = log
        self._session = session_id
        self._cursor = after
        self._done = False

    async def next_batch(self) -> list[Event] | None:
        """See `Feed.next_batch`; the log is read a page at a time."""
        if self._done:
            return None
        events = await self._log.events_after(self._session, self._cursor, limit=PAGE)
        if not events:
            self._done = True
            return None
        self._cursor = events[-1].id
        for index, event in enumerate(events):
            if event.is_stream_end():
                del events[index + 1 :]
                self._done = True
                break
        return events

    async def aclose(self) -> None:
        """Stop reading."""
        self._done = True
