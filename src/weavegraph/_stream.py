"""Streams: `EventStream` (one reader of the event hub) and `DiagnosticsStream` (sink failures)."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from ._errors import EventBusError
from ._event import GAP_SCOPE, STREAM_END_SCOPE, Event
from ._hub import Hub

if TYPE_CHECKING:
    from ._bus import SinkDiagnostic

__all__ = ["DiagnosticsStream", "EventStream", "StreamClosedError"]

_logger = logging.getLogger("weavegraph.event_bus")
_KINDS = frozenset({"node", "diagnostic", "llm"})


class StreamClosedError(EventBusError):
    """The stream is closed and has delivered everything it ever will."""


def _names(what: str, values: str | Iterable[str] | None) -> frozenset[str] | None:
    if values is None:
        return None
    names = frozenset((values,) if isinstance(values, str) else values)
    if what == "kinds" and not names <= _KINDS:
        unknown = ", ".join(sorted(names - _KINDS))
        raise ValueError(f"unknown event kinds: {unknown}; kinds are diagnostic, llm, node")
    return names


def _make_filter(
    kinds: str | Iterable[str] | None,
    nodes: str | Iterable[str] | None,
    scopes: str | Iterable[str] | None,
) -> Callable[[Event], bool] | None:
    """A predicate for the filters given, or None when there are none (the fast path).

    The session filter is not part of it: `EventStream._fill` applies that one inline.
    """
    kind_set, node_set, scope_set = (
        _names("kinds", kinds),
        _names("nodes", nodes),
        _names("", scopes),
    )
    if kind_set is None and node_set is None and scope_set is None:
        return None

    def accept(event: Event) -> bool:
        # The end of a run passes every other filter, so a filtered stream still ends.
        if event.scope == STREAM_END_SCOPE and event.kind == "diagnostic":
            return True
        return (
            (kind_set is None or event.kind in kind_set)
            and (node_set is None or event.node_id in node_set)
            and (scope_set is None or event.scope in scope_set)
        )

    return accept


class EventStream:
    """The events of a bus, read in publish order by one consumer; created by `EventBus.subscribe`.

    Consume it with `async for`, `await recv()`, `await next_timeout(s)`, `try_recv()`, or from
    another thread with `for event in stream.blocking()`; use one style at a time. The stream is
    an async context manager that closes on exit. It ends right after delivering a STREAM_END
    diagnostic (when created with `until_stream_end=True`) or when the bus stops and everything
    published before was delivered.

    A plain stream that falls more than `capacity` events behind skips to the oldest event the
    bus still holds. The next thing it delivers is then a diagnostic with scope GAP_SCOPE whose
    metadata holds `first_missed_id`, `last_missed_id` and `missed`. That diagnostic is local to
    this stream, so its `id` is 0. The missed events count in `dropped` (and in the bus's
    `metrics().dropped`) when the stream next reads, whether or not they would have passed the
    stream's filters. A lossless stream never drops.
    """

    __slots__ = (
        "_batch",
        "_cursor",
        "_done",
        "_dropped",
        "_filter",
        "_hub",
        "_lossless",
        "_pressing",
        "_session_id",
        "_until_end",
    )

    def __init__(
        self,
        hub: Hub,
        *,
        after: int | None = None,
        kinds: str | Iterable[str] | None = None,
        nodes: str | Iterable[str] | None = None,
        scopes: str | Iterable[str] | None = None,
        session_id: str | None = None,
        until_stream_end: bool = True,
        lossless: bool = False,
        pressing: bool = True,
    ) -> None:
        if after is not None and (not isinstance(after, int) or after < 0):
            raise ValueError(f"after must be an event id (an int >= 0); got {after!r}")
        self._hub = hub
        self._filter = _make_filter(kinds, nodes, scopes)
        self._session_id = session_id
        self._until_end = until_stream_end
        self._lossless = lossless
        self._pressing = pressing
        # Ids above the last published one do not exist yet: resume from now.
        self._cursor = hub.last_id if after is None else min(after, hub.last_id)
        self._batch: list[Event] = []  # taken from the hub, reversed: pop() gives the next one
        self._done = False
        self._dropped = 0
        if lossless:
            start = hub.window_start()
            if self._cursor + 1 < start:  # resuming from before the window: say what is gone
                self._batch.append(self._gap(self._cursor + 1, start - 1))
                self._cursor = start - 1
        hub.attach(self, lossless=lossless)

    @property
    def dropped(self) -> int:
        """How many events this stream skipped because it fell behind."""
        return self._dropped

    @property
    def closed(self) -> bool:
        """True once the stream has ended: closed, at its stream end, or the bus stopped."""
        return self._done and not self._batch

    # -- async consumption -------------------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[Event]:
        # An async generator resumes faster per event than a coroutine per __anext__ call.
        # Breaking out of `async for` loses nothing: undelivered events stay in the stream.
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[Event]:
        while True:
            batch = self._batch
            while batch:
                yield batch.pop()
            if not await self._wait_batch():
                return

    async def __anext__(self) -> Event:
        batch = self._batch
        if batch:
            return batch.pop()
        if await self._wait_batch():
            return self._batch.pop()
        raise StopAsyncIteration

    async def recv(self) -> Event:
        """The next event; raises StreamClosedError once the stream has ended."""
        batch = self._batch
        if batch:
            return batch.pop()
        if await self._wait_batch():
            return self._batch.pop()
        raise StreamClosedError("the event stream has ended; no more events will arrive")

    async def next_timeout(self, seconds: float) -> Event | None:
        """The next event, or None if none arrives within `seconds` or the stream has ended."""
        if self._batch:
            return self._batch.pop()
        try:
            async with asyncio.timeout(seconds):
                ready = await self._wait_batch()
        except TimeoutError:
            return None
        return self._batch.pop() if ready else None

    def try_recv(self) -> Event | None:
        """The next event if one is ready now, else None (see `closed` to tell the two apart)."""
        if self._batch or (not self._done and self._fill()):
            return self._batch.pop()
        if self._hub.closed:
            self._finish()
        return None

    async def aclose(self) -> None:
        """Close the stream; events not yet read are discarded. Closing twice is harmless."""
        self._batch = []
        self._finish()

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- blocking consumption ----------------------------------------------------------------

    def blocking(self) -> Iterator[Event]:
        """Iterate from synchronous code in another thread; each wait runs on the bus's loop.

        Raises EventBusError when called on the thread running the bus's event loop, where it
        would block the loop it waits for. The loop must keep running until the stream ends.
        """
        self._hub.refuse_loop_thread()
        return self._iter_blocking()

    def _iter_blocking(self) -> Iterator[Event]:
        loop = self._hub.loop_for_thread()
        while True:
            batch = self._batch
            while batch:
                yield batch.pop()
            if loop is None:  # stopped without ever having a loop: read what is left
                if not self._fill():
                    self._finish()
                    return
            elif not asyncio.run_coroutine_threadsafe(self._wait_batch(), loop).result():
                return

    # -- internals ---------------------------------------------------------------------------

    async def _wait_batch(self) -> bool:
        """Wait until the local batch holds events (True) or the stream has ended (False)."""
        hub = self._hub
        while not self._done:
            if self._fill():
                return True
            if hub.closed:
                self._finish()
                return False
            await hub.wait()
        return bool(self._batch)

    async def _next_batch(self) -> list[Event] | None:
        """Everything ready, in order (at least one event), or None once the stream has ended."""
        if not self._batch and not await self._wait_batch():
            return None
        batch, self._batch = self._batch, []
        batch.reverse()
        return batch

    def _fill(self) -> bool:
        hub = self._hub
        after = self._cursor
        start, batch = hub.take(after, lossless=self._lossless)
        if not batch:
            return False
        self._cursor = start + len(batch) - 1
        session_id = self._session_id
        if session_id is not None:  # the common filter, without a call per event
            batch = [event for event in batch if event.session_id == session_id]
        accept = self._filter
        if accept is not None:
            batch = [event for event in batch if accept(event)]
        if self._until_end and hub.end_after(after):
            self._cut_at_end(batch)
        if start > after + 1:
            batch.insert(0, self._gap(after + 1, start - 1))
        if not batch:
            return False
        batch.reverse()
        self._batch = batch
        return True

    def _cut_at_end(self, batch: list[Event]) -> None:
        # After filtering, any STREAM_END left is this stream's (its session's, if it has one).
        for index, event in enumerate(batch):
            if event.scope == STREAM_END_SCOPE and event.kind == "diagnostic":
                del batch[index + 1 :]
                self._finish()
                return

    def _gap(self, first: int, last: int) -> Event:
        missed = last - first + 1
        self._dropped += missed
        self._hub.dropped += missed
        _logger.warning(
            "event stream lagged; dropped events: %d missed (ids %d..%d), %d by this stream",
            missed,
            first,
            last,
            self._dropped,
        )
        return Event.diagnostic(
            GAP_SCOPE,
            f"stream lagged: missed {missed} events (ids {first}..{last})",
            session_id=self._session_id,
            metadata={"first_missed_id": first, "last_missed_id": last, "missed": missed},
        )

    def _finish(self) -> None:
        if not self._done:
            self._done = True
            self._hub.detach(self, lossless=self._lossless)


class DiagnosticsStream:
    """Sink failures (`SinkDiagnostic`s) as they happen; created by `EventBus.diagnostics`.

    Consume it like an EventStream: `async for`, `recv`, `try_recv`, `next_timeout`. It holds at
    most `capacity` undelivered diagnostics (the oldest are dropped and counted in `dropped`) and
    ends when the bus stops. With diagnostics disabled, the stream is closed from the start.
    """

    __slots__ = ("_buffer", "_capacity", "_closed", "_dropped", "_waiter")

    def __init__(self, capacity: int, *, closed: bool = False) -> None:
        self._buffer: deque[SinkDiagnostic] = deque()
        self._capacity = capacity
        self._closed = closed
        self._dropped = 0
        self._waiter: asyncio.Future[None] | None = None

    @property
    def dropped(self) -> int:
        """How many diagnostics were dropped because this stream fell behind."""
        return self._dropped

    @property
    def closed(self) -> bool:
        """True once the stream is closed and everything in it was read."""
        return self._closed and not self._buffer

    def __aiter__(self) -> DiagnosticsStream:
        return self

    async def __anext__(self) -> SinkDiagnostic:
        try:
            return await self.recv()
        except StreamClosedError:
            raise StopAsyncIteration from None

    async def recv(self) -> SinkDiagnostic:
        """The next diagnostic; raises StreamClosedError once the stream is closed and empty."""
        while not self._buffer:
            if self._closed:
                raise StreamClosedError("the diagnostics stream is closed")
            waiter = self._waiter
            if waiter is None:
                waiter = self._waiter = asyncio.get_running_loop().create_future()
            await asyncio.shield(waiter)
        return self._buffer.popleft()

    def try_recv(self) -> SinkDiagnostic | None:
        """The next diagnostic if one is ready now, else None."""
        return self._buffer.popleft() if self._buffer else None

    async def next_timeout(self, seconds: float) -> SinkDiagnostic | None:
        """The next diagnostic, or None on timeout or when the stream is closed and empty."""
        try:
            async with asyncio.timeout(seconds):
                return await self.recv()
        except (TimeoutError, StreamClosedError):
            return None

    async def aclose(self) -> None:
        """Close the stream, discarding what was not read. Closing twice is harmless."""
        self._buffer.clear()
        self._close()

    async def __aenter__(self) -> DiagnosticsStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _push(self, diagnostic: SinkDiagnostic) -> None:
        if len(self._buffer) >= self._capacity:
            self._buffer.popleft()
            self._dropped += 1
            _logger.warning("diagnostics stream lagged; dropped %d diagnostics", self._dropped)
        self._buffer.append(diagnostic)
        self._wake()

    def _close(self) -> None:
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            waiter.set_result(None)
