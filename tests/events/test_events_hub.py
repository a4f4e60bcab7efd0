"""The broadcast ring: ids, lag and gaps, replay with `after`, threads, lossless retention."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque

import pytest

from weavegraph import EventBusError
from weavegraph.events import GAP_SCOPE, STREAM_END_SCOPE, Event, EventBus, EventStream


def node(i: int, *, session_id: str | None = None) -> Event:
    return Event.node("s", f"m{i}", session_id=session_id)


def end(session_id: str | None = None) -> Event:
    return Event.diagnostic(STREAM_END_SCOPE, "done", session_id=session_id)


def drain(stream: EventStream) -> list[Event]:
    out = []
    while (event := stream.try_recv()) is not None:
        out.append(event)
    return out


def ids(events: list[Event]) -> list[int]:
    return [e.id for e in events]


def gap_meta(event: Event) -> tuple[str, int, int, int]:
    meta = event.metadata
    return event.scope, meta["first_missed_id"], meta["last_missed_id"], meta["missed"]


async def test_publish_assigns_ids_and_returns_the_event() -> None:
    bus = EventBus()
    first = Event.node("s", "hello")
    assert first.id == 0
    assert bus.publish(first) is first
    assert [bus.publish(node(i)).id for i in range(3)] == [2, 3, 4]
    assert first.id == 1
    assert bus.metrics().published == 4
    await bus.stop()


async def test_publish_without_subscribers_is_fine_and_retains_up_to_capacity() -> None:
    bus = EventBus(capacity=3)
    for i in range(10):
        bus.publish(node(i))
    metrics = bus.metrics()
    assert (metrics.published, metrics.retained, metrics.dropped, metrics.subscribers) == (
        10,
        3,
        0,
        0,
    )
    await bus.stop()


async def test_capacity_two_stalled_and_interleaved_consumers_account_for_every_event(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="weavegraph.event_bus")
    bus = EventBus(capacity=2)
    stalled = bus.subscribe(until_stream_end=False)
    stepping = bus.subscribe(until_stream_end=False)
    stepped: list[Event] = []
    for i in range(1, 13):
        bus.publish(node(i))
        if i % 3 == 0:  # reads after every third event: misses one each time but the first
            stepped.extend(drain(stepping))
    await bus.stop()
    stalled_events = [e async for e in stalled]
    stepped.extend([e async for e in stepping])

    gap, *rest = stalled_events
    assert gap.id == 0
    assert gap.kind == "diagnostic"
    assert gap_meta(gap) == (GAP_SCOPE, 1, 10, 10)
    assert ids(rest) == [11, 12]
    assert stalled.dropped == 10
    assert len(rest) + stalled.dropped == 12

    delivered = [e for e in stepped if e.scope != GAP_SCOPE]
    gaps = [gap_meta(e) for e in stepped if e.scope == GAP_SCOPE]
    assert ids(delivered) == [2, 3, 5, 6, 8, 9, 11, 12]
    assert gaps == [
        (GAP_SCOPE, 1, 1, 1),
        (GAP_SCOPE, 4, 4, 1),
        (GAP_SCOPE, 7, 7, 1),
        (GAP_SCOPE, 10, 10, 1),
    ]
    assert len(delivered) + stepping.dropped == 12
    assert bus.metrics().dropped == 10 + 4

    warnings = [r for r in caplog.records if r.name == "weavegraph.event_bus"]
    assert [r.getMessage().split(":")[0] for r in warnings] == [
        "event stream lagged; dropped events"
    ] * 5
    assert [r.args for r in warnings] == [
        (1, 1, 1, 1),
        (1, 4, 4, 2),
        (1, 7, 7, 3),
        (1, 10, 10, 4),
        (10, 1, 10, 10),  # the stalled stream read once, after stop
    ]


async def test_gap_diagnostic_comes_first_and_carries_the_session_of_the_stream() -> None:
    bus = EventBus(capacity=4)
    stream = bus.subscribe(session_id="s1", until_stream_end=False)
    for i in range(10):
        bus.publish(node(i, session_id="s1"))
    first = await stream.recv()
    assert (first.id, first.session_id, first.message) == (
        0,
        "s1",
        "stream lagged: missed 6 events (ids 1..6)",
    )
    assert ids(drain(stream)) == [7, 8, 9, 10]
    await stream.aclose()
    await bus.stop()


async def test_subscribe_after_replays_the_retained_events_with_larger_ids() -> None:
    bus = EventBus(capacity=5)
    for i in range(8):
        bus.publish(node(i))
    assert ids(drain(bus.subscribe(after=5))) == [6, 7, 8]
    assert ids(drain(bus.subscribe(after=3))) == [4, 5, 6, 7, 8]
    assert drain(bus.subscribe(after=8)) == []
    assert drain(bus.subscribe()) == []

    old = drain(bus.subscribe(after=1))
    assert gap_meta(old[0]) == (GAP_SCOPE, 2, 3, 2)
    assert ids(old[1:]) == [4, 5, 6, 7, 8]
    fresh = drain(bus.subscribe(after=0))
    assert gap_meta(fresh[0]) == (GAP_SCOPE, 1, 3, 3)
    assert ids(fresh[1:]) == [4, 5, 6, 7, 8]
    await bus.stop()


async def test_subscribe_after_an_id_not_yet_published_starts_from_now() -> None:
    bus = EventBus()
    bus.publish(node(1))
    stream = bus.subscribe(after=99)
    bus.publish(node(2))
    assert ids(drain(stream)) == [2]
    await bus.stop()


@pytest.mark.parametrize("after", [-1, 1.5, "3"])
async def test_subscribe_after_must_be_an_event_id(after: object) -> None:
    bus = EventBus()
    with pytest.raises(ValueError, match="after must be an event id"):
        bus.subscribe(after=after)  # type: ignore[arg-type]
    await bus.stop()


@pytest.mark.parametrize("capacity", [0, -1, 2.0])
def test_capacity_must_be_a_positive_int(capacity: object) -> None:
    with pytest.raises(ValueError, match="capacity must be a positive int"):
        EventBus(capacity=capacity)  # type: ignore[arg-type]


async def test_lossless_stream_gets_every_event_from_a_producer_that_never_yields() -> None:
    bus = EventBus(capacity=1024)
    lossless = bus.subscribe(lossless=True)
    plain = bus.subscribe()
    for i in range(100_000):
        bus.publish(node(i))
    bus.publish(end())
    assert bus.metrics().retained == 100_001
    got = [e.id async for e in lossless]
    assert got == list(range(1, 100_002))
    assert lossless.dropped == 0
    assert bus.metrics().retained == 1024  # the ring shrinks back once the lossless reader read

    plain_events = [e async for e in plain]
    assert gap_meta(plain_events[0]) == (GAP_SCOPE, 1, 98_977, 98_977)
    assert ids(plain_events[1:]) == list(range(98_978, 100_002))
    assert plain.dropped == 98_977
    await bus.stop()


async def test_lossless_subscribe_after_an_id_older_than_the_ring_reports_the_gap() -> None:
    bus = EventBus(capacity=3)
    for i in range(6):
        bus.publish(node(i))
    stream = bus.subscribe(after=1, lossless=True)
    for i in range(10):
        bus.publish(node(i))
    events = drain(stream)
    assert gap_meta(events[0]) == (GAP_SCOPE, 2, 3, 2)
    assert ids(events[1:]) == list(range(4, 17))
    assert stream.dropped == 2
    await stream.aclose()
    await bus.stop()


async def test_closing_a_lagging_lossless_stream_releases_the_ring() -> None:
    bus = EventBus(capacity=4)
    stream = bus.subscribe(lossless=True)
    for i in range(20):
        bus.publish(node(i))
    assert bus.metrics().retained == 20
    await stream.aclose()
    assert bus.metrics().retained == 4
    await bus.stop()


async def test_publish_async_backpressure_keeps_the_ring_bounded() -> None:
    bus = EventBus(capacity=64)
    stream = bus.subscribe(lossless=True)
    published: list[int] = []

    async def produce() -> None:
        for i in range(5_000):
            published.append((await bus.publish_async(node(i))).id)
        await bus.publish_async(end())

    producer = asyncio.create_task(produce())
    await asyncio.sleep(0)  # publish_async only suspends when it must wait: it ran until blocked
    assert not producer.done()
    assert len(published) == 64
    assert bus.metrics().retained == 64

    seen: list[int] = []
    peak = 0
    async for event in stream:
        seen.append(event.id)
        peak = max(peak, bus.metrics().retained)
    await producer
    assert seen == list(range(1, 5_002))
    assert peak <= 64
    await bus.stop()


async def test_publish_async_without_lossless_readers_never_waits() -> None:
    bus = EventBus(capacity=2)
    bus.subscribe()
    for i in range(10):
        await bus.publish_async(node(i))
    assert bus.metrics().published == 10
    await bus.stop()


async def test_publish_async_is_released_when_the_bus_stops() -> None:
    bus = EventBus(capacity=2)
    bus.subscribe(lossless=True)
    for i in range(2):
        await bus.publish_async(node(i))
    blocked = asyncio.create_task(bus.publish_async(node(3)))
    await asyncio.sleep(0)
    assert not blocked.done()
    await bus.stop()
    with pytest.raises(EventBusError, match="stopped"):
        await blocked


async def test_closing_the_lagging_lossless_stream_releases_publish_async() -> None:
    bus = EventBus(capacity=2)
    stream = bus.subscribe(lossless=True)
    for i in range(2):
        await bus.publish_async(node(i))
    blocked = asyncio.create_task(bus.publish_async(node(3)))
    await asyncio.sleep(0)
    assert not blocked.done()
    await stream.aclose()
    assert (await blocked).id == 3
    await bus.stop()


async def test_four_threads_publishing_lose_nothing_and_every_reader_sees_id_order() -> None:
    bus = EventBus(capacity=1024)
    lossless = bus.subscribe(lossless=True)
    plain = bus.subscribe()  # reads concurrently; may lag, but never out of order
    start = threading.Barrier(4)
    returned: list[list[int]] = [[] for _ in range(4)]

    def produce(thread: int) -> None:
        start.wait()
        mine = returned[thread]
        for i in range(10_000):
            mine.append(bus.publish(Event.node("t", f"{thread}:{i}", node_id=str(thread))).id)

    threads = [threading.Thread(target=produce, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()

    async def read(stream: EventStream) -> list[Event]:
        return [e async for e in stream]

    readers = [asyncio.create_task(read(lossless)), asyncio.create_task(read(plain))]

    def join_all() -> None:
        for thread in threads:
            thread.join()

    await asyncio.to_thread(join_all)
    bus.publish(end())
    got, plain_got = await asyncio.gather(*readers)

    all_ids = sorted(i for mine in returned for i in mine)
    assert all_ids == list(range(1, 40_001))
    assert ids(got) == list(range(1, 40_002))
    for t in range(4):
        mine = [e.message for e in got if e.node_id == str(t)]
        assert mine == [f"{t}:{i}" for i in range(10_000)]
        assert [e.id for e in got if e.node_id == str(t)] == returned[t]
    plain_ids = [e.id for e in plain_got if e.scope != GAP_SCOPE]
    assert plain_ids == sorted(plain_ids)
    assert plain_ids[-1] == 40_001
    assert len(plain_ids) + plain.dropped == 40_001
    await bus.stop()


async def test_events_published_from_another_thread_wake_an_idle_reader() -> None:
    bus = EventBus()
    stream = bus.subscribe()
    waiting = asyncio.create_task(stream.recv())
    await asyncio.sleep(0)
    event = await asyncio.to_thread(bus.publish, node(1))
    assert event.id == 1
    assert await waiting is event
    await bus.stop()


def test_publishing_without_an_event_loop_then_reading_inside_one() -> None:
    bus = EventBus(capacity=8)
    assert [bus.publish(node(i)).id for i in range(3)] == [1, 2, 3]

    async def main() -> list[int]:
        stream = bus.subscribe(after=0)
        bus.publish(end())
        got = [e.id async for e in stream]
        await bus.stop()
        return got

    assert asyncio.run(main()) == [1, 2, 3, 4]


def test_blocking_read_of_a_bus_that_never_had_a_loop() -> None:
    bus = EventBus()
    stream = bus.subscribe()
    bus.publish(node(1))
    bus._hub.close()  # what stop() does, without a loop
    bus._hub.close()
    assert ids(list(stream.blocking())) == [1]
    assert stream.closed


async def test_publish_after_stop_raises_and_the_loop_thread_and_threads_agree() -> None:
    bus = EventBus()
    await bus.stop()
    assert bus.closed
    with pytest.raises(EventBusError, match="the event bus is stopped"):
        bus.publish(node(1))
    with pytest.raises(EventBusError, match="the event bus is stopped"):
        await asyncio.to_thread(bus.publish, node(2))
    with pytest.raises(EventBusError, match="the event bus is stopped"):
        await bus.publish_async(node(3))
    assert bus.metrics().published == 0


def test_publishing_from_a_thread_after_the_loop_closed_raises() -> None:
    bus = EventBus()

    async def bind() -> None:
        bus.subscribe()

    asyncio.run(bind())  # the bus stays bound to a loop that is now closed
    result: list[BaseException] = []

    def publish() -> None:
        try:
            bus.publish(node(1))
        except EventBusError as exc:
            result.append(exc)

    thread = threading.Thread(target=publish)
    thread.start()
    thread.join()
    assert "is closed" in str(result[0])


class _GatedInbox(deque[Event]):
    """An inbox whose first append waits: a thread holds its id while the loop publishes."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.release = threading.Event()

    def append(self, event: Event) -> None:
        if not self.entered.is_set():
            self.entered.set()
            self.release.wait()
        super().append(event)


