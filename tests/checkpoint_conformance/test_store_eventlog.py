"""The durable event log on SQLite and PostgreSQL, fed from a bus through EventLogSink."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import pytest

from weavegraph.checkpoint import (
    EventLog,
    EventLogError,
    EventLogSink,
    PostgresEventLog,
    SQLiteEventLog,
)
from weavegraph.events import Event, EventBus

LogFactory = Callable[[], EventLog]


@pytest.fixture(params=["sqlite", "postgres"])
async def open_log(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Callable[[], EventLog]]:
    """Opens logs on one database: each call is a new object, as after a restart."""
    if request.param == "sqlite":
        path = tmp_path / "events.db"
        make: LogFactory = lambda: SQLiteEventLog(path)  # noqa: E731
    else:
        dsn: str = request.getfixturevalue("postgres_dsn")
        make = lambda: PostgresEventLog(dsn)  # noqa: E731
    opened: list[EventLog] = []

    def factory() -> EventLog:
        log = make()
        opened.append(log)
        return log

    yield factory
    for log in opened:
        await log.aclose()


class CountingLog:
    """An EventLog that records the size of each append and can signal or fail them."""

    def __init__(self, log: EventLog, *, fail: bool = False) -> None:
        self.log = log
        self.batches: list[int] = []
        self.appended = asyncio.Event()
        self.fail = fail

    async def setup(self) -> None:
        await self.log.setup()

    async def aclose(self) -> None:
        await self.log.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def append(self, events: Sequence[Event]) -> None:
        if self.fail:
            raise EventLogError("refused")
        self.batches.append(len(events))
        await self.log.append(events)
        self.appended.set()

    async def events_after(
        self, session_id: str, event_id: int, *, limit: int | None = None
    ) -> list[Event]:
        return await self.log.events_after(session_id, event_id, limit=limit)

    async def last_id(self, session_id: str) -> int:
        return await self.log.last_id(session_id)

    async def delete_session(self, session_id: str) -> bool:
        return await self.log.delete_session(session_id)


def make_event(n: int) -> Event:
    """A varied event: node events with metadata, LLM chunks, diagnostics."""
    if n % 3 == 0:
        return Event.node(
            "progress",
            f"step {n} ✓",
            node_id="worker",
            step=n // 3,
            session_id="run-1",
            metadata={"n": n, "ratio": n / 7, "tags": ["a", "b"], "nested": {"ok": True}},
        )
    if n % 3 == 1:
        return Event.llm(f"chunk {n}", stream_id="s1", is_final=n % 10 == 1, session_id="run-1")
    return Event.diagnostic("health", f"diag {n}", session_id="run-1")


async def test_ten_thousand_events_survive_a_restart(open_log: LogFactory) -> None:
    log = CountingLog(open_log())
    bus = EventBus([EventLogSink(log)])
    await bus.start()
    published = [await bus.publish_async(make_event(n)) for n in range(10_000)]
    await bus.stop()
    assert [h.error_count for h in bus.sink_health()] == [0]
    assert [e.id for e in published] == list(range(1, 10_001))
    assert sum(log.batches) == 10_000
    assert max(log.batches) <= 256
    assert len(log.batches) <= 200  # batched (the exact split depends on scheduling)
    await log.aclose()

    restarted = open_log()
    await restarted.setup()
    replay = await restarted.events_after("run-1", 4_000)
    assert [e.id for e in replay] == list(range(4_001, 10_001))
    assert replay == published[4_000:]
    assert await restarted.last_id("run-1") == 10_000
    assert await restarted.events_after("run-1", 9_998, limit=5) == published[9_998:]
    assert await restarted.events_after("run-1", 0, limit=2) == published[:2]
    assert await restarted.events_after("run-1", 10_000) == []


async def test_sessions_unsessioned_events_and_delete(open_log: LogFactory) -> None:
    async with open_log() as log:
        events = [
            Event("node", "a", "one", session_id="s1", id=1),
            Event("diagnostic", "b", "no session", id=2),
            Event("node", "a", "two", session_id="s2", id=3),
            Event("node", "a", "three", session_id="s1", id=4),
        ]
        await log.append(events)
        await log.append(events[:1])  # already stored: kept as it is
        await log.append([])
        assert await log.events_after("s1", 0) == [events[0], events[3]]
        assert await log.events_after("", 0) == [events[1]]
        assert await log.last_id("s2") == 3
        assert await log.last_id("unknown") == 0
        assert await log.events_after("unknown", 0) == []
        assert await log.delete_session("s1") is True
        assert await log.delete_session("s1") is False
        assert await log.last_id("s1") == 0
        assert await log.events_after("s2", 0) == [events[2]]
        with pytest.raises(ValueError, match="only published events can be logged"):
            await log.append([Event.node("a", "never published")])
        with pytest.raises(ValueError, match="limit must not be negative"):
            await log.events_after("s2", 0, limit=-1)


async def test_the_sink_flushes_on_the_next_loop_turn(open_log: LogFactory) -> None:
    log = CountingLog(open_log())
    async with EventBus([EventLogSink(log)]) as bus:
        first = bus.publish(Event.node("x", "hello", session_id="s"))
        await log.appended.wait()  # without stopping the bus or filling a batch
        assert await log.events_after("s", 0) == [first]
    assert log.batches == [1]


async def test_a_refused_batch_is_reported_by_the_bus(open_log: LogFactory) -> None:
    log = CountingLog(open_log(), fail=True)
    bus = EventBus([EventLogSink(log, name="log", batch_size=2)])
    await bus.start()
    for n in range(3):
        await bus.publish_async(Event.node("x", str(n), session_id="s"))
    await bus.stop()
    health = bus.sink_health()
    assert [h.sink for h in health] == ["log"]
    assert health[0].error_count >= 1
    assert health[0].last_error is not None
    assert "refused" in health[0].last_error


def test_batch_size_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="batch_size must be at least 1; got 0"):
        EventLogSink(SQLiteEventLog(tmp_path / "x.db"), batch_size=0)
