"""EventStream: the ways to consume it, its filters, and where it ends."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator

import pytest

from weavegraph import EventBusError
from weavegraph.events import (
    DIAGNOSTIC_SCOPE,
    INVOCATION_END_SCOPE,
    STREAM_END_SCOPE,
    Event,
    EventBus,
    EventStream,
    MemorySink,
    StreamClosedError,
)


def end(session_id: str | None = None) -> Event:
    return Event.diagnostic(STREAM_END_SCOPE, "done", session_id=session_id)


def labels(events: list[Event]) -> list[str]:
    return [e.message for e in events]


@pytest.fixture
async def bus() -> AsyncIterator[EventBus]:
    bus = EventBus()
    yield bus
    await bus.stop()


def mixed_run(bus: EventBus) -> None:
    """Two sessions' events, interleaved, each ending with its own STREAM_END."""
    bus.publish(Event.node("greeting", "a1", node_id="a", step=1, session_id="s1"))
    bus.publish(Event.node("greeting", "b1", node_id="b", step=1, session_id="s2"))
    bus.publish(Event.llm("tok", stream_id="x", node_id="a", session_id="s1"))
    bus.publish(Event.diagnostic(DIAGNOSTIC_SCOPE, "d1", session_id="s1"))
    bus.publish(Event.node("progress", "a2", node_id="a", step=2, session_id="s1"))
    bus.publish(Event.diagnostic(INVOCATION_END_SCOPE, "inv", session_id="s2"))
    bus.publish(Event.diagnostic(STREAM_END_SCOPE, "end-s2", session_id="s2"))
    bus.publish(Event.node("greeting", "b2", node_id="b", step=2, session_id="s2"))
    bus.publish(Event.diagnostic(STREAM_END_SCOPE, "end-s1", session_id="s1"))
    bus.publish(Event.node("greeting", "late", node_id="a", step=3, session_id="s1"))


async def collect(stream: EventStream) -> list[str]:
    return labels([e async for e in stream])


async def test_unfiltered_stream_ends_at_the_first_stream_end(bus: EventBus) -> None:
    stream = bus.subscribe()
    mixed_run(bus)
    assert await collect(stream) == ["a1", "b1", "tok", "d1", "a2", "inv", "end-s2"]
    assert stream.closed
    with pytest.raises(StreamClosedError):
        await stream.recv()
    assert stream.try_recv() is None
    assert await stream.next_timeout(1) is None


async def test_session_filter_follows_one_run_and_ends_with_its_own_stream_end(
    bus: EventBus,
) -> None:
    s1, s2 = bus.subscribe(session_id="s1"), bus.subscribe(session_id="s2")
    mixed_run(bus)
    assert await collect(s1) == ["a1", "tok", "d1", "a2", "end-s1"]
    assert await collect(s2) == ["b1", "inv", "end-s2"]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"kinds": ["node"]}, ["a1", "b1", "a2", "end-s2"]),
        ({"kinds": "llm"}, ["tok", "end-s2"]),
        ({"kinds": {"diagnostic"}}, ["d1", "inv", "end-s2"]),
        ({"nodes": ["b"]}, ["b1", "end-s2"]),
        ({"nodes": "a"}, ["a1", "tok", "a2", "end-s2"]),
        ({"scopes": ["progress", "greeting"]}, ["a1", "b1", "a2", "end-s2"]),
        ({"scopes": ["greeting"], "nodes": ["a"]}, ["a1", "end-s2"]),
        ({"kinds": ["node"], "session_id": "s1"}, ["a1", "a2", "end-s1"]),
        ({"nodes": ["b"], "session_id": "s1"}, ["end-s1"]),
    ],
)
async def test_filters_are_exact_and_let_the_stream_end_through(
    bus: EventBus, filters: dict[str, object], expected: list[str]
) -> None:
    stream = bus.subscribe(**filters)  # type: ignore[arg-type]
    mixed_run(bus)
    assert await collect(stream) == expected


