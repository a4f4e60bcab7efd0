"""Redis Streams to SSE clients: `RedisEventSource`, one per web-server process, and its feeds.

For each run followed in the process one reader task reads the run's stream (``XREAD BLOCK``
from its cursor) into a small ring of the run's latest events and wakes the feeds waiting on
it, however many SSE clients follow that run. It reads only while some feed waits for new
events, so a run nobody keeps up with costs nothing. A feed further back than the ring reads
that part itself (``XRANGE``, a page at a time), then joins the ring.

Whatever reads a stream goes through a `Sequencer` (see `_redis_order`): events come out in
id order, and a hole (entries trimmed by ``MAXLEN``, an expired stream, a Redis restart that
lost them) is read from the durable event log, or reported as one GAP_SCOPE diagnostic for
what the log lacks too. While Redis is unreachable readers retry with backoff and go on from
their cursor.
"""

from __future__ import annotations

import asyncio
import logging

from redis.asyncio import Redis

from .._errors import EventBusError, EventLogError
from .._event import Event
from .._resource import AsyncResource
from ..checkpoint import EventLog
from ..web._feed import PAGE, covered, gap_event
from ._redis_order import Ring, Sequencer, is_gap, stream_entries
from ._redis_sink import (
    DEFAULT_PREFIX,
    RETRYABLE,
    Backoff,
    connect,
    decode_entries,
    last_id,
    stream_key,
)

__all__ = ["RedisEventSource", "RedisFeed"]

_logger = logging.getLogger("weavegraph.redis")
# A reader waiting for the log to come back is as stuck as one waiting for Redis.
_TRANSIENT: tuple[type[Exception], ...] = (*RETRYABLE, EventLogError)


class _RunReader:
    """Reads one run's stream for every feed of this process that follows the run."""

    __slots__ = (
        "_poke",
        "_tick",
        "ended",
        "error",
        "feeds",
        "key",
        "ring",
        "sequencer",
        "session",
        "source",
        "stopped",
        "task",
        "waiting",
    )

    def __init__(self, source: RedisEventSource, session_id: str, cursor: int) -> None:
        self.source = source
        self.session = session_id
        self.key = stream_key(session_id, source._prefix)
        self.ring = Ring(cursor, source._ring)
        self.sequencer = Sequencer(cursor, source._log, session_id, source._fill_timeout)
        self.feeds = 0
        self.waiting = 0  # feeds waiting for the ring to grow since the last batch
        self.ended = False  # the ring holds the run's STREAM_END: nothing more to read
        self.stopped = False  # the task is over (source closed, or a failure)
        self.error: Exception | None = None
        self.task: asyncio.Task[None] | None = None
        self._poke = asyncio.Event()  # something the task waits for changed
        self._tick = asyncio.Event()  # set (and replaced) whenever the ring grows

    def join(self) -> None:
        self.feeds += 1
        self._poke.set()

    def leave(self) -> None:
        self.feeds -= 1
        self._poke.set()
        if self.feeds == 0 and self.task is None:  # never started: nothing to linger for
            self.source._forget(self)

    async def wait(self) -> None:
        """Wait until the ring grows or the reader stops."""
        if self.task is None and not self.stopped:
            loop = asyncio.get_running_loop()
            self.task = loop.create_task(self._run(), name=f"weavegraph-redis-{self.key}")
        tick = self._tick
        self.waiting += 1
        self._poke.set()
        try:
            await tick.wait()
        finally:
            if tick is self._tick:  # else the count was reset when the ring grew
                self.waiting -= 1

    def stop(self) -> None:
        self.stopped = True
        if self.task is not None:
            self.task.cancel()
        self._wake()

    def _wake(self) -> None:
        tick, self._tick = self._tick, asyncio.Event()
        self.waiting = 0
        tick.set()

    async def _run(self) -> None:
        backoff = Backoff()
        failures = 0
        try:
            while True:
                if self.feeds == 0 and not await self._linger():
                    return
                if self.ended or self.waiting == 0:
                    self._poke.clear()
                    await self._poke.wait()
                    continue
                try:
                    events = await self._step()
                except _TRANSIENT as exc:
                    failures += 1
                    level = logging.WARNING if failures == 1 else logging.DEBUG
                    _logger.log(level, "reading %s failed, retrying: %s", self.key, exc)
                    await backoff.sleep()
                    continue
                backoff.reset()
                failures = 0
                if events:
                    self.ring.extend(events)
                    self.ended = self.ended or any(e.is_stream_end() for e in events)
                    self._wake()
        except Exception as exc:  # not worth retrying: the feeds raise it
            self.error = exc
        finally:
            self.stopped = True
            self.source._forget(self)
            self._wake()

    async def _linger(self) -> bool:
        """Wait a little for a feed to join (a quick reconnection); False if none did."""
        try:
            async with asyncio.timeout(self.source._linger):
                while self.feeds == 0:
                    self._poke.clear()
                    await self._poke.wait()
        except TimeoutError:
            return False
        return True

    async def _step(self) -> list[Event]:
        sequencer, redis = self.sequencer, self.source._redis
        if sequencer.backlog:
            return await sequencer.fill()
        reply = await redis.xread(
            {self.key: f"{sequencer.cursor}-0"}, count=PAGE, block=self.source._block_ms
        )
        entries = stream_entries(reply)
        if entries:
            return sequencer.take(decode_entries(entries))
        await self._check_lost()
        return []

    async def _check_lost(self) -> None:
        """After an empty read: if the stream lost what the log holds, read it from there."""
        log, cursor = self.source._log, self.sequencer.cursor
        if log is None:
            return
        top = await last_id(self.source._redis, self.session, prefix=self.source._prefix)
        if top and top >= cursor:  # the stream is there and just quiet
            return
        # Missing (never written yet, expired) or behind the cursor (Redis restarted).
        logged = await log.last_id(self.session)
        if logged > cursor:
            self.sequencer.hole = (cursor + 1, logged)


