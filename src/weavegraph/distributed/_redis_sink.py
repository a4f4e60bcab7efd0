"""Events into Redis Streams: `RedisEventSink`, and the stream format its readers share.

Format: one stream per run, key ``{prefix}{session_id}``; one entry per event, with the explicit
entry id ``{event.id}-0`` and one field ``e`` holding the event's JSON wire shape. So the entry
ids are the event ids every server sends to its SSE clients, and reading from ``{n}-0`` (XREAD)
resumes right after event n. Streams are capped (``MAXLEN ~``) and expire a while after the
run's STREAM_END; the durable event log keeps what they no longer hold.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .._batching import BatchingSink
from .._errors import EventBusError
from .._event import Event

__all__ = [
    "DEFAULT_PREFIX",
    "FIELD",
    "RETRYABLE",
    "Backoff",
    "RedisEventSink",
    "RedisSinkStats",
    "connect",
    "decode_entries",
    "last_id",
    "stream_key",
]

_logger = logging.getLogger("weavegraph.redis")

DEFAULT_PREFIX = "weavegraph:events:"
FIELD = "e"
RETRYABLE: tuple[type[Exception], ...] = (RedisConnectionError, RedisTimeoutError, OSError)
"""What a restart or an outage of Redis raises: worth trying again, after a pause."""

# Redis's reply to an XADD whose id is not above the stream's last one: the entry is there.
_ALREADY_ADDED = "equal or smaller than the target stream top item"

Entries = Sequence[tuple[bytes | str | None, Mapping[bytes | str, bytes | str] | None]]


def stream_key(session_id: str | None, prefix: str = DEFAULT_PREFIX) -> str:
    """The key of a run's stream (events without a session go under the session ``""``)."""
    return f"{prefix}{session_id or ''}"


def connect(redis: str | Redis) -> tuple[Redis, bool]:
    """A client for a URL (owned by the caller, who closes it), or the client given (not owned)."""
    if isinstance(redis, str):
        # The retrying (with backoff, and without ever dropping an event) is done by the
        # sink and the readers themselves; the client's own retries would only delay it.
        return Redis.from_url(redis, retry=Retry(NoBackoff(), 0)), True
    return redis, False


def decode_entries(entries: Entries | None) -> list[Event]:
    """The events of stream entries (XRANGE or one stream of XREAD), in their order."""
    events = []
    for _, fields in entries or ():
        if fields:
            data = fields.get(b"e") or fields.get(FIELD)
            if data is not None:
                events.append(Event.from_json(data))
    return events


async def last_id(redis: Redis, session_id: str, *, prefix: str = DEFAULT_PREFIX) -> int:
    """The id of the last event in the run's stream, or 0 if the stream is empty or missing."""
    entries = await redis.xrevrange(stream_key(session_id, prefix), count=1)
    if not entries or entries[0][0] is None:
        return 0
    entry_id = entries[0][0]
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.partition("-")[0])


class Backoff:
    """Pauses between attempts: 0.05 s, doubling up to 1 s; `reset()` after a success."""

    __slots__ = ("delay",)

    FIRST = 0.05
    LAST = 1.0

    def __init__(self) -> None:
        self.delay = self.FIRST

    async def sleep(self, most: float | None = None) -> None:
        """Wait the current delay (at most `most` seconds), then double it."""
        await asyncio.sleep(self.delay if most is None else max(0.0, min(self.delay, most)))
        self.delay = min(self.delay * 2, self.LAST)

    def reset(self) -> None:
        """Start again from the shortest delay."""
        self.delay = self.FIRST


@dataclass(frozen=True, slots=True)
class RedisSinkStats:
    """Counters of a `RedisEventSink`.

    Attributes:
        events: events written (or found already written by an earlier attempt).
        commands: commands sent (XADD and EXPIRE), attempts that failed included.
        round_trips: pipelines sent, failed attempts included.
        retries: attempts that failed on the connection and were tried again.
    """

    events: int
    commands: int
    round_trips: int
    retries: int


