"""Event sinks: the `EventSink` protocol and the sinks weavegraph ships.

The bus drives each sink from its own worker, in publish order. A sink whose `handle` is a plain
method runs in a thread of its own (so a slow one never blocks the event loop); an `async def
handle` runs on the loop. Sinks whose class sets `lossless = True` receive every event, however
far behind they fall; the others drop the oldest events like plain streams do.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import os
import queue
import sys
import threading
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, TextIO

from ._event import Event
from ._time import utc_now

if TYPE_CHECKING:
    from ._stream import EventStream

__all__ = [
    "ChannelSink",
    "EventSink",
    "JsonLinesSink",
    "LoggingSink",
    "MemorySink",
    "SinkFailure",
    "SinkWorker",
    "StdOutSink",
    "render_event",
]


class EventSink(Protocol):
    """Something that consumes every event of a bus: a terminal, a file, a queue, a database.

    Required: `name` (used in `sink_health()` and diagnostics) and `handle(event)`, a plain method
    (run in the sink's own thread) or an `async def` (run on the event loop). An exception from
    `handle` is reported on `EventBus.diagnostics()` and never stops the bus.

    Optional: a class attribute `lossless = True` to receive every event, however far behind the
    sink falls (the bus keeps what it has not handled); and `close()`, plain or async, called once
    after the sink handled its last event when the bus stops.
    """

    @property
    def name(self) -> str:
        """A short name for the sink, unique within its bus."""
        ...

    def handle(self, event: Event) -> Awaitable[None] | None:
        """Consume one event; events arrive in publish order, one call at a time."""
        ...


# -- driving sinks (used by the bus) ---------------------------------------------------------

SinkFailure = tuple[Event | None, str, datetime]
"""What went wrong: the event being handled (None for close/abandon), the error, when."""


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _handle_all(handle: Callable[[Event], object], batch: list[Event]) -> list[SinkFailure]:
    failures: list[SinkFailure] = []
    for event in batch:
        try:
            handle(event)
        except Exception as exc:
            failures.append((event, _describe(exc), utc_now()))
    return failures


def _close_sink(close: Callable[[], object]) -> list[SinkFailure]:
    try:
        close()
    except Exception as exc:
        return [(None, f"close() failed: {_describe(exc)}", utc_now())]
    return []


def _settle(future: asyncio.Future[list[SinkFailure]], failures: list[SinkFailure]) -> None:
    if not future.done():  # a worker abandoned at stop() no longer waits
        future.set_result(failures)


_Job = tuple[Callable[[], list[SinkFailure]], "asyncio.Future[list[SinkFailure]]"]


class _SinkThread:
    """The thread of one synchronous sink: it runs the jobs (batches, then close) handed to it."""

    __slots__ = ("_jobs", "_loop", "thread")

    def __init__(self, name: str, loop: asyncio.AbstractEventLoop) -> None:
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._loop = loop
        # A daemon: a sink stuck forever must not keep the process alive after stop() gave up.
        self.thread = threading.Thread(
            target=self._run, name=f"weavegraph-sink-{name}", daemon=True
        )
        self.thread.start()

    def run(self, job: Callable[[], list[SinkFailure]]) -> asyncio.Future[list[SinkFailure]]:
        future: asyncio.Future[list[SinkFailure]] = self._loop.create_future()
        self._jobs.put((job, future))
        return future

    def stop(self) -> None:
        self._jobs.put(None)

    def _run(self) -> None:
        while (item := self._jobs.get()) is not None:
            job, future = item
            failures = job()
            try:
                self._loop.call_soon_threadsafe(_settle, future, failures)
            except RuntimeError:  # the loop is closed: nobody waits any more
                return


class SinkWorker:
    """Drives one sink for a bus: reads the sink's stream in batches, hands them to the sink."""

    __slots__ = (
        "abandoned",
        "errors",
        "handled",
        "is_async",
        "last_error",
        "last_error_at",
        "name",
        "own",
        "report",
        "sink",
        "stream",
        "task",
        "thread",
    )

    def __init__(
        self,
        sink: EventSink,
        stream: EventStream,
        report: Callable[[SinkWorker, SinkFailure], None],
    ) -> None:
        self.sink = sink
        self.name: str = getattr(sink, "name", None) or type(sink).__name__
        self.stream = stream
        self.report = report
        self.is_async = inspect.iscoroutinefunction(sink.handle)
        self.errors = 0
        self.handled = 0
        self.last_error: str | None = None
        self.last_error_at: datetime | None = None
        self.abandoned = False
        self.own: set[int] = set()  # ids of the failure events this worker published
        self.task: asyncio.Task[None] | None = None
        self.thread: _SinkThread | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.stream._pressing = True
        if not self.is_async:
            self.thread = _SinkThread(self.name, loop)
        self.task = loop.create_task(self._run(), name=f"weavegraph-sink-{self.name}")

    async def _run(self) -> None:
        try:
            while (batch := await self.stream._next_batch()) is not None:
                if self.own:  # never feed a sink the reports of its own failures
                    batch = [event for event in batch if event.id not in self.own]
                    self.own = {i for i in self.own if i > self.stream._cursor}
                self.handled += len(batch)
                await self._deliver(batch)
            await self._close()
        except Exception as exc:  # a bug in a sink's plumbing must not go unnoticed
            self.report(self, (None, f"sink worker failed: {_describe(exc)}", utc_now()))
        finally:
            await self.stream.aclose()
            if self.thread is not None:
                self.thread.stop()

    async def _deliver(self, batch: list[Event]) -> None:
        if self.thread is not None:
            job = functools.partial(_handle_all, self.sink.handle, batch)
            for failure in await self.thread.run(job):
                self.report(self, failure)
            return
        handle = self.sink.handle
        for event in batch:
            try:
                result = handle(event)
                if result is not None:
                    await result
            except Exception as exc:
                self.report(self, (event, _describe(exc), utc_now()))

    async def _close(self) -> None:
        close: Callable[[], object] | None = getattr(self.sink, "close", None)
        if close is None:
            return
        if self.thread is not None and not inspect.iscoroutinefunction(close):
            failures = await self.thread.run(functools.partial(_close_sink, close))
        else:
            try:
                result = close()
                if inspect.isawaitable(result):
                    await result
                failures = []
            except Exception as exc:
                failures = [(None, f"close() failed: {_describe(exc)}", utc_now())]
        for failure in failures:
            self.report(self, failure)


# -- shipped sinks ---------------------------------------------------------------------------

_COLORS = {"node": "\x1b[36m", "diagnostic": "\x1b[33m", "llm": "\x1b[35m"}
_DIM, _BOLD, _RESET = "\x1b[2m", "\x1b[1m", "\x1b[0m"


def render_event(event: Event, *, color: bool = False) -> str:
    """One readable line for an event, e.g. ``03:04:05.006 node [greet@1] greeting: Hi``.

    The time is UTC; newlines in the message are shown as ``\\n`` so every event takes one line.
    """
    clock = event.timestamp.strftime("%H:%M:%S.%f")[:-3]
    who = event.node_id or event.stream_id
    if who is not None and event.node_id is not None and event.step is not None:
        who = f"{who}@{event.step}"
    where = f" [{who}]" if who is not None else ""
    message = event.message.replace("\n", "\\n")
    if not color:
        return f"{clock} {event.kind}{where} {event.scope}: {message}"
    tint = _COLORS.get(event.kind, "")
    return (
        f"{_DIM}{clock}{_RESET} {tint}{event.kind}{_RESET}{where} "
        f"{_BOLD}{event.scope}{_RESET}: {message}"
    )


class StdOutSink:
    """Writes one readable line per event to a text stream (default: `sys.stdout`).

    Args:
        stream: where to write; `sys.stdout` as it is when each event arrives if None.
        color: ANSI colours; by default only when the stream is a terminal.
    """

    def __init__(
        self, stream: TextIO | None = None, *, color: bool | None = None, name: str = "stdout"
    ) -> None:
        self.name = name
        self._stream = stream
        self._color = color

    def handle(self, event: Event) -> None:
        """Write the event's line."""
        out = self._stream if self._stream is not None else sys.stdout
        color = self._color
        if color is None:
            color = self._color = out.isatty()
        out.write(render_event(event, color=color) + "\n")

    def close(self) -> None:
        """Flush the stream (it is not closed: the sink did not open it)."""
        (self._stream if self._stream is not None else sys.stdout).flush()


class MemorySink:
    """Keeps every event in memory, in order; for tests and small tools. Lossless."""

    lossless = True

    def __init__(self, *, name: str = "memory") -> None:
        self.name = name
        self._events: list[Event] = []

    def handle(self, event: Event) -> None:
        """Keep the event."""
        self._events.append(event)

    def snapshot(self) -> list[Event]:
        """The events kept so far (a copy; safe to call while the sink is receiving)."""
        return list(self._events)

    def clear(self) -> None:
        """Forget the events kept so far."""
        self._events.clear()


class ChannelSink:
    """Puts every event into a queue: an `asyncio.Queue` or a thread-safe `queue.Queue`. Lossless.

    A full bounded queue holds this sink back (and only this sink) until there is room.
    """

    lossless = True

    def __init__(
        self, channel: asyncio.Queue[Event] | queue.Queue[Event], *, name: str = "channel"
    ) -> None:
        self.name = name
        self._channel = channel

    async def handle(self, event: Event) -> None:
        """Put the event into the queue, waiting for room if it is full."""
        channel = self._channel
        if isinstance(channel, asyncio.Queue):
            await channel.put(event)
            return
        try:
            channel.put_nowait(event)
        except queue.Full:  # wait in a thread, not on the event loop
            await asyncio.to_thread(channel.put, event)


class JsonLinesSink:
    """Appends one JSON object per line (`event.to_json()`), flushed after each event. Lossless.

    Args:
        target: a path (the file is opened now, closed when the bus stops) or an open text stream
            (flushed, not closed, when the bus stops).
        append: for a path: add to the file (True) or replace it (False).
    """

    lossless = True

    def __init__(
        self,
        target: str | os.PathLike[str] | TextIO,
        *,
        append: bool = True,
        name: str = "jsonl",
    ) -> None:
        self.name = name
        if isinstance(target, str | os.PathLike):
            # Opened now so a bad path fails at construction; the bus closes it at stop().
            self._file: TextIO = open(target, "a" if append else "w", encoding="utf-8")  # noqa: SIM115
            self._owned = True
        else:
            self._file = target
            self._owned = False

    def handle(self, event: Event) -> None:
        """Write the event as one line of JSON and flush it."""
        self._file.write(event.to_json() + "\n")
        self._file.flush()

    def close(self) -> None:
        """Close the file if the sink opened it, else flush the stream."""
        if self._owned:
            self._file.close()
        else:
            self._file.flush()


class LoggingSink:
    """Logs each event as one line (see `render_event`) on a stdlib logger.

    Args:
        logger: the logger; `logging.getLogger("weavegraph.events")` if None.
        level: the level of every record. Records carry the event as `record.weavegraph_event`.
    """

    def __init__(
        self,
        logger: logging.Logger | None = None,
        level: int = logging.INFO,
        *,
        name: str = "logging",
    ) -> None:
        self.name = name
        self._logger = logger if logger is not None else logging.getLogger("weavegraph.events")
        self._level = level

    def handle(self, event: Event) -> None:
        """Log the event."""
        if self._logger.isEnabledFor(self._level):
            self._logger.log(
                self._level, "%s", render_event(event), extra={"weavegraph_event": event}
            )
