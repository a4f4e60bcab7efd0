"""The event bus: the hub, its sinks (each driven by its own worker), diagnostics and health."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from ._errors import EventBusError
from ._event import DIAGNOSTIC_SCOPE, Event
from ._hub import Hub
from ._sinks import EventSink, SinkFailure, SinkWorker
from ._stream import DiagnosticsStream, EventStream
from ._time import utc_now

__all__ = [
    "BusMetrics",
    "DiagnosticsConfig",
    "EventBus",
    "EventBusConfig",
    "SinkDiagnostic",
    "SinkHealth",
]

_logger = logging.getLogger("weavegraph.event_bus")


@dataclass(frozen=True, slots=True)
class DiagnosticsConfig:
    """How sink failures are reported.

    Args:
        enabled: report failures on `EventBus.diagnostics()` streams.
        buffer_capacity: undelivered diagnostics each stream holds; the bus capacity if None.
        emit_to_events: also publish each failure as a diagnostic Event (scope DIAGNOSTIC_SCOPE).
            It never reaches the sink that failed, and failures on such events are not
            published again, so failing sinks cannot feed each other.
    """

    enabled: bool = True
    buffer_capacity: int | None = None
    emit_to_events: bool = False


_DEFAULT_DIAGNOSTICS = DiagnosticsConfig()


@dataclass(frozen=True, slots=True)
class EventBusConfig:
    """Everything needed to build an EventBus (see `EventBus.from_config`)."""

    capacity: int = 1024
    sinks: tuple[EventSink, ...] = ()
    diagnostics: DiagnosticsConfig = field(default_factory=DiagnosticsConfig)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sinks", tuple(self.sinks))


@dataclass(frozen=True, slots=True)
class SinkDiagnostic:
    """One failure of a sink: `occurrence` counts its failures (1, 2, 3 …)."""

    when: datetime
    sink: str
    occurrence: int
    error: str
    event_id: int | None = None


@dataclass(frozen=True, slots=True)
class SinkHealth:
    """The health of one sink: its failures so far, and whether stop() had to abandon it."""

    sink: str
    error_count: int = 0
    last_error: str | None = None
    last_error_at: datetime | None = None
    handled: int = 0
    abandoned: bool = False


@dataclass(frozen=True, slots=True)
class BusMetrics:
    """Counters of a bus.

    Attributes:
        published: events published so far (the last id given out).
        dropped: events skipped by lagging streams and sinks, added up.
        subscribers: open streams (sinks not included).
        sinks: sinks attached.
        retained: events the bus holds for readers (at most `capacity`, unless a lossless
            reader lags).
        capacity: the ring capacity.
    """

    published: int
    dropped: int
    subscribers: int
    sinks: int
    retained: int
    capacity: int


class EventBus:
    """Publishes events to streams and sinks through one bounded ring (see `weavegraph.events`).

    Lifecycle: publishing works from creation on, from any thread. Sinks run between `start()`
    and `stop()` (or `async with bus:`); what is published before `start()` waits in the ring
    and reaches them once started. `stop()` refuses new events (`publish` then raises
    EventBusError), lets every sink handle everything published before, closes the sinks and
    the diagnostics streams; streams end once they have delivered what was published before.
    A stopped bus cannot be started again. Apart from `publish`, use a bus from the thread of
    its event loop.

    Args:
        sinks: sinks that see every event from the first one published.
        capacity: how many events a plain stream or sink may fall behind before it drops the
            oldest ones.
        diagnostics: how sink failures are reported. `sink_health()` counts failures even when
            diagnostics are disabled.
        first_id: the id of the first event. A run resumed in a new process continues the
            ids of its durable event log with ``first_id=log.last_id(session) + 1``.
    """

    def __init__(
        self,
        sinks: Iterable[EventSink] = (),
        *,
        capacity: int = 1024,
        diagnostics: DiagnosticsConfig = _DEFAULT_DIAGNOSTICS,
        first_id: int = 1,
    ) -> None:
        size = diagnostics.buffer_capacity
        if size is not None and (not isinstance(size, int) or size < 1):
            raise ValueError(f"diagnostics buffer_capacity must be a positive int; got {size!r}")
        self._hub = Hub(capacity, first_id)
        self._first_id = first_id
        self.publish = self._hub.publish
        self._config = diagnostics
        self._workers: list[SinkWorker] = []
        self._diagnostics: list[DiagnosticsStream] = []
        self._loop: asyncio.AbstractEventLoop | None = None  # set by start(): sinks are running
        self._stopper: asyncio.Task[None] | None = None
        for sink in sinks:
            self.add_sink(sink)

    @classmethod
    def from_config(cls, config: EventBusConfig) -> EventBus:
        """A bus built from an EventBusConfig."""
        return cls(config.sinks, capacity=config.capacity, diagnostics=config.diagnostics)

    @property
    def closed(self) -> bool:
        """True once stop() was called: publishing raises EventBusError."""
        return self._hub.closed

    @property
    def last_id(self) -> int:
        """The id of the last event published (``first_id - 1`` before any)."""
        return self._hub.last_id

    @property
    def capacity(self) -> int:
        """The ring capacity."""
        return self._hub.capacity

    # -- publishing --------------------------------------------------------------------------

    publish: Callable[[Event], Event]
    """``publish(event) -> event``: give `event` the next id (1, 2, 3 …), hand it to every
    reader, and return it. Never blocks; safe to call from any thread and before `start()`.
    Raises EventBusError once the bus is stopped. (The hub's own method, bound in `__init__`:
    the hottest call of a run goes there directly.)"""

    async def publish_async(self, event: Event) -> Event:
        """Publish, first waiting while a lossless reader is `capacity` events behind."""
        return await self._hub.publish_async(event)

    # -- readers -----------------------------------------------------------------------------

    def subscribe(
        self,
        *,
        after: int | None = None,
        kinds: str | Iterable[str] | None = None,
        nodes: str | Iterable[str] | None = None,
        scopes: str | Iterable[str] | None = None,
        session_id: str | None = None,
        until_stream_end: bool = True,
        lossless: bool = False,
    ) -> EventStream:
        """A new stream of the events published from now on (or after the id `after`).

        Args:
            after: replay the retained events with larger ids first (an SSE `Last-Event-ID`);
                if some of them are gone, a GAP_SCOPE diagnostic says which.
            kinds, nodes, scopes: deliver only events of these kinds, node ids and scopes.
            session_id: deliver only the events of this session (run).
            until_stream_end: end right after the first STREAM_END diagnostic that passes the
                filters. Every filter but `session_id` lets STREAM_END through, so a stream with
                `session_id` ends with its own run, not with another run on the same bus.
            lossless: never drop: the bus keeps what this stream has not read, and
                `publish_async` waits for it when it is `capacity` behind.
        """
        if asyncio._get_running_loop() is not None:
            self._hub.bind()
        return EventStream(
            self._hub,
            after=after,
            kinds=kinds,
            nodes=nodes,
            scopes=scopes,
            session_id=session_id,
            until_stream_end=until_stream_end,
            lossless=lossless,
        )

    def add_sink(self, sink: EventSink) -> None:
        """Attach a sink; raises EventBusError once the bus is stopped.

        A sink added before `start()` sees every retained event; one added later, only new ones.
        """
        if self.closed:
            raise EventBusError("cannot add a sink to a stopped event bus")
        stream = EventStream(
            self._hub,
            after=None if self._loop is not None else self._first_id - 1,
            until_stream_end=False,
            lossless=bool(getattr(sink, "lossless", False)),
            pressing=False,
        )
        worker = SinkWorker(sink, stream, self._report)
        self._workers.append(worker)
        if self._loop is not None:
            worker.start(self._loop)

    def continue_ids(self, last_id: int) -> None:
        """Number the next event ``last_id + 1``, continuing the ids of an earlier bus.

        A run resumed in a new process calls this with its event log's last id, so its new
        events follow the old ones instead of reusing their ids. Only possible on a fresh bus:
        before `start()`, before the first event and before any subscriber (sinks are fine).

        Raises:
            EventBusError: the bus was already started, published or subscribed to.
        """
        hub = self._hub
        fresh = hub.last_id == self._first_id - 1 and hub.readers == len(self._workers)
        if self._loop is not None or not fresh:
            raise EventBusError(
                "continue_ids() must come before start(), the first event and any subscriber"
            )
        if last_id < self._first_id:
            return
        self._hub = Hub(hub.capacity, last_id + 1)
        self._first_id = last_id + 1
        self.publish = self._hub.publish
        for worker in self._workers:
            worker.stream = EventStream(
                self._hub,
                after=last_id,
                until_stream_end=False,
                lossless=worker.stream._lossless,
                pressing=False,
            )

    def diagnostics(self) -> DiagnosticsStream:
        """A stream of the sink failures from now on; already closed if diagnostics are off."""
        config = self._config
        stream = DiagnosticsStream(
            config.buffer_capacity or self._hub.capacity,
            closed=not config.enabled or self._stopper is not None,
        )
        if not stream.closed:
            self._diagnostics.append(stream)
        return stream

    def sink_health(self) -> list[SinkHealth]:
        """The health of every sink, in the order they were added (healthy ones too)."""
        return [
            SinkHealth(w.name, w.errors, w.last_error, w.last_error_at, w.handled, w.abandoned)
            for w in self._workers
        ]

    def metrics(self) -> BusMetrics:
        """A snapshot of the bus's counters."""
        hub = self._hub
        open_sinks = sum(1 for worker in self._workers if not worker.stream.closed)
        return BusMetrics(
            published=hub.last_id,
            dropped=hub.dropped,
            subscribers=hub.readers - open_sinks,
            sinks=len(self._workers),
            retained=hub.retained(),
            capacity=hub.capacity,
        )

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the sinks' workers. Idempotent; raises EventBusError once stopped."""
        if self.closed:
            raise EventBusError("this event bus is stopped; create a new one to publish again")
        if self._loop is None:
            self._loop = self._hub.bind()
            for worker in self._workers:
                worker.start(self._loop)

    async def stop(self, *, timeout: float = 10.0) -> None:
        """Refuse new events, let every sink handle every event published before, and close.

        Sinks still busy after `timeout` seconds are abandoned (see `sink_health()`). Streams
        end once they have delivered what was published before. Idempotent; the shutdown goes
        on even if the caller is cancelled.
        """
        if self._stopper is None:
            loop = self._hub.bind()
            self._hub.close()
            self._stopper = loop.create_task(self._shutdown(timeout), name="weavegraph-bus-stop")
        await asyncio.shield(self._stopper)

    async def __aenter__(self) -> EventBus:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _shutdown(self, timeout: float) -> None:
        try:
            if self._loop is None:  # never started: drain what was published anyway
                self._loop = asyncio.get_running_loop()
                for worker in self._workers:
                    worker.start(self._loop)
            tasks = {worker.task: worker for worker in self._workers if worker.task is not None}
            if tasks:
                _, stalled = await asyncio.wait(tasks, timeout=timeout)
                for task in stalled:
                    self._abandon(tasks[task], timeout)
                if stalled:  # cancelled workers end at their next await
                    await asyncio.wait(stalled, timeout=timeout)
            for worker in self._workers:
                # A finished worker's thread has its stop sentinel: join() returns at once.
                if worker.thread is not None and not worker.abandoned:
                    worker.thread.thread.join()
        finally:
            for stream in self._diagnostics:
                stream._close()
            self._diagnostics.clear()

    def _abandon(self, worker: SinkWorker, timeout: float) -> None:
        assert worker.task is not None
        worker.task.cancel()
        worker.abandoned = True
        message = f"abandoned: still busy {timeout:g} s after stop() began"
        self._report(worker, (None, message, utc_now()))

    def _report(self, worker: SinkWorker, failure: SinkFailure) -> None:
        event, error, when = failure
        worker.errors += 1
        worker.last_error, worker.last_error_at = error, when
        level = logging.WARNING if worker.errors == 1 else logging.DEBUG
        _logger.log(level, "event sink %r failed (%d): %s", worker.name, worker.errors, error)
        config = self._config
        if not config.enabled:
            return
        diagnostic = SinkDiagnostic(
            when, worker.name, worker.errors, error, event.id if event is not None else None
        )
        self._diagnostics = [stream for stream in self._diagnostics if not stream._closed]
        for stream in self._diagnostics:
            stream._push(diagnostic)
        if (
            config.emit_to_events
            and event is not None
            and event.scope != DIAGNOSTIC_SCOPE  # a failure on a failure report stops here
            and not self.closed
        ):
            published = self._hub.publish(
                Event.diagnostic(
                    DIAGNOSTIC_SCOPE,
                    f"event sink {worker.name!r} failed on event {event.id}: {error}",
                    session_id=event.session_id,
                    metadata={
                        "sink": worker.name,
                        "occurrence": worker.errors,
                        "error": error,
                        "event_id": event.id,
                    },
                )
            )
            worker.own.add(published.id)