async def test_until_stream_end_false_keeps_a_monitor_open_until_the_bus_stops(
    bus: EventBus,
) -> None:
    monitor = bus.subscribe(until_stream_end=False)
    scoped = bus.subscribe(until_stream_end=False, scopes=["greeting"])
    mixed_run(bus)
    await bus.stop()
    assert await collect(monitor) == [
        "a1",
        "b1",
        "tok",
        "d1",
        "a2",
        "inv",
        "end-s2",
        "b2",
        "end-s1",
        "late",
    ]
    assert await collect(scoped) == ["a1", "b1", "end-s2", "b2", "end-s1", "late"]


async def test_unknown_kind_is_refused(bus: EventBus) -> None:
    with pytest.raises(ValueError, match="unknown event kinds: nodes"):
        bus.subscribe(kinds=["nodes"])


async def test_recv_try_recv_and_next_timeout(bus: EventBus) -> None:
    stream = bus.subscribe()
    assert stream.try_recv() is None
    assert await stream.next_timeout(0.01) is None
    first = bus.publish(Event.node("s", "1"))
    bus.publish(Event.node("s", "2"))
    bus.publish(Event.node("s", "3"))
    assert await stream.recv() is first
    assert (await stream.next_timeout(5)).message == "2"  # type: ignore[union-attr]
    assert stream.try_recv().message == "3"  # type: ignore[union-attr]
    waiting = asyncio.create_task(stream.next_timeout(5))
    await asyncio.sleep(0)
    fourth = bus.publish(Event.node("s", "4"))
    assert await waiting is fourth
    assert stream.dropped == 0


async def test_next_timeout_returns_an_event_that_is_already_buffered(bus: EventBus) -> None:
    stream = bus.subscribe()
    bus.publish(Event.node("s", "1"))
    bus.publish(Event.node("s", "2"))
    assert stream.try_recv().message == "1"  # type: ignore[union-attr]
    assert (await stream.next_timeout(0)).message == "2"  # type: ignore[union-attr]


async def test_a_cancelled_reader_does_not_disturb_the_others(bus: EventBus) -> None:
    one, two = bus.subscribe(), bus.subscribe()
    cancelled = asyncio.create_task(one.recv())
    waiting = asyncio.create_task(two.recv())
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    event = bus.publish(Event.node("s", "x"))
    assert await waiting is event
    assert await one.recv() is event  # nothing was lost by the cancelled read


async def test_aclose_is_idempotent_and_async_with_closes(bus: EventBus) -> None:
    async with bus.subscribe() as stream:
        bus.publish(Event.node("s", "1"))
        assert bus.metrics().subscribers == 1
    assert stream.closed
    assert bus.metrics().subscribers == 0
    await stream.aclose()
    await stream.aclose()
    assert bus.metrics().subscribers == 0
    assert [e async for e in stream] == []
    with pytest.raises(StreamClosedError, match="ended"):
        await stream.recv()


async def test_the_bus_stopping_ends_streams_after_what_was_published(bus: EventBus) -> None:
    stream = bus.subscribe(until_stream_end=False)
    waiting = asyncio.create_task(stream.recv())
    await asyncio.sleep(0)
    bus.publish(Event.node("s", "last"))
    await bus.stop()
    assert (await waiting).message == "last"
    assert not stream.closed or stream.try_recv() is None
    with pytest.raises(StreamClosedError):
        await stream.recv()
    assert stream.closed


async def test_try_recv_notices_that_a_stopped_bus_is_exhausted(bus: EventBus) -> None:
    stream = bus.subscribe()
    await bus.stop()
    assert not stream.closed
    assert stream.try_recv() is None
    assert stream.closed


async def test_blocking_from_a_worker_thread_while_the_loop_runs_here(bus: EventBus) -> None:
    stream = bus.subscribe()
    reader = asyncio.create_task(asyncio.to_thread(lambda: [e.id for e in stream.blocking()]))
    for i in range(1_000):
        bus.publish(Event.node("s", str(i)))
        if i % 100 == 0:
            await asyncio.sleep(0)
    bus.publish(end())
    assert await reader == list(range(1, 1_002))


async def test_blocking_on_the_loop_thread_is_refused(bus: EventBus) -> None:
    stream = bus.subscribe()
    with pytest.raises(EventBusError, match="would block the event loop"):
        stream.blocking()