@pytest.mark.parametrize("scope", ["t", STREAM_END_SCOPE])
async def test_an_id_taken_by_a_thread_holds_back_later_ids_until_it_is_placed(
    scope: str,
) -> None:
    bus = EventBus()
    stream = bus.subscribe(until_stream_end=False)
    inbox = _GatedInbox()
    bus._hub._inbox = inbox
    from_thread = Event.diagnostic(scope, "from thread")
    publishing = asyncio.create_task(asyncio.to_thread(bus.publish, from_thread))
    await asyncio.to_thread(inbox.entered.wait)  # the thread has id 1, not yet in the ring
    later = [bus.publish(node(i)) for i in range(2)]
    assert ids(later) == [2, 3]
    assert stream.try_recv() is None  # id 1 is a hole: nothing after it is readable yet
    assert bus.metrics().published == 0
    inbox.release.set()
    assert (await publishing).id == 1
    assert ids([await stream.recv() for _ in range(3)]) == [1, 2, 3]
    assert bus._hub.end_after(0) is (scope == STREAM_END_SCOPE)
    await bus.stop()


async def test_stream_ends_far_behind_are_forgotten_with_the_events() -> None:
    bus = EventBus(capacity=2)
    bus.publish(end())
    for i in range(10):
        bus.publish(node(i))
    assert not bus._hub.end_after(0)
    await bus.stop()


