"""The broadcast hub: one bounded ring of events shared by every reader, each with its own cursor.

Layout: `_buf[i]` holds the event with id `_base + i`. Publishing appends (O(1), whatever the
number of readers); a reader copies the slice after its cursor in one step, so a busy reader pays
one slice per batch, not one call per event. Plain readers see at most the last `capacity` events
(the *window*); a reader that falls further behind skips to the window's start and is told so by a
gap diagnostic (see `_stream.py`). Lossless readers pin what they have not read, so the buffer
only grows past the window while one of them lags. Old entries are cut off in one `del` every
`capacity` publishes, which keeps publishing O(1) amortised.

Threads: the ring is only changed by the thread that runs the bus's event loop (or, before any
loop is bound, under `_lock`). Another thread takes its id from the shared `itertools.count`
(atomic under the GIL), parks the event in `_inbox` and asks the loop to place it. An id placed
out of order leaves *holes*; readers never read past the first hole, so every reader sees events in
id order.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections import deque
from typing import Protocol

from ._errors import EventBusError
from ._event import STREAM_END_SCOPE, Event

__all__ = ["Hub", "Reader"]

_get_ident = threading.get_ident
_running_loop = asyncio._get_running_loop
# Placeholder for an id taken by another thread whose event has not been placed yet.
_HOLE = Event("diagnostic", "__weavegraph_hole__", "")


class Reader(Protocol):
    """What the hub needs of a lossless reader: its cursor, and whether it applies backpressure."""

    _cursor: int
    _pressing: bool


class Hub:
    """The ring, the id counter, and the wake-ups of readers and of backpressured producers."""

    __slots__ = (
        "_base",
        "_bound",
        "_buf",
        "_capacity",
        "_closed",
        "_ends",
        "_holes",
        "_ids",
        "_inbox",
        "_ingest_pending",
        "_lock",
        "_loop",
        "_lossless",
        "_owner",
        "_readable",
        "_room",
        "_trim_id",
        "_waiter",
        "dropped",
        "readers",
    )

    def __init__(self, capacity: int, first_id: int = 1) -> None:
        if not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"event bus capacity must be a positive int; got {capacity!r}")
        if not isinstance(first_id, int) or first_id < 1:
            raise ValueError(f"event bus first_id must be a positive int; got {first_id!r}")
        self._capacity = capacity
        self._buf: list[Event] = []
        self._base = first_id  # id of _buf[0]
        self._readable = first_id - 1  # every id up to this one is placed
        self._ids = itertools.count(first_id)
        self._holes: set[int] = set()
        self._ends: list[int] = []  # ids of retained STREAM_END events
        self._trim_id = first_id + 2 * capacity  # placing this id (or a later one) trims
        self._lossless: list[Reader] = []
        self._waiter: asyncio.Future[None] | None = None
        self._room: asyncio.Future[None] | None = None
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._owner = -1  # thread id of the bound loop; get_ident() never returns -1
        self._bound = threading.Event()
        self._lock = threading.Lock()
        self._inbox: deque[Event] = deque()
        self._ingest_pending = False
        self.dropped = 0
        self.readers = 0

    # -- state -------------------------------------------------------------------------------

    @property
    def capacity(self) -> int:
        """How many events a plain reader can fall behind before it drops some."""
        return self._capacity

    @property
    def closed(self) -> bool:
        """True once `close()` ran: publishing is refused, readers end after the last event."""
        return self._closed

    @property
    def last_id(self) -> int:
        """The id up to which every event is readable (the number of published events)."""
        return self._readable

    def retained(self) -> int:
        """Events kept for readers: the window, or more while a lossless reader lags."""
        keep = self._keep_from()
        return self._readable - keep + 1

    def lag(self) -> int:
        """How far the slowest lossless reader that applies backpressure is behind."""
        cursors = [reader._cursor for reader in self._lossless if reader._pressing]
        return self._readable - min(cursors) if cursors else 0

    # -- loop binding ------------------------------------------------------------------------

    def bind(self) -> asyncio.AbstractEventLoop:
        """Bind the hub to the running event loop (once) and return the bound loop."""
        loop = self._loop
        if loop is None:
            running = asyncio.get_running_loop()
            with self._lock:
                if self._loop is None:
                    self._loop = running
                    self._owner = -1 if self._closed else _get_ident()
                    self._bound.set()
                loop = self._loop
        return loop

    def refuse_loop_thread(self) -> None:
        """Raise EventBusError if a blocking read here would block the loop serving the hub."""
        running = _running_loop()
        if running is not None and self._loop in (None, running):
            raise EventBusError(
                "blocking() would block the event loop that serves this bus; "
                "use `async for event in stream` inside coroutines"
            )

    def loop_for_thread(self) -> asyncio.AbstractEventLoop | None:
        """The bound loop, for a reader in another thread; waits until a loop is bound.

        Returns None when the hub was closed without ever being bound to a loop.
        """
        self._bound.wait()
        return self._loop

    # -- publishing --------------------------------------------------------------------------

    def publish(self, event: Event) -> Event:
        """Give `event` the next id and append it; never blocks. Raises EventBusError if closed."""
        if _get_ident() != self._owner:  # other threads, no loop yet, or closed (owner is -1)
            return self._publish_slow(event)
        eid = event.id = next(self._ids)
        # The next id after the readable ones goes at the end. With holes it cannot be that
        # id: the hole's id was taken earlier, so it lies between the readable ones and `eid`.
        if eid == self._readable + 1:
            self._buf.append(event)
            self._readable = eid
        else:
            self._place(event)
        if event.scope == STREAM_END_SCOPE:
            self._ends.append(eid)
        if eid >= self._trim_id:
            self._trim()
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            waiter.set_result(None)
        return event

    async def publish_async(self, event: Event) -> Event:
        """Publish, first waiting while a lossless reader is `capacity` events behind."""
        while self._lossless and not self._closed and self.lag() >= self._capacity:
            room = self._room
            if room is None:
                room = self._room = self.bind().create_future()
            await asyncio.shield(room)
        return self.publish(event)

    def _publish_slow(self, event: Event) -> Event:
        if self._closed:
            raise EventBusError(
                f"cannot publish {event!r}: the event bus is stopped; publish before stop()"
            )
        if self._loop is None:
            if _running_loop() is not None:
                self.bind()
                return self.publish(event)
            with self._lock:  # no loop yet: threads take turns under the lock
                if self._loop is None:
                    event.id = next(self._ids)
                    self._commit(event)
                    return event
        return self._publish_foreign(event)

    def _publish_foreign(self, event: Event) -> Event:
        loop = self._loop
        assert loop is not None
        event.id = next(self._ids)
        self._inbox.append(event)
        # Racing threads may both schedule an ingest; a second one finds the inbox empty.
        if not self._ingest_pending:
            self._ingest_pending = True
            try:
                loop.call_soon_threadsafe(self._ingest)
            except RuntimeError as exc:
                raise EventBusError(
                    "the event loop this event bus is bound to is closed; stop the bus first"
                ) from exc
        return event

    def _ingest(self) -> None:
        # Cleared before draining, so an event appended after this line schedules a new ingest.
        self._ingest_pending = False
        inbox = self._inbox
        while inbox:
            self._commit(inbox.popleft())

    def _commit(self, event: Event) -> None:
        self._place(event)
        if event.scope == STREAM_END_SCOPE:
            self._ends.append(event.id)
            self._ends.sort()  # another thread's end may arrive late
        if self._base + len(self._buf) > self._trim_id:
            self._trim()
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            waiter.set_result(None)

    def _place(self, event: Event) -> None:
        buf = self._buf
        index = event.id - self._base
        missing = index - len(buf)
        if missing >= 0:
            if missing:
                first = self._base + len(buf)
                buf.extend(itertools.repeat(_HOLE, missing))
                self._holes.update(range(first, first + missing))
            buf.append(event)
        else:
            buf[index] = event
            self._holes.discard(event.id)
        holes = self._holes
        self._readable = min(holes) - 1 if holes else self._base + len(buf) - 1

    def _keep_from(self) -> int:
        keep = max(self._base, self._readable - self._capacity + 1)
        for reader in self._lossless:
            keep = min(keep, reader._cursor + 1)
        return keep

    def _trim(self) -> None:
        keep = self._keep_from()
        cut = keep - self._base
        if cut > 0:
            del self._buf[:cut]
            self._base = keep
            ends = self._ends
            while ends and ends[0] < keep:
                del ends[0]
        self._trim_id = self._base + len(self._buf) + self._capacity

    # -- reading -----------------------------------------------------------------------------

    def take(self, after: int, *, lossless: bool) -> tuple[int, list[Event]]:
        """The readable events with ids above `after`, and the id of the first one.

        A plain reader gets at most the window; when the first id is above `after + 1`, the ids
        in between were dropped for it. A lossless reader resumes where its cursor is.
        """
        readable = self._readable
        start = after + 1
        if start > readable:
            return start, []
        base = self._base
        low = base if lossless else max(base, readable - self._capacity + 1)
        if start < low:
            start = low
        batch = self._buf[start - base : readable - base + 1]
        if lossless and self._room is not None:
            room, self._room = self._room, None
            room.set_result(None)
        return start, batch

    def end_after(self, after: int) -> bool:
        """True if a STREAM_END event with an id above `after` was published."""
        ends = self._ends
        return bool(ends) and ends[-1] > after

    def window_start(self) -> int:
        """The oldest id a plain reader can still read."""
        return max(self._base, self._readable - self._capacity + 1)

    async def wait(self) -> None:
        """Wait until something is published or the hub closes (one shared future per wake).

        One future for all readers, each awaiting it through `asyncio.shield`, measured faster
        than a future per reader: the shield's extra loop callback lets a reader that yields
        after every event take two at a time (4 readers, an event and a yield each: 51k
        against 46k events/s), and with batches of events the wake-ups are too rare to matter.
        """
        waiter = self._waiter
        if waiter is None:
            loop = self.bind()
            if asyncio.get_running_loop() is not loop:
                raise EventBusError("event streams must be read on the event loop of their bus")
            waiter = self._waiter = loop.create_future()
        # Shielded: cancelling one reader must not cancel the future the others wait on.
        await asyncio.shield(waiter)

    # -- readers -----------------------------------------------------------------------------

    def attach(self, reader: Reader, *, lossless: bool) -> None:
        """Count a new reader; a lossless one pins the events after its cursor."""
        self.readers += 1
        if lossless:
            self._lossless.append(reader)

    def detach(self, reader: Reader, *, lossless: bool) -> None:
        """Forget a reader (called once, when it closes)."""
        self.readers -= 1
        if lossless:
            self._lossless.remove(reader)
            room = self._room
            if room is not None:
                self._room = None
                room.set_result(None)

    def close(self) -> None:
        """Refuse further events and wake every reader and producer. Idempotent."""
        if self._closed:
            return
        if self._loop is not None and _get_ident() == self._owner:
            self._ingest()
        self._closed = True
        self._owner = -1  # sends every publish down the slow path, which refuses it
        waiter, room = self._waiter, self._room
        self._waiter = self._room = None
        if waiter is not None:
            waiter.set_result(None)
        if room is not None:
            room.set_result(None)
        self._bound.set()  # a blocking reader waiting for a loop finds the hub closed instead
