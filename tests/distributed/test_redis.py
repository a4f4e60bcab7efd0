"""Events across processes on Redis Streams: the sink's batches, the source's shared readers,
holes filled from the PostgreSQL log (or reported), and a Redis restart in mid-run."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from services import RedisServer
from weavegraph import Event, EventBus, EventBusError
from weavegraph._lifecycle import stream_end
from weavegraph.checkpoint import EventLogSink, PostgresEventLog
from weavegraph.distributed._redis_feed import RedisEventSource, RedisFeed
from weavegraph.distributed._redis_sink import RedisEventSink, last_id, stream_key

RUN = "run-1"


def node(number: int, session: str = RUN) -> Event:
    return Event.node("step", f"m{number}", node_id="work", step=1, session_id=session)


def publish(bus: EventBus, count: int, *, end: bool = True, session: str = RUN) -> None:
    for number in range(count):
        bus.publish(node(number, session))
    if end:
        bus.publish(stream_end(session, 1, "completed"))


def outline(events: list[Event]) -> list[Any]:
    return [
        ("gap", e.metadata["first_missed_id"], e.metadata["last_missed_id"]) if e.id == 0 else e.id
        for e in events
    ]


async def drain(feed: RedisFeed, into: list[Event] | None = None) -> list[Event]:
    """Every event of the feed up to its end (the feed is closed afterwards)."""
    events = [] if into is None else into
    try:
        while (batch := await feed.next_batch()) is not None:
            assert batch, "a batch is never empty"
            events += batch
    finally:
        await feed.aclose()
    return events


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[Redis]:
    redis = Redis.from_url(redis_url)
    yield redis
    await redis.aclose()


@pytest.fixture
async def event_log(postgres_dsn: str) -> AsyncIterator[PostgresEventLog]:
    log = PostgresEventLog(postgres_dsn)
    await log.setup()
    yield log
    await log.aclose()


async def until(check: Callable[[], Awaitable[bool] | bool], timeout: float = 10.0) -> None:
    """Wait for state seen only from outside (Redis, the log, counters): no event to await."""
    async with asyncio.timeout(timeout):
        while True:
            result = check()
            if result if isinstance(result, bool) else await result:
                return
            await asyncio.sleep(0.01)


async def xread_calls(redis: Redis) -> int:
    stats = await redis.info("commandstats")
    return int(stats.get("cmdstat_xread", {}).get("calls", 0))


async def has(redis: Redis, count: int) -> bool:
    return await last_id(redis, RUN) >= count


async def logged(log: PostgresEventLog, count: int) -> bool:
    return await log.last_id(RUN) >= count


# -- the sink --------------------------------------------------------------------------------


async def test_the_sink_writes_every_event_in_few_round_trips(client: Redis) -> None:
    sink = RedisEventSink(client)
    async with EventBus([sink]) as bus:
        publish(bus, 9_999)
    assert bus.sink_health()[0].error_count == 0
    stats = sink.stats
    assert stats.events == 10_000
    assert stats.retries == 0
    assert stats.round_trips <= math.ceil(10_000 / 256) + 2
    assert stats.commands == 10_001  # an XADD per event, one EXPIRE for the STREAM_END
    assert stats.commands / stats.events <= 1.01
    key = stream_key(RUN)
    entries = await client.xrange(key)
    assert [entry_id for entry_id, _ in entries] == [f"{n}-0".encode() for n in range(1, 10_001)]
    assert Event.from_json(entries[4][1][b"e"]) == Event.from_json(entries[4][1][b"e"])
    assert Event.from_json(entries[4][1][b"e"]).message == "m4"
    assert Event.from_json(entries[-1][1][b"e"]).is_stream_end()
    assert 3500 < await client.ttl(key) <= 3600
    assert await last_id(client, RUN) == 10_000
    assert await last_id(client, "no-such-run") == 0


async def test_no_expiry_before_the_end_and_events_go_to_their_runs_stream(client: Redis) -> None:
    sink = RedisEventSink(client, prefix="p:", maxlen=None)
    async with EventBus([sink]) as bus:
        bus.publish(node(0, "a"))
        bus.publish(node(1, "b"))
        bus.publish(Event.node("step", "no session"))
    assert [entry[0] for entry in await client.xrange("p:a")] == [b"1-0"]
    assert [entry[0] for entry in await client.xrange("p:b")] == [b"2-0"]
    assert [entry[0] for entry in await client.xrange("p:")] == [b"3-0"]
    assert await client.ttl("p:a") == -1  # no STREAM_END yet: the stream stays


async def test_entries_already_written_by_a_retried_batch_are_skipped(client: Redis) -> None:
    events = [node(n) for n in range(15)]
    for number, event in enumerate(events, 1):
        event.id = number
    first = RedisEventSink(client, batch_size=4)
    for event in events[:10]:
        await first.handle(event)
    await first.close()
    again = RedisEventSink(client, batch_size=4)  # a batch retried after Redis took part of it
    for event in events[4:]:
        await again.handle(event)
    await again.close()
    entries = await client.xrange(stream_key(RUN))
    assert [entry[0] for entry in entries] == [f"{n}-0".encode() for n in range(1, 16)]
    assert again.stats.events == 11
    assert again.stats.retries == 0


async def test_a_batch_redis_refuses_is_reported(client: Redis) -> None:
    await client.set(stream_key(RUN), "not a stream")
    sink = RedisEventSink(client)
    async with EventBus([sink]) as bus:
        publish(bus, 2, end=False)
    (health,) = bus.sink_health()
    assert health.error_count == 1
    assert "Redis refused 2 of the commands for events 1..2" in (health.last_error or "")
    assert "WRONGTYPE" in (health.last_error or "")


async def test_the_sink_gives_up_close_timeout_after_close_began(own_redis: RedisServer) -> None:
    sink = RedisEventSink(own_redis.url, close_timeout=0.3)
    own_redis.stop()
    bus = EventBus([sink])
    await bus.start()
    publish(bus, 3, end=False)
    loop = asyncio.get_running_loop()
    began = loop.time()
    await bus.stop()
    assert 0.3 <= loop.time() - began < 3
    (health,) = bus.sink_health()
    assert health.error_count == 1
    assert "3 events were not written" in (health.last_error or "")
    assert "0.3 s after close() began" in (health.last_error or "")
    assert sink.stats.events == 0
    assert sink.stats.retries >= 2


async def test_the_sink_waits_out_an_outage_without_dropping(own_redis: RedisServer) -> None:
    sink = RedisEventSink(own_redis.url, batch_size=8)
    bus = EventBus([sink], capacity=16)
    await bus.start()
    publish(bus, 5, end=False)
    redis = Redis.from_url(own_redis.url)
    await until(lambda: has(redis, 5))
    await redis.aclose()
    own_redis.stop()
    for number in range(39):  # more than the ring: the bus keeps them for the lossless sink
        bus.publish(node(number))
    await until(lambda: sink.stats.retries >= 2)

    async def more() -> None:
        for number in range(39, 79):
            await bus.publish_async(node(number))

    held = asyncio.ensure_future(more())  # waits once the sink is `capacity` behind
    await asyncio.sleep(0.1)
    assert not held.done()
    await asyncio.to_thread(own_redis.start)
    await held
    await bus.stop()
    assert bus.sink_health()[0].error_count == 0
    redis = Redis.from_url(own_redis.url)
    entries = await redis.xrange(stream_key(RUN))
    await redis.aclose()
    # Redis came back empty: it holds what was written after the restart, every one of it.
    assert [entry[0] for entry in entries] == [f"{n}-0".encode() for n in range(6, 85)]
    assert sink.stats.events == 84


def test_the_sink_rejects_bad_options() -> None:
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        RedisEventSink("redis://127.0.0.1:1", batch_size=0)
    with pytest.raises(ValueError, match="maxlen must be at least 1"):
        RedisEventSink("redis://127.0.0.1:1", maxlen=0)
    with pytest.raises(ValueError, match="expire_after must be a positive"):
        RedisEventSink("redis://127.0.0.1:1", expire_after=0)


# -- the source ------------------------------------------------------------------------------


async def test_feeds_from_the_start_and_from_the_middle(redis_url: str) -> None:
    async with EventBus([RedisEventSink(redis_url)]) as bus:
        publish(bus, 5_999)
    async with RedisEventSource(redis_url, ring=256) as source:
        whole = await drain(source.feed(RUN))
        tail = await drain(source.feed(RUN, after=5_000))
        # A feed further back than the ring of a reader that is already ahead.
        ahead = source.feed(RUN, after=5_990)
        behind = source.feed(RUN, after=10)
        assert outline(await drain(ahead)) == list(range(5_991, 6_001))
        assert outline(await drain(behind)) == list(range(11, 6_001))
    assert outline(whole) == list(range(1, 6_001))
    assert outline(tail) == list(range(5_001, 6_001))
    assert whole[-1].is_stream_end()
    assert whole[41].message == "m41"


async def test_a_feed_waits_for_a_run_that_has_not_begun(redis_url: str) -> None:
    async with RedisEventSource(redis_url, block=0.05) as source:
        feed = source.feed(RUN)
        waiting = asyncio.ensure_future(feed.next_batch())
        await asyncio.sleep(0.2)  # several empty reads: the run has no stream yet
        assert not waiting.done()
        async with EventBus([RedisEventSink(redis_url)]) as bus:
            bus.publish(node(0))
            first = await waiting
            assert outline(first) == [1]
            publish(bus, 2)
        assert outline(first + await drain(feed)) == [1, 2, 3, 4]


async def test_a_client_reconnecting_after_the_end_gets_nothing_more(redis_url: str) -> None:
    async with EventBus([RedisEventSink(redis_url)]) as bus:
        publish(bus, 3)
    async with RedisEventSource(redis_url) as source:
        assert await drain(source.feed(RUN, after=4)) == []
        assert outline(await drain(source.feed(RUN, after=2))) == [3, 4]


async def test_fifty_feeds_of_one_run_share_one_reader(redis_url: str, client: Redis) -> None:
    await client.config_resetstat()
    sink = RedisEventSink(redis_url)
    async with RedisEventSource(redis_url) as source:
        feeds = [source.feed(RUN) for _ in range(50)]
        assert source.readers == 1
        readers = [asyncio.ensure_future(drain(feed)) for feed in feeds]
        async with EventBus([sink]) as bus:
            for burst in range(20):
                for number in range(100):
                    await bus.publish_async(node(burst * 100 + number))
                await asyncio.sleep(0.005)
                assert source.readers == 1
            bus.publish(stream_end(RUN, 1, "completed"))
        results = await asyncio.gather(*readers)
    for events in results:
        assert outline(events) == list(range(1, 2_002))
    reads = await xread_calls(client)
    # Reads follow the writes (20 bursts, each in one or a few pipelines), never one per
    # client: 50 clients reading each burst would be 1,000 reads or more.
    assert sink.stats.round_trips <= 60
    assert reads <= 100


async def test_readers_stop_after_their_last_feed_and_restart(redis_url: str) -> None:
    async with EventBus([RedisEventSink(redis_url)]) as bus:
        publish(bus, 3, end=False)
    async with RedisEventSource(redis_url, linger=0.05, block=0.05) as source:
        feed = source.feed(RUN)
        assert outline(await feed.next_batch() or []) == [1, 2, 3]
        await feed.aclose()
        await feed.aclose()
        assert source.readers == 1  # lingering
        await until(lambda: source.readers == 0)
        unread = source.feed(RUN)
        assert source.readers == 1
        await unread.aclose()
        assert source.readers == 0  # never read: nothing to linger for
        again = source.feed(RUN, after=2)
        assert outline(await again.next_batch() or []) == [3]
    assert await again.next_batch() is None  # the source closed: the feed ends
    with pytest.raises(EventBusError, match="closed"):
        source.feed(RUN)


async def test_ping(redis_url: str) -> None:
    async with RedisEventSource(redis_url) as source:
        assert await source.ping() is True
    assert await RedisEventSource("redis://127.0.0.1:1/0").ping() is False


# -- holes: trimmed streams, the log, restarts -------------------------------------------------


async def test_a_trimmed_stream_is_filled_from_the_log(
    redis_url: str, client: Redis, event_log: PostgresEventLog
) -> None:
    async with EventBus([EventLogSink(event_log), RedisEventSink(redis_url, maxlen=100)]) as bus:
        publish(bus, 4_999)
    assert await client.xlen(stream_key(RUN)) < 1_000
    async with RedisEventSource(redis_url, log=event_log, ring=300) as source:
        whole = await drain(source.feed(RUN))
        later = source.feed(RUN, after=4_990)  # the reader's ring is past the trimmed part
        middle = source.feed(RUN, after=2_000)  # older than the ring: Redis lacks it, the log not
        assert outline(await drain(later)) == list(range(4_991, 5_001))
        assert outline(await drain(middle)) == list(range(2_001, 5_001))
    assert outline(whole) == list(range(1, 5_001))
    assert [e.message for e in whole[:3]] == ["m0", "m1", "m2"]


async def test_without_a_log_a_trimmed_part_is_reported_as_missed(
    redis_url: str, client: Redis
) -> None:
    async with EventBus([RedisEventSink(redis_url, maxlen=100)]) as bus:
        publish(bus, 4_999)
    oldest = int((await client.xrange(stream_key(RUN), count=1))[0][0].split(b"-")[0])
    assert oldest > 4_000
    async with RedisEventSource(redis_url) as source:
        events = await drain(source.feed(RUN))
        resumed = await drain(source.feed(RUN, after=10))
    assert outline(events) == [("gap", 1, oldest - 1), *range(oldest, 5_001)]
    assert events[0].metadata["missed"] == oldest - 1
    assert outline(resumed) == [("gap", 11, oldest - 1), *range(oldest, 5_001)]


async def test_an_expired_stream_is_replayed_from_the_log(
    redis_url: str, client: Redis, event_log: PostgresEventLog
) -> None:
    async with EventBus([EventLogSink(event_log), RedisEventSink(redis_url)]) as bus:
        publish(bus, 9)
    await client.delete(stream_key(RUN))  # as EXPIRE does, expire_after after the end
    async with RedisEventSource(redis_url, log=event_log, block=0.05) as source:
        assert outline(await drain(source.feed(RUN))) == list(range(1, 11))
        assert outline(await drain(source.feed(RUN, after=7))) == [8, 9, 10]


async def test_a_redis_restart_mid_run_loses_no_event(
    own_redis: RedisServer, event_log: PostgresEventLog
) -> None:
    sink = RedisEventSink(own_redis.url, batch_size=32)
    bus = EventBus([EventLogSink(event_log), sink])
    await bus.start()
    server = RedisEventSource(own_redis.url, log=event_log, block=0.2, ring=64)
    other = RedisEventSource(own_redis.url, log=event_log, block=0.2)  # another web server
    followed: list[Event] = []
    follower = asyncio.ensure_future(drain(server.feed(RUN), followed))
    slow = server.feed(RUN)  # reads a little, then nothing until Redis is back
    client = other.feed(RUN)
    for number in range(300):
        await bus.publish_async(node(number))
    seen: list[Event] = []
    while not seen or seen[-1].id < 100:
        seen += await client.next_batch() or []
    await client.aclose()  # the client's connection drops with its server
    paused = await slow.next_batch() or []
    redis = Redis.from_url(own_redis.url)
    await until(lambda: has(redis, 300))
    await redis.aclose()
    await until(lambda: len(followed) == 300)

    own_redis.stop()
    retries = sink.stats.retries
    for number in range(300, 450):
        await bus.publish_async(node(number))
    await until(lambda: sink.stats.retries >= retries + 2)  # the sink retries: Redis is gone
    await asyncio.to_thread(own_redis.start)  # empty: 1..300 are gone (the log has them)
    for number in range(450, 600):
        await bus.publish_async(node(number))
    bus.publish(stream_end(RUN, 1, "completed"))

    resumed = await drain(other.feed(RUN, after=seen[-1].id))
    paused = await drain(slow, paused)
    await asyncio.wait_for(follower, 20)
    await bus.stop()
    await server.aclose()
    await other.aclose()
    assert [h.error_count for h in bus.sink_health()] == [0, 0]
    assert seen[-1].id < 300
    assert outline(followed) == list(range(1, 602))
    assert outline(seen + resumed) == list(range(1, 602))
    assert outline(paused) == list(range(1, 602))
    assert followed[-1].is_stream_end()


async def test_a_resp3_client_and_a_stream_redis_cannot_read(redis_url: str) -> None:
    redis = Redis.from_url(redis_url, protocol=3, decode_responses=True)
    async with EventBus([RedisEventSink(redis)]) as bus:
        publish(bus, 2)
    await redis.set(stream_key("broken"), "not a stream")
    async with RedisEventSource(redis) as source:
        assert outline(await drain(source.feed(RUN))) == [1, 2, 3]
        broken = source.feed("broken")
        with pytest.raises(EventBusError, match="run 'broken' from Redis failed: WRONGTYPE"):
            await broken.next_batch()
        await broken.aclose()
        assert source.readers == 1  # the failed reader is gone; the other one lingers
    assert await redis.ping()  # a client the source did not open stays open
    await redis.aclose()