async def test_a_filter_that_matches_nothing_in_a_batch_keeps_waiting() -> None:
    bus = EventBus()
    stream = bus.subscribe(session_id="s1")
    bus.publish(node(1, session_id="s2"))
    bus.publish(end("s2"))  # another run's end: not this stream's
    assert stream.try_recv() is None
    assert not stream.closed
    bus.publish(end("s1"))
    assert (await stream.recv()).message == "done"
    assert stream.closed
    await bus.stop()


def test_reading_a_stream_on_another_loop_than_its_bus_is_refused() -> None:
    async def make() -> tuple[EventBus, EventStream]:
        bus = EventBus()
        return bus, bus.subscribe()

    _bus, stream = asyncio.run(make())

    async def read() -> None:
        with pytest.raises(EventBusError, match="on the event loop of their bus"):
            await stream.recv()

    asyncio.run(read())


def test_a_bus_closed_before_it_had_a_loop_stays_closed() -> None:
    bus = EventBus()
    bus._hub.close()

    async def main() -> None:
        bus.subscribe()  # binds the hub to this loop
        with pytest.raises(EventBusError, match="stopped"):
            bus.publish(node(1))

    asyncio.run(main())


async def test_cancelling_one_waiting_reader_leaves_the_others_waiting() -> None:
    bus = EventBus()
    idle, cancelled, waiting = bus.subscribe(), bus.subscribe(), bus.subscribe()
    for _ in range(5):
        assert await idle.next_timeout(0.001) is None
    reading = asyncio.create_task(cancelled.recv())
    receiving = asyncio.create_task(waiting.recv())
    await asyncio.sleep(0)
    reading.cancel()
    await asyncio.gather(reading, return_exceptions=True)
    bus.publish(node(1))  # cancelling one reader does not cancel the others' wake-up
    assert (await receiving).message == "m1"
    assert (await cancelled.recv()).message == "m1"  # and the cancelled one lost nothing
    assert (await idle.recv()).message == "m1"
    await bus.stop()


async def test_a_reader_cancelled_before_a_publish_loses_nothing() -> None:
    bus = EventBus()
    stream = bus.subscribe()
    reading = asyncio.create_task(stream.recv())
    await asyncio.sleep(0)
    reading.cancel()
    bus.publish(node(1))
    await asyncio.gather(reading, return_exceptions=True)
    assert reading.cancelled()
    assert (await stream.recv()).message == "m1"
    await bus.stop()


async def test_session_and_scope_filters_combine() -> None:
    bus = EventBus()
    stream = bus.subscribe(session_id="s1", scopes="keep")
    for session, scope in [("s1", "keep"), ("s2", "keep"), ("s1", "drop"), ("s1", "keep")]:
        bus.publish(Event.node(scope, f"{session}/{scope}", session_id=session))
    bus.publish(end("s2"))
    bus.publish(end("s1"))
    got = [event.message async for event in stream]
    assert got == ["s1/keep", "s1/keep", "done"]
    await bus.stop()
