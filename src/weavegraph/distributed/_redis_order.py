"""Putting a run's stream entries in order: the `Sequencer` that fills holes from the event
log (or reports them as a gap), and the `Ring` of a run's latest events its feeds share."""

from __future__ import annotations

from bisect import bisect_right

from .._event import Event
from ..checkpoint import EventLog
from ..web._feed import PAGE, covered, fill_from_log
from ._redis_sink import Entries

__all__ = ["Ring", "Sequencer", "is_gap", "stream_entries"]


def is_gap(event: Event) -> bool:
    return event.id == 0 and "last_missed_id" in event.metadata


def _position(event: Event) -> int:
    """Where an event sits in its run: its id, or the last id a gap diagnostic stands for."""
    return int(event.metadata["last_missed_id"]) if is_gap(event) else event.id


def stream_entries(reply: object) -> Entries | None:
    """The entries of the one stream an XREAD asked for (RESP2 list or RESP3 map)."""
    if isinstance(reply, dict):
        for value in reply.values():
            return value[0] if value else None
        return None
    if isinstance(reply, list) and reply:
        entries: Entries = reply[0][1]
        return entries
    return None


class Sequencer:
    """A run's events in id order from stream entries, holes filled from the log or reported.

    `cursor` is the last id accounted for. `take` passes on what follows it without a hole
    and keeps the rest; while `backlog` is true, `fill` gives the next page: of the hole, or
    of the events kept after it.
    """

    __slots__ = ("_log", "_session", "_timeout", "cursor", "hole", "pending")

    def __init__(
        self, cursor: int, log: EventLog | None, session_id: str, fill_timeout: float
    ) -> None:
        self.cursor = cursor
        self.hole: tuple[int, int] | None = None
        self.pending: list[Event] = []
        self._log = log
        self._session = session_id
        self._timeout = fill_timeout

    @property
    def backlog(self) -> bool:
        """True while a hole or the events after one wait to be passed on."""
        return self.hole is not None or bool(self.pending)

    def take(self, events: list[Event]) -> list[Event]:
        """The events (ascending ids) that follow the cursor; those after a hole are kept."""
        taken = []
        cursor = self.cursor
        for index, event in enumerate(events):
            if event.id <= cursor:  # rare: read twice
                continue
            if event.id > cursor + 1:
                self.hole = (cursor + 1, event.id - 1)
                self.pending = events[index:]
                break
            taken.append(event)
            cursor = event.id
        self.cursor = cursor
        return taken

    async def fill(self) -> list[Event]:
        """The next page of the backlog: the hole from the log (or a gap), or what followed."""
        if self.hole is None:
            pending, self.pending = self.pending, []
            return self.take(pending)
        first, last = self.hole
        page = await fill_from_log(self._log, self._session, first, last, self._timeout)
        self.cursor = covered(page)
        self.hole = None if self.cursor >= last else (self.cursor + 1, last)
        return page


class Ring:
    """The latest events of a run (from `size` to twice that, or the last batch), by position.

    It holds every position from `base` (excluded) to the last one, gaps included.
    """

    __slots__ = ("base", "events", "positions", "size")

    def __init__(self, base: int, size: int) -> None:
        self.base = base
        self.size = size
        self.events: list[Event] = []
        self.positions: list[int] = []

    def extend(self, events: list[Event]) -> None:
        """Add the next events; never trims them (feeds waiting at the top want them all)."""
        older = len(self.events)
        self.events += events
        self.positions += [_position(event) for event in events]
        excess = len(self.events) - self.size
        if excess > self.size and older:  # trimmed in chunks: appending stays O(1) per event
            cut = min(excess, older)
            self.base = self.positions[cut - 1]
            del self.events[:cut]
            del self.positions[:cut]

    def since(self, after: int) -> list[Event]:
        """Up to PAGE events placed after `after`."""
        start = bisect_right(self.positions, after)
        return self.events[start : start + PAGE]
