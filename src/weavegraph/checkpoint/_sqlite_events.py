"""`SQLiteEventLog`: the durable event log in an SQLite file (table ``events``)."""

from __future__ import annotations

import functools
import os
import sqlite3
from collections.abc import Sequence

from .._errors import EventLogError
from .._event import Event
from .._resource import AsyncResource
from ._eventlog import check_limit, event_rows
from ._migrations import EVENTS
from ._sqlite_db import SQLiteDatabase, nothing, transaction

__all__ = ["SQLiteEventLog"]


class SQLiteEventLog(AsyncResource):
    """An event log in an SQLite file (table ``events``); may share the file of a
    `SQLiteCheckpointer`. Work runs on one thread of its own, like the checkpointer's.

    Args:
        path: the database file; its directory is created if missing.
        busy_timeout: seconds an append waits for another connection's write lock.
        synchronous: SQLite's `synchronous` pragma (see `SQLiteCheckpointer`).

    Raises (from every method):
        EventLogError: the database failed; the message names the file and what to do.
    """

    __slots__ = ("_db",)

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float = 5.0,
        synchronous: str = "NORMAL",
    ) -> None:
        self._db = SQLiteDatabase(
            path,
            components=(EVENTS,),
            error=EventLogError,
            busy_timeout=busy_timeout,
            synchronous=synchronous,
        )

    @property
    def path(self) -> str:
        """The absolute path of the database file."""
        return self._db.path

    async def setup(self) -> None:
        """Open the file and create or migrate its schema (other methods do it on first use)."""
        await self._db.call("set up the event log schema", nothing)

    async def aclose(self) -> None:
        """Close the connection and stop the thread. Safe to call twice."""
        await self._db.close()

    async def append(self, events: Sequence[Event]) -> None:
        """Store events in one transaction (already stored (session, id) pairs are kept)."""
        rows = event_rows(events)
        if rows:
            what = f"append {len(rows)} events (ids {rows[0][1]}..{rows[-1][1]})"
            await self._db.call(what, functools.partial(_insert, rows))

    async def events_after(
        self, session_id: str, event_id: int, *, limit: int | None = None
    ) -> list[Event]:
        """The session's events with an id above `event_id`, in id order, at most `limit`."""
        check_limit(limit)

        def select(conn: sqlite3.Connection) -> list[Event]:
            rows = conn.execute(
                "SELECT body FROM events WHERE session_id = ? AND id > ? ORDER BY id LIMIT ?",
                (session_id, event_id, -1 if limit is None else limit),
            )
            return [Event.from_json(body) for (body,) in rows]

        return await self._db.call(f"read events of session {session_id!r}", select)

    async def last_id(self, session_id: str) -> int:
        """The highest stored event id of the session, or 0."""

        def select(conn: sqlite3.Connection) -> int:
            sql = "SELECT COALESCE(MAX(id), 0) FROM events WHERE session_id = ?"
            found: int = conn.execute(sql, (session_id,)).fetchone()[0]
            return found

        return await self._db.call(f"read the last event id of session {session_id!r}", select)

    async def delete_session(self, session_id: str) -> bool:
        """Forget a session's events; True if there were any."""

        def delete(conn: sqlite3.Connection) -> bool:
            with transaction(conn):
                cur = conn.execute("DELETE FROM events WHERE session_id = ?", (session_id,))
            return cur.rowcount > 0

        return await self._db.call(f"delete the events of session {session_id!r}", delete)


def _insert(rows: list[tuple[str, int, str]], conn: sqlite3.Connection) -> None:
    with transaction(conn):
        conn.executemany("INSERT OR IGNORE INTO events VALUES (?, ?, ?)", rows)
