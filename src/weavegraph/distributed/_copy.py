"""Where a run's event ids go on when a worker takes it over.

A worker that died may have written some events to the run's Redis stream that never reached
the PostgreSQL log (the two sinks drain independently). The worker taking over copies those
into the log first, so the log stays complete, and then continues the ids after the highest
one either store holds: no id is ever used twice. While Redis is unreachable it waits (up to
`wait` seconds) rather than guess.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ._redis_sink import RETRYABLE, Backoff, decode_entries, stream_key

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from ..checkpoint import EventLog

__all__ = ["next_event_id"]

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