class RedisFeed:
    """A `Feed` of one run's events from a `RedisEventSource` (see `RedisEventSource.feed`)."""

    __slots__ = ("_catch_up", "_closed", "_done", "_last", "_reader")

    def __init__(self, reader: _RunReader, after: int) -> None:
        self._reader = reader
        self._last = after
        self._done = False
        self._closed = False
        self._catch_up: Sequencer | None = None  # reads what is older than the ring
        reader.join()

    async def next_batch(self) -> list[Event] | None:
        """See `Feed.next_batch`; raises EventBusError if the run's reader failed."""
        reader = self._reader
        while not self._done:
            if reader.error is not None:
                raise EventBusError(
                    f"reading the events of run {reader.session!r} from Redis failed: "
                    f"{reader.error}"
                ) from reader.error
            if reader.stopped:  # the source was closed
                break
            if self._last < reader.ring.base:
                batch = await self._older()
            else:
                self._catch_up = None
                batch = reader.ring.since(self._last)
                if not batch:
                    if reader.ended:
                        break
                    await reader.wait()
                    continue
            if batch:
                return self._deliver(batch)
        self._done = True
        return None

    async def aclose(self) -> None:
        """Stop following the run (its reader stops soon after its last feed left)."""
        self._done = True
        if not self._closed:
            self._closed = True
            self._reader.leave()

    def _deliver(self, batch: list[Event]) -> list[Event]:
        first = batch[0]
        if is_gap(first) and int(first.metadata["first_missed_id"]) <= self._last:
            # A gap that began before this feed's position: say only what this feed missed.
            last = int(first.metadata["last_missed_id"])
            batch = [gap_event(self._last + 1, last, first.session_id), *batch[1:]]
        for index, event in enumerate(batch):
            if event.is_stream_end():
                del batch[index + 1 :]
                self._done = True
                break
        self._last = covered(batch)
        return batch

    async def _older(self) -> list[Event]:
        """The next page older than the ring, from Redis (and the log for its holes)."""
        reader = self._reader
        source = reader.source
        sequencer = self._catch_up
        if sequencer is None or sequencer.cursor != self._last:
            sequencer = Sequencer(self._last, source._log, reader.session, source._fill_timeout)
            self._catch_up = sequencer
        base = reader.ring.base
        backoff = Backoff()
        while True:
            try:
                if sequencer.backlog:
                    return await sequencer.fill()
                reply = await source._redis.xrange(
                    reader.key, f"{sequencer.cursor + 1}-0", f"{base}-0", count=PAGE
                )
            except _TRANSIENT:
                if reader.stopped:
                    return []
                await backoff.sleep()
                continue
            events = decode_entries(reply)
            if not events:  # Redis no longer has them: the log may
                sequencer.hole = (sequencer.cursor + 1, base)
                continue
            page = sequencer.take(events)
            if page:
                return page


