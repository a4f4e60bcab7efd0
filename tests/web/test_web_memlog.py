"""InMemoryEventLog keeps the EventLog contract (the one the SQLite and PostgreSQL logs keep)."""

from __future__ import annotations

import pytest

from weavegraph import Event, EventBus
from weavegraph.checkpoint import EventLog, EventLogSink
from weavegraph.web import InMemoryEventLog


def published(session: str | None, *ids: int) -> list[Event]:
    events = []
    for event_id in ids:
        event = Event.node("step", f"e{event_id}", session_id=session)
        event.id = event_id
        events.append(event)
    return events


async def test_append_read_and_forget() -> None:
    log = InMemoryEventLog()
    assert isinstance(log, EventLog)
    async with log:
        await log.append(published("a", 1, 2, 3))
        await log.append(published("b", 1))
        await log.append(published(None, 4))
        assert [e.id for e in await log.events_after("a", 0)] == [1, 2, 3]
        assert [e.id for e in await log.events_after("a", 1, limit=1)] == [2]
        assert await log.events_after("a", 3) == []
        assert [e.message for e in await log.events_after("", 0)] == ["e4"]
        assert await log.last_id("a") == 3
        assert await log.last_id("nobody") == 0
        assert await log.delete_session("a") is True
        assert await log.delete_session("a") is False
        assert await log.events_after("a", 0) == []


async def test_duplicates_keep_the_stored_event_and_order_holds() -> None:
    log = InMemoryEventLog()
    await log.append(published("s", 1, 4))
    again = published("s", 4)
    again[0].message = "replayed"
    await log.append([*published("s", 3, 2), *again])
    stored = await log.events_after("s", 0)
    assert [e.id for e in stored] == [1, 2, 3, 4]
    assert stored[-1].message == "e4"


async def test_bad_input_is_refused() -> None:
    log = InMemoryEventLog()
    with pytest.raises(ValueError, match="only published events"):
        await log.append([Event.node("step", "never published")])
    with pytest.raises(ValueError, match="limit must not be negative"):
        await log.events_after("s", 0, limit=-1)
    with pytest.raises(ValueError, match="max_sessions"):
        InMemoryEventLog(max_sessions=0)


async def test_max_sessions_forgets_the_least_recently_written() -> None:
    log = InMemoryEventLog(max_sessions=2)
    await log.append(published("a", 1))
    await log.append(published("b", 1))
    await log.append(published("a", 2))  # a is written to again: b is now the oldest
    await log.append(published("c", 1))
    assert [await log.last_id(s) for s in ("a", "b", "c")] == [2, 0, 1]


async def test_fed_by_a_bus_through_the_log_sink() -> None:
    log = InMemoryEventLog()
    async with EventBus([EventLogSink(log, batch_size=7)]) as bus:
        for n in range(50):
            bus.publish(Event.node("step", f"m{n}", session_id="s"))
    assert [e.message for e in await log.events_after("s", 0)] == [f"m{n}" for n in range(50)]
