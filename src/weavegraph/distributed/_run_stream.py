"""A run's event stream across processes: the bus that writes it, where its ids go on, its end.

Every event of a queued run goes to two stores, the PostgreSQL event log and the run's Redis
stream (`run_bus`). A worker that died may have written some events to the Redis stream that
never reached the PostgreSQL log (the two sinks drain independently). The worker taking over
copies those into the log first, so the log stays complete, and then continues the ids after
the highest one either store holds: no id is ever used twice. While Redis is unreachable it
waits (up to `wait` seconds) rather than guess.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from .._event import Event
from .._lifecycle import stream_end
from ..checkpoint import EventLogSink
from ..events import EventBus, EventSink
from ._redis_sink import RETRYABLE, Backoff, RedisEventSink, decode_entries, stream_key

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from ..checkpoint import EventLog

__all__ = ["WORKER_SCOPE", "close_stream", "next_event_id", "run_bus", "worker_event"]

#: Scope of the workers' own diagnostics in a run's stream (resumed, attempt failed).
WORKER_SCOPE = "__weavegraph_worker__"

PAGE = 512


async def next_event_id(log: EventLog, redis: Redis, session_id: str, *, wait: float = 60.0) -> int:
    """The id the next event of `session_id` gets, after copying into `log` the events only
    Redis holds.

    Raises:
        redis.ConnectionError (or another connection failure): Redis stayed unreachable for
            `wait` seconds.
    """
    await log.setup()
    logged = await log.last_id(session_id)
    key = stream_key(session_id)
    cursor = logged
    backoff = Backoff()
    deadline = asyncio.get_running_loop().time() + wait
    while True:
        try:
            entries = await redis.xrange(key, min=f"({cursor}-0", max="+", count=PAGE)
        except RETRYABLE:
            if asyncio.get_running_loop().time() >= deadline:
                raise
            await backoff.sleep()
            continue
        events = decode_entries(entries)
        if not events:
            return cursor + 1
        await log.append([e for e in events if e.id > logged])
        cursor = max(cursor, events[-1].id)


def run_bus(log: EventLog, redis: Redis, *, capacity: int = 1024) -> EventBus:
    """A bus whose every event goes, losslessly, to `log` and to its run's Redis stream."""
    sinks: list[EventSink] = [EventLogSink(log), RedisEventSink(redis)]
    return EventBus(sinks, capacity=capacity)


def worker_event(run_id: str, message: str, **metadata: int) -> Event:
    """A diagnostic of the workers about a run (WORKER_SCOPE)."""
    return Event.diagnostic(WORKER_SCOPE, message, session_id=run_id, metadata=dict(metadata))


async def close_stream(
    log: EventLog, redis: Redis, run_id: str, status: str, *, why: Event | None = None
) -> None:
    """End the stream of a run that no worker will run again: `why` (if given), then its
    STREAM_END with `status`, after the ids either store holds."""
    bus = run_bus(log, redis)
    bus.continue_ids(await next_event_id(log, redis, run_id) - 1)
    async with bus:
        if why is not None:
            bus.publish(why)
        bus.publish(stream_end(run_id, 0, status))