class RedisEventSource(AsyncResource):
    """Serves the events of any run from Redis Streams to this process's SSE clients.

    One source per web-server process. `feed(session_id, after)` follows a run from the id
    after `after` to its STREAM_END; one reader task per run serves every feed of that run,
    and stops `linger` seconds after its last feed closed. Events the stream lacks are read
    from `log` (if given), what neither has is reported as a GAP_SCOPE diagnostic; ids are
    never skipped silently, repeated, or reordered within a feed. While Redis is down the
    readers retry with backoff, and their feeds wait.

    Args:
        redis: a ``redis://`` URL (the source opens a client and closes it) or a client of
            `redis.asyncio` (left open). Its socket timeout must exceed `block`.
        log: the durable event log the workers write (e.g. `PostgresEventLog`), or None.
        prefix: the start of every stream key, as given to `RedisEventSink`.
        block: seconds each XREAD waits for new entries.
        ring: how many of a run's latest events each reader keeps for its feeds (up to twice
            as many); feeds further back read Redis themselves.
        fill_timeout: how long to wait for the log to catch up with a hole before reporting
            the rest of it as missed.
        linger: seconds a reader outlives its last feed, so a quick reconnection reuses it.
    """

    __slots__ = (
        "_block_ms",
        "_closed",
        "_fill_timeout",
        "_linger",
        "_log",
        "_owned",
        "_prefix",
        "_readers",
        "_redis",
        "_ring",
    )

    def __init__(
        self,
        redis: str | Redis,
        *,
        log: EventLog | None = None,
        prefix: str = DEFAULT_PREFIX,
        block: float = 1.0,
        ring: int = 2048,
        fill_timeout: float = 5.0,
        linger: float = 1.0,
    ) -> None:
        if block <= 0:
            raise ValueError(f"block must be a positive number of seconds; got {block!r}")
        if ring < 1:
            raise ValueError(f"ring must be at least 1; got {ring!r}")
        self._redis, self._owned = connect(redis)
        self._log = log
        self._prefix = prefix
        self._block_ms = max(1, round(block * 1000))
        self._ring = ring
        self._fill_timeout = fill_timeout
        self._linger = linger
        self._readers: dict[str, _RunReader] = {}
        self._closed = False

    @property
    def readers(self) -> int:
        """How many runs this process reads now (one reader each)."""
        return len(self._readers)

    def feed(self, session_id: str, after: int = 0) -> RedisFeed:
        """A feed of the run's events with ids above `after` (a client's Last-Event-ID).

        Raises:
            EventBusError: the source is closed.
        """
        if self._closed:
            raise EventBusError("this RedisEventSource is closed; create a new one")
        reader = self._readers.get(session_id)
        if reader is None:
            # It starts at `after - 1`: if that is the run's last event (a client reconnecting
            # after the end), the first read says so.
            reader = _RunReader(self, session_id, max(after - 1, 0))
            self._readers[session_id] = reader
        return RedisFeed(reader, after)

    async def ping(self) -> bool:
        """True if Redis answers within a second; never raises."""
        try:
            async with asyncio.timeout(1.0):
                return bool(await self._redis.ping())
        except Exception:
            return False

    async def aclose(self) -> None:
        """Stop every reader (their feeds end) and close the client if the source opened it."""
        if self._closed:
            return
        self._closed = True
        readers = list(self._readers.values())
        for reader in readers:
            reader.stop()
        tasks = [reader.task for reader in readers if reader.task is not None]
        if tasks:
            await asyncio.wait(tasks)
        if self._owned:
            await self._redis.aclose()

    def _forget(self, reader: _RunReader) -> None:
        if self._readers.get(reader.session) is reader:
            del self._readers[reader.session]