async def test_breaking_out_of_blocking_keeps_the_rest_for_the_next_read(bus: EventBus) -> None:
    stream = bus.subscribe()
    for i in range(5):
        bus.publish(Event.node("s", str(i)))

    def first_two() -> list[str]:
        out = []
        iterator: Iterator[Event] = stream.blocking()
        for event in iterator:
            out.append(event.message)
            if len(out) == 2:
                break
        return out

    assert await asyncio.to_thread(first_two) == ["0", "1"]
    assert [stream.try_recv().message for _ in range(3)] == ["2", "3", "4"]  # type: ignore[union-attr]


def test_blocking_in_sync_code_while_the_loop_runs_in_another_thread() -> None:
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever)
    runner.start()
    try:

        async def make() -> tuple[EventBus, EventStream]:
            bus = EventBus()
            return bus, bus.subscribe()

        bus, stream = asyncio.run_coroutine_threadsafe(make(), loop).result()

        async def produce() -> None:
            for i in range(300):
                bus.publish(Event.node("s", str(i)))
                if i % 50 == 0:
                    await asyncio.sleep(0)
            bus.publish(end())

        producing = asyncio.run_coroutine_threadsafe(produce(), loop)
        got = [e.message for e in stream.blocking()]
        producing.result()
        asyncio.run_coroutine_threadsafe(bus.stop(), loop).result()
    finally:
        loop.call_soon_threadsafe(loop.stop)
        runner.join()
        loop.close()
    assert got == [str(i) for i in range(300)] + ["done"]


def test_blocking_waits_for_the_bus_to_get_a_loop() -> None:
    bus = EventBus()
    stream = bus.subscribe()  # no loop yet
    bus.publish(Event.node("s", "early"))
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.extend(e.message for e in stream.blocking()))
    reader.start()

    async def main() -> None:
        await bus.start()  # binds the bus to this loop; the reader starts waiting on it
        bus.publish(end())
        await asyncio.to_thread(reader.join)
        await bus.stop()

    asyncio.run(main())
    assert got == ["early", "done"]


async def test_four_consumers_and_three_sinks_each_see_100k_events_in_order() -> None:
    n = 100_000
    seen_async: list[int] = []

    class AsyncSink:
        name = "async"

        async def handle(self, event: Event) -> None:
            seen_async.append(event.id)

    class PlainSink:
        name = "plain"

        def __init__(self) -> None:
            self.ids: list[int] = []

        def handle(self, event: Event) -> None:
            self.ids.append(event.id)

    memory, plain = MemorySink(), PlainSink()
    bus = EventBus([memory, plain, AsyncSink()], capacity=n + 1)
    await bus.start()
    streams = [bus.subscribe() for _ in range(4)]

    async def consume(stream: EventStream) -> list[int]:
        return [event.id async for event in stream]

    consumers = [asyncio.create_task(consume(s)) for s in streams]
    for i in range(n):
        bus.publish(Event.node("bench", "x", node_id="n", step=i))
        if i % 256 == 255:
            await asyncio.sleep(0)
    bus.publish(end())
    results = await asyncio.gather(*consumers)
    await bus.stop()

    expected = list(range(1, n + 2))
    for got in results:
        assert got == expected
    assert [e.id for e in memory.snapshot()] == expected
    assert plain.ids == expected
    assert seen_async == expected
    assert bus.metrics().dropped == 0
    assert all(s.dropped == 0 for s in streams)


async def test_breaking_out_of_async_for_keeps_the_rest_and_anext_works(bus: EventBus) -> None:
    stream = bus.subscribe()
    for i in range(4):
        bus.publish(Event.node("s", str(i)))
    async for event in stream:
        assert event.message == "0"
        break
    assert (await anext(stream)).message == "1"
    rest = []
    async for event in stream:
        rest.append(event.message)
        if event.message == "3":
            break
    assert rest == ["2", "3"]
    waiting = asyncio.create_task(anext(stream))
    await asyncio.sleep(0)
    fourth = bus.publish(Event.node("s", "4"))
    assert await waiting is fourth
    bus.publish(end())
    assert [e.message async for e in stream] == ["done"]
    with pytest.raises(StopAsyncIteration):
        await anext(stream)
