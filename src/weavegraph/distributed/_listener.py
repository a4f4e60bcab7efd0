"""`Listener`: notices of new work and of cancellations from the run queue's NOTIFY channels."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

try:
    import psycopg
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "the run queue needs psycopg 3 and psycopg_pool: pip install 'weavegraph[postgres]'"
    ) from exc

from .._errors import QueueError
from .._resource import AsyncResource
from ..checkpoint._postgres_db import Connection
from ._queue_sql import CANCEL_CHANNEL, RUNS_CHANNEL

__all__ = ["Listener", "Notice"]

_CHANNELS = {RUNS_CHANNEL: "runs", CANCEL_CHANNEL: "cancel"}


@dataclass(frozen=True, slots=True)
class Notice:
    """A notification: ``runs`` (payload: the graph with new work) or ``cancel`` (the run id)."""

    channel: str
    payload: str


class Listener(AsyncResource):
    """Notices of new work and of cancellations, on a dedicated autocommit connection.

    Made by `RunQueue.listen()`. The connection opens in `setup()` (or the first `wait()`).
    After a failed `wait()` the next one reconnects; notices sent in between are lost, so a
    worker still claims now and then without being told.
    """

    __slots__ = ("_conn", "_dsn", "_location", "_open_timeout")

    def __init__(self, dsn: str, *, location: str, open_timeout: float) -> None:
        self._dsn = dsn
        self._location = location
        self._open_timeout = open_timeout
        self._conn: Connection | None = None

    async def setup(self) -> None:
        """Connect and LISTEN on both channels. Safe to call twice.

        Raises:
            QueueError: the server cannot be reached.
        """
        if self._conn is not None:
            return
        try:
            async with asyncio.timeout(self._open_timeout):
                conn = await psycopg.AsyncConnection.connect(self._dsn, autocommit=True)
        except (psycopg.Error, TimeoutError) as exc:
            raise self._fail("connect to listen for notices", exc) from exc
        try:
            for channel in _CHANNELS:
                await conn.execute(f"LISTEN {channel}")
        except BaseException as exc:
            await conn.close()
            if isinstance(exc, psycopg.Error):
                raise self._fail("listen for notices", exc) from exc
            raise
        self._conn = conn

    async def aclose(self) -> None:
        """Close the connection. Safe to call twice."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    async def wait(self, timeout: float) -> list[Notice]:
        """Wait up to `timeout` seconds for a notice; every notice that arrived, maybe none.

        Raises:
            QueueError: the connection failed (the next call reconnects).
        """
        await self.setup()
        conn = self._conn
        assert conn is not None
        notices: list[Notice] = []
        try:
            await _collect(conn, notices, timeout=timeout, stop_after=1)
            if notices:  # and what came right after, without waiting
                await _collect(conn, notices, timeout=0, stop_after=None)
        except psycopg.Error as exc:
            await self.aclose()
            raise self._fail("wait for notices", exc) from exc
        return notices

    def _fail(self, what: str, exc: BaseException) -> QueueError:
        return QueueError(
            f"{self._location}: could not {what} ({type(exc).__name__}: {str(exc).strip()}); "
            "check that the server is running and reachable, and the connection settings"
        )


async def _collect(
    conn: Connection, into: list[Notice], *, timeout: float, stop_after: int | None
) -> None:
    # A generator left open keeps the connection's lock; aclosing ends it on any exit.
    notifies = conn.notifies(timeout=timeout, stop_after=stop_after)
    async with contextlib.aclosing(notifies) as received:
        async for notify in received:
            channel = _CHANNELS.get(notify.channel)
            if channel is not None:
                into.append(Notice(channel, notify.payload))
