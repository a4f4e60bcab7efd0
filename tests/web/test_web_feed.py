"""Feeds on their own: gaps filled from the log, what it lacks, replays that stop at the end."""

from __future__ import annotations

from typing import Any

import pytest

from weavegraph import STREAM_END_SCOPE, Event, EventBus
from weavegraph.web import EventStreamResponse, InMemoryEventLog
from weavegraph.web._feed import LogFeed, StreamFeed


def fill(bus: EventBus, count: int, session: str = "s") -> list[Event]:
    return [bus.publish(Event.node("step", f"m{n}", session_id=session)) for n in range(count)]


def outline(batch: list[Event] | None) -> list[Any]:
    if batch is None:
        return ["end"]
    return [
        ("gap", e.metadata["first_missed_id"], e.metadata["last_missed_id"]) if e.id == 0 else e.id
        for e in batch
    ]


async def test_a_gap_the_log_has_is_filled_in_order() -> None:
    bus = EventBus(capacity=4)
    log = InMemoryEventLog()
    await log.append(fill(bus, 20))
    feed = StreamFeed(bus.subscribe(after=0), log=log, session_id="s")
    assert outline(await feed.next_batch()) == list(range(1, 17))
    assert outline(await feed.next_batch()) == [17, 18, 19, 20]
    await feed.aclose()
    await bus.stop()


async def test_what_the_log_lacks_is_reported_as_missed() -> None:
    bus = EventBus(capacity=4)
    log = InMemoryEventLog()
    events = fill(bus, 20)
    await log.append(events[:8])  # the log stopped at 8 (its writes failed, say)
    feed = StreamFeed(bus.subscribe(after=0), log=log, session_id="s", fill_timeout=0.05)
    assert outline(await feed.next_batch()) == list(range(1, 9))
    assert outline(await feed.next_batch()) == [("gap", 9, 16)]
    assert outline(await feed.next_batch()) == [17, 18, 19, 20]
    await feed.aclose()
    await bus.stop()


async def test_a_hole_in_the_log_is_reported_and_skipped() -> None:
    bus = EventBus(capacity=4)
    log = InMemoryEventLog()
    events = fill(bus, 20)
    await log.append(events[:3] + events[6:])
    feed = StreamFeed(bus.subscribe(after=0), log=log, session_id="s", fill_timeout=0.05)
    batches = [outline(await feed.next_batch()) for _ in range(4)]
    assert batches == [[1, 2, 3], [("gap", 4, 6)], list(range(7, 17)), [17, 18, 19, 20]]
    await feed.aclose()
    await bus.stop()


async def test_without_pings_the_feed_waits_and_ends() -> None:
    bus = EventBus()
    feed = StreamFeed(bus.subscribe())
    fill(bus, 2)
    bus.publish(Event.diagnostic(STREAM_END_SCOPE, "status=completed"))
    assert outline(await feed.next_batch()) == [1, 2, 3]
    assert await feed.next_batch() is None
    await feed.aclose()
    await bus.stop()


async def test_log_replay_stops_at_the_end_or_when_the_log_runs_out() -> None:
    bus = EventBus()
    events = fill(bus, 3)
    events.append(bus.publish(Event.diagnostic(STREAM_END_SCOPE, "done", session_id="s")))
    events += fill(bus, 2)  # an iterative session's later events are not this replay's
    log = InMemoryEventLog()
    await log.append(events)
    assert outline(await LogFeed(log, "s", after=1).next_batch()) == [2, 3, 4]
    ended = LogFeed(log, "s", after=1)
    await ended.next_batch()
    assert await ended.next_batch() is None
    cut = LogFeed(InMemoryEventLog(), "s")
    assert await cut.next_batch() is None
    await bus.stop()


def test_arguments_are_checked() -> None:
    bus = EventBus()
    with pytest.raises(ValueError, match="needs the session_id"):
        StreamFeed(bus.subscribe(), log=InMemoryEventLog())
    feed = LogFeed(InMemoryEventLog(), "s")
    with pytest.raises(ValueError, match="one line"):
        EventStreamResponse(feed, event="two\nlines")
    with pytest.raises(ValueError, match="ping must be a positive"):
        EventStreamResponse(feed, ping=0)