class RedisEventSink(BatchingSink):
    """A lossless bus sink that appends every event to its run's Redis stream, in batches.

    Events are buffered and written once `batch_size` are waiting, or on the next turn of the
    event loop after the first one arrived, and always in `close()`. A batch costs one round
    trip: one ``XADD key MAXLEN ~ maxlen id e json`` per event, plus ``PEXPIRE`` of the stream
    when the batch holds the run's STREAM_END. Nothing is dropped: while Redis is unreachable
    (down, restarting) a batch is retried with backoff, and `handle` waits once `batch_size`
    events are buffered, so the bus holds the rest back. An entry already in the stream (from a
    retried batch) is skipped. One bus should carry one run: readers treat a jump in a stream's
    ids as events lost.

    Args:
        redis: a ``redis://`` URL (the sink opens a client and closes it) or a client of
            `redis.asyncio` (left open).
        name: the sink's name on the bus.
        prefix: the start of every stream key (see `stream_key`).
        maxlen: about how many entries each stream keeps (older ones are trimmed); None keeps
            all of them.
        expire_after: seconds a stream lives after its run's STREAM_END was written.
        batch_size: the most events written in one round trip.
        close_timeout: how long `close()` keeps retrying an unreachable Redis before it gives
            up. Keep it below the bus's stop timeout, or the bus abandons the sink first.

    Raises (from `handle` or `close`, so the bus reports it):
        EventBusError: Redis refused a batch (not for a connection failure), or was still
            unreachable `close_timeout` seconds after `close()` began.
    """

    def __init__(
        self,
        redis: str | Redis,
        *,
        name: str = "redis",
        prefix: str = DEFAULT_PREFIX,
        maxlen: int | None = 10_000,
        expire_after: float = 3600.0,
        batch_size: int = 256,
        close_timeout: float = 30.0,
    ) -> None:
        super().__init__(name, batch_size=batch_size)
        if maxlen is not None and maxlen < 1:
            raise ValueError(f"maxlen must be at least 1 or None; got {maxlen}")
        if expire_after <= 0:
            raise ValueError(
                f"expire_after must be a positive number of seconds; got {expire_after}"
            )
        self._redis, self._owned = connect(redis)
        self._prefix = prefix
        self._maxlen = maxlen
        self._expire_ms = max(1, round(expire_after * 1000))
        self._close_timeout = close_timeout
        self._deadline: float | None = None  # set by close(): when retrying stops
        self._events = self._commands = self._round_trips = self._retries = 0

    @property
    def stats(self) -> RedisSinkStats:
        """The sink's counters so far."""
        return RedisSinkStats(self._events, self._commands, self._round_trips, self._retries)

    async def close(self) -> None:
        """Write what is still buffered, retrying for at most `close_timeout` seconds."""
        self._deadline = asyncio.get_running_loop().time() + self._close_timeout
        try:
            await super().close()
        finally:
            if self._owned:
                await self._redis.aclose()

    async def _write(self, batch: list[Event]) -> None:
        entries = [  # encoded once, whatever the retries
            (stream_key(e.session_id, self._prefix), f"{e.id}-0", e.to_json(), e.is_stream_end())
            for e in batch
        ]
        backoff = Backoff()
        while True:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key, entry_id, data, last in entries:
                    pipe.xadd(
                        key, {FIELD: data}, id=entry_id, maxlen=self._maxlen, approximate=True
                    )
                    if last:
                        pipe.pexpire(key, self._expire_ms)
                self._commands += len(pipe)
                self._round_trips += 1
                try:
                    results = await pipe.execute(raise_on_error=False)
                except RETRYABLE as exc:
                    self._retries += 1
                    level = logging.WARNING if backoff.delay == Backoff.FIRST else logging.DEBUG
                    _logger.log(
                        level, "redis sink %r: writing failed, retrying: %s", self.name, exc
                    )
                    await backoff.sleep(self._remaining(len(batch), exc))
                    continue
            break
        refused = [
            result
            for result in results
            if isinstance(result, ResponseError) and _ALREADY_ADDED not in str(result)
        ]
        self._events += len(batch)
        if refused:
            raise EventBusError(
                f"redis sink {self.name!r}: Redis refused {len(refused)} of the commands for "
                f"events {batch[0].id}..{batch[-1].id}: {refused[0]}"
            ) from refused[0]

    def _remaining(self, unwritten: int, exc: Exception) -> float | None:
        """Seconds left to retry in, None if unbounded; raises once close_timeout is over."""
        if self._deadline is None:
            return None
        left = self._deadline - asyncio.get_running_loop().time()
        if left <= 0:
            unwritten += len(self._buffer)
            raise EventBusError(
                f"redis sink {self.name!r}: {unwritten} events were not written: Redis was "
                f"still unreachable {self._close_timeout:g} s after close() began ({exc}); "
                "check that Redis is running, or raise close_timeout"
            ) from exc
        return left
