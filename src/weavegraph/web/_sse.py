"""Server-Sent Events: the wire frames, the streaming response, and `Last-Event-ID` parsing.

A frame is ``event: NAME`` / ``id: N`` / ``data: JSON`` and a blank line. A gap diagnostic (id 0,
local to one stream) is sent without an ``id:`` line, so the browser keeps the last real id for
its next reconnection. Frames are encoded once per event and shared by every client of a bus.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from ..checkpoint import EventLog
from ..events import Event, EventStream
from ._feed import Feed, StreamFeed

__all__ = ["EventStreamResponse", "encode_frame", "last_event_id", "sse_response"]

DEFAULT_EVENT = "workflow-event"
_PING = b": ping\n\n"
_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no", "Connection": "keep-alive"}
_CACHE_SIZE = 8192
# id(event) -> (event, name, frame). Holding the event keeps its id() from being reused, so a
# hit is always the same object; a plain dict cleared when full is safe without locks.
_cache: dict[int, tuple[Event, str, bytes]] = {}


def encode_frame(event: Event, name: str = DEFAULT_EVENT) -> bytes:
    """One SSE frame for `event` (cached: many clients of one bus send the same bytes)."""
    entry = _cache.get(id(event))
    if entry is not None and entry[0] is event and entry[1] == name:
        return entry[2]
    data = event.to_json().encode()
    if event.id:
        frame = b"event: %s\nid: %d\ndata: %s\n\n" % (name.encode(), event.id, data)
        if len(_cache) >= _CACHE_SIZE:
            _cache.clear()
        _cache[id(event)] = (event, name, frame)
        return frame
    return b"event: %s\ndata: %s\n\n" % (name.encode(), data)


def last_event_id(request: Request) -> int | None:
    """The id a reconnecting client last received, or None for a fresh client.

    Read from the ``Last-Event-ID`` header (browsers send it when an EventSource reconnects),
    else from the ``last_event_id`` query parameter (for a page that reopens a stream itself).

    Raises:
        ValueError: the value is not a non-negative integer.
    """
    raw = request.headers.get("last-event-id")
    where = "Last-Event-ID header"
    if raw is None:
        raw = request.query_params.get("last_event_id")
        where = "last_event_id parameter"
    if raw is None:
        return None
    text = raw.strip()
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise ValueError(f"{where} must be a non-negative integer event id; got {raw[:40]!r}")
    return int(text)


class EventStreamResponse(Response):
    """A ``text/event-stream`` response fed by a `Feed`; made by `sse_response`.

    It sends a comment line every `ping` seconds while idle, ends after the feed's last batch,
    and when the client goes away it stops at once and closes the feed.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        feed: Feed,
        *,
        event: str = DEFAULT_EVENT,
        ping: float | None = 15.0,
        retry: int | None = None,
        headers: Mapping[str, str] | None = None,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        if "\n" in event or "\r" in event:
            raise ValueError(f"SSE event name must be one line; got {event!r}")
        if ping is not None and ping <= 0:
            raise ValueError(f"ping must be a positive number of seconds or None; got {ping!r}")
        self.feed = feed
        self.event = event
        self.ping = ping
        self.retry = retry
        self.on_close = on_close
        self.status_code = 200
        self.background = None
        self.init_headers({**_HEADERS, **(headers or {})})
        self._gone = False
        self._lock = asyncio.Lock()
        self._sends = 0  # messages sent so far (the pinger watches it)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            if scope.get("method") == "HEAD":
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            await self._serve(receive, send)
        finally:
            await self.feed.aclose()
            if self.on_close is not None:
                self.on_close()

    async def _serve(self, receive: Receive, send: Send) -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        # Two helpers, so that waiting for events costs no timer per wait: one notices the
        # client leaving, one sends pings; the lock keeps their messages whole.
        helpers = [loop.create_task(self._watch(receive, task))]
        if self.ping is not None:
            helpers.append(loop.create_task(self._pinger(send, self.ping)))
        try:
            await self._pump(send)
            await self._send(send, b"", more=False)
        except asyncio.CancelledError:
            # Cancelled by the watcher because the client left: a normal end. Any other
            # cancellation (server shutdown) goes on up.
            if not self._gone or task.uncancel() > 0:
                raise
        except OSError:  # servers on ASGI spec 2.4 raise on sending to a closed connection
            self._gone = True
        finally:
            for helper in helpers:
                helper.cancel()
            await asyncio.wait(helpers)
            for helper in helpers:  # a ping to a closed connection may have failed: expected
                if not helper.cancelled():
                    helper.exception()

    async def _send(self, send: Send, body: bytes, *, more: bool = True) -> None:
        async with self._lock:
            await send({"type": "http.response.body", "body": body, "more_body": more})
        self._sends += 1

    async def _pump(self, send: Send) -> None:
        feed, name = self.feed, self.event
        if self.retry is not None:
            await self._send(send, b"retry: %d\n\n" % self.retry)
        while (batch := await feed.next_batch()) is not None:
            await self._send(send, b"".join([encode_frame(event, name) for event in batch]))

    async def _pinger(self, send: Send, every: float) -> None:
        while True:
            seen = self._sends
            await asyncio.sleep(every)
            if self._sends == seen:  # nothing sent for `every` seconds
                await self._send(send, _PING)

    async def _watch(self, receive: Receive, writer: asyncio.Task[None]) -> None:
        # The request body of a GET is empty; the next message is the disconnect.
        while (await receive())["type"] != "http.disconnect":
            pass
        self._gone = True
        writer.cancel()


def sse_response(
    stream: EventStream,
    *,
    event: str = DEFAULT_EVENT,
    ping: float | None = 15.0,
    retry: int | None = None,
    after: int | None = None,
    event_log: EventLog | None = None,
    session_id: str | None = None,
    headers: Mapping[str, str] | None = None,
    on_close: Callable[[], None] | None = None,
) -> Response:
    """An SSE response that forwards `stream` to one client until its STREAM_END.

    Each frame carries ``event: <event>``, ``id: <event id>`` and ``data: <event.to_json()>``.
    The response owns the stream: it closes it when the stream ends or the client disconnects.

    Args:
        stream: a subscription, e.g. ``bus.subscribe(after=last_event_id(request))``.
        event: the SSE event name (what ``EventSource.addEventListener`` listens for).
        ping: seconds of silence after which a ``: ping`` comment keeps proxies from closing
            the connection; None for no pings.
        retry: milliseconds a browser waits before reconnecting (sent first), or None.
        after: the id the client already has (its Last-Event-ID); nothing up to it is resent.
        event_log: a durable log of this session's events: when the client falls behind the
            bus's ring (or resumes from an older id), the missing events are read from it.
            Without one, the client gets a GAP_SCOPE diagnostic saying which ids it missed.
        session_id: the session in `event_log` (required with it); the bus must carry only
            this session's events, as one bus per run does.
        headers: extra response headers.
        on_close: called once the response is over, whatever the reason.
    """
    feed = StreamFeed(stream, after=after or 0, log=event_log, session_id=session_id)
    return EventStreamResponse(
        feed, event=event, ping=ping, retry=retry, headers=headers, on_close=on_close
    )
