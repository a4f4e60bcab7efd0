"""`PostgresCheckpointer` and `PostgresEventLog`: checkpoints and events in PostgreSQL.

Tables ``weavegraph_sessions``, ``weavegraph_checkpoints`` and ``weavegraph_channel_values``
(see `_migrations.CHECKPOINTS`). A save is one transaction: claim the session row (a
conditional update when `expected_step` is given, so of two writers exactly one wins), write
the new channel versions, then the checkpoint row.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC
from typing import Any

from .._errors import CheckpointError
from .._event import Event
from .._json import JSONValue
from .._resource import AsyncResource
from ._base import ANY_STEP, Checkpoint, _AnyStep, check_paging
from ._codec import (
    FINAL_STATUSES,
    ChannelKey,
    WrittenValues,
    checkpoint_fields,
    conflict,
    history_where,
    make_checkpoint,
    needed_values,
    status_text,
)
from ._eventlog import EventLogError, check_limit, event_rows
from ._migrations import CHECKPOINTS, EVENTS
from ._postgres_db import Connection, Cursor, PostgresDatabase, execute

__all__ = ["PostgresCheckpointer", "PostgresEventLog"]

_COLUMNS = (
    "session_id, step, channel_versions, frontier, joins, ran_nodes, skipped_nodes, "
    "updated_channels, status, created_at, graph_hash"
)
_SESSIONS = "weavegraph_sessions"
_CHECKPOINTS = "weavegraph_checkpoints"
_VALUES = "weavegraph_channel_values"
_CLAIM_ANY = (
    f"INSERT INTO {_SESSIONS} AS s VALUES (%s, %s, %s) ON CONFLICT (session_id) "
    "DO UPDATE SET latest_step = GREATEST(s.latest_step, EXCLUDED.latest_step) RETURNING epoch"
)
_CLAIM_NEW = (
    f"INSERT INTO {_SESSIONS} VALUES (%s, %s, %s) ON CONFLICT (session_id) DO NOTHING "
    "RETURNING epoch"
)
_CLAIM_NEXT = (
    f"UPDATE {_SESSIONS} SET latest_step = GREATEST(latest_step, %s) "
    "WHERE session_id = %s AND latest_step = %s RETURNING epoch"
)
_UPSERT = (
    f"INSERT INTO {_CHECKPOINTS} ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
    "ON CONFLICT (session_id, step) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in _COLUMNS.split(", ")[2:])
)
_INSERT_VALUES = (
    f"INSERT INTO {_VALUES} SELECT %s, * FROM unnest(%b::text[], %b::bigint[], %b::json[]) "
    "ON CONFLICT DO NOTHING"
)
_VALUES_OF = (
    f"SELECT channel, version, value FROM {_VALUES} WHERE session_id = %s AND "
    "(channel, version) IN (SELECT * FROM unnest(%b::text[], %b::bigint[]))"
)


class PostgresCheckpointer(AsyncResource):
    """Keeps every step's checkpoint of every session in PostgreSQL.

    Args:
        dsn: a libpq connection string or URL (``postgresql://user@host/db``).
        min_size, max_size: bounds of the connection pool.
        open_timeout: seconds `setup()` waits for the server.
        max_remembered_sessions: how many sessions' written channel versions to remember (a
            forgotten session's unchanged values are re-sent and ignored by the database).

    Raises (from every method):
        CheckpointError: the database failed; the message names the table and what to do.
    """

    __slots__ = ("_db", "_written")

    def __init__(
        self,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        open_timeout: float = 30.0,
        max_remembered_sessions: int = 4096,
    ) -> None:
        self._db = PostgresDatabase(
            dsn,
            components=(CHECKPOINTS,),
            error=CheckpointError,
            min_size=min_size,
            max_size=max_size,
            open_timeout=open_timeout,
            name="weavegraph-checkpoints",
        )
        self._written = WrittenValues(max_remembered_sessions)

    async def setup(self) -> None:
        """Open the pool and create or migrate the tables (other methods do it on first use).

        Safe to run from several processes at once.
        """
        await self._db.setup()

    async def aclose(self) -> None:
        """Close the pool. Safe to call twice."""
        await self._db.close()

    # -- writing -----------------------------------------------------------------------------

    async def save(
        self, checkpoint: Checkpoint, *, expected_step: int | _AnyStep | None = ANY_STEP
    ) -> None:
        """Store `checkpoint` in one transaction; see `Checkpointer.save` for `expected_step`.

        The statements go in one pipeline: one round trip to the server and one for the
        commit. The values to write are guessed from the session's remembered epoch; in the
        rare case the claim returns another epoch, the rest are written before the commit.
        """
        session, step, state = checkpoint.session_id, checkpoint.step, checkpoint.state
        pool = await self._db.pool()
        what = f"save checkpoint of session {session!r} step {step}"
        guess = self._written.epoch(session)
        with self._db.errors(what, _CHECKPOINTS):
            async with pool.connection() as conn, conn.pipeline(), conn.transaction():
                claim = await _send_claim(conn, session, step, expected_step)
                new = self._written.missing(session, guess, state.versions)
                if new:
                    texts = [self._written.encode(session, state, c) for c, _ in new]
                    await _insert_values(conn, session, new, texts)
                fields = checkpoint_fields(checkpoint)
                params = (session, step, *fields, status_text(checkpoint), checkpoint.created_at,
                          checkpoint.graph_hash)  # fmt: skip
                await execute(conn, _CHECKPOINTS, _UPSERT, params)
                epoch = await _claimed(conn, claim, session, expected_step)
                if epoch != guess:
                    rest = [k for k in self._written.missing(session, epoch, state.versions)
                            if k not in new]  # fmt: skip
                    if rest:
                        texts = [self._written.encode(session, state, c) for c, _ in rest]
                        await _insert_values(conn, session, rest, texts)
                        new = [*new, *rest]
        final = checkpoint.status in FINAL_STATUSES
        self._written.add(session, epoch, new, final=final)  # only once committed

    async def delete_session(self, session_id: str) -> bool:
        """Forget a session's checkpoints and values; True if it had any."""
        pool = await self._db.pool()
        with self._db.errors(f"delete session {session_id!r}", _SESSIONS):
            async with pool.connection() as conn, conn.transaction():
                for table in (_CHECKPOINTS, _VALUES):
                    sql = f"DELETE FROM {table} WHERE session_id = %s"
                    await execute(conn, table, sql, (session_id,))
                sql = f"DELETE FROM {_SESSIONS} WHERE session_id = %s"
                found = await execute(conn, _SESSIONS, sql, (session_id,))
        self._written.forget(session_id)
        return found.rowcount > 0

    # -- reading -----------------------------------------------------------------------------

    async def load_latest(self, session_id: str) -> Checkpoint | None:
        """The checkpoint with the highest step, or None for an unknown session."""
        sql = (
            f"SELECT {_COLUMNS} FROM {_CHECKPOINTS} WHERE session_id = %s AND step = "
            f"(SELECT latest_step FROM {_SESSIONS} WHERE session_id = %s)"
        )
        found = await self._read(f"load session {session_id!r}", sql, (session_id, session_id))
        return found[0] if found else None

    async def load(self, session_id: str, step: int) -> Checkpoint | None:
        """The checkpoint of one step, or None."""
        sql = f"SELECT {_COLUMNS} FROM {_CHECKPOINTS} WHERE session_id = %s AND step = %s"
        found = await self._read(
            f"load session {session_id!r} step {step}", sql, (session_id, step)
        )
        return found[0] if found else None

    async def history(
        self,
        session_id: str,
        *,
        limit: int | None = None,
        offset: int = 0,
        from_step: int | None = None,
        to_step: int | None = None,
        ran_node: str | None = None,
        newest_first: bool = False,
    ) -> Sequence[Checkpoint]:
        """The session's checkpoints in step order, filtered, then paged."""
        check_paging(limit, offset)
        where, params = history_where(
            session_id, from_step, to_step, ran_node, mark="%s", ran_test="ran_nodes::jsonb ? %s"
        )
        order = "DESC" if newest_first else "ASC"
        sql = (
            f"SELECT {_COLUMNS} FROM {_CHECKPOINTS} WHERE {where} "
            f"ORDER BY step {order} LIMIT %s OFFSET %s"
        )
        params += [limit, offset]  # LIMIT NULL: no limit
        return await self._read(f"read the history of session {session_id!r}", sql, params)

    async def list_sessions(self) -> Sequence[str]:
        """Every session with at least one checkpoint, sorted (by code point)."""
        pool = await self._db.pool()
        # COLLATE "C": byte order of UTF-8, which is code point order, like Python's sorted().
        sql = f'SELECT session_id FROM {_SESSIONS} ORDER BY session_id COLLATE "C"'
        with self._db.errors("list sessions", _SESSIONS):
            async with pool.connection() as conn:
                rows = await (await execute(conn, _SESSIONS, sql)).fetchall()
        return [str(session_id) for (session_id,) in rows]

    async def _read(self, what: str, sql: str, params: Sequence[object]) -> list[Checkpoint]:
        pool = await self._db.pool()
        with self._db.errors(what, _CHECKPOINTS):
            async with pool.connection() as conn:
                rows = await (await execute(conn, _CHECKPOINTS, sql, params)).fetchall()
                if not rows:
                    return []
                values = await _values(conn, rows[0][0], [row[2] for row in rows])
        return [_checkpoint(row, values) for row in rows]


async def _send_claim(
    conn: Connection, session: str, step: int, expected: int | _AnyStep | None
) -> Cursor:
    """Send the statement raising the session's latest step to `step` if `expected` allows."""
    epoch = secrets.randbits(62)
    if isinstance(expected, _AnyStep):
        return await execute(conn, _SESSIONS, _CLAIM_ANY, (session, step, epoch))
    if expected is None:
        return await execute(conn, _SESSIONS, _CLAIM_NEW, (session, step, epoch))
    # Row-locked: a concurrent writer expecting the same step waits for our commit, then
    # finds latest_step changed and updates nothing.
    return await execute(conn, _SESSIONS, _CLAIM_NEXT, (step, session, expected))


async def _claimed(
    conn: Connection, claim: Cursor, session: str, expected: int | _AnyStep | None
) -> int:
    """The session's epoch from the claim; raises the conflict if the claim took nothing."""
    row = await claim.fetchone()
    if row is not None:
        return int(row[0])
    assert not isinstance(expected, _AnyStep)  # an upsert always returns its row
    sql = f"SELECT latest_step FROM {_SESSIONS} WHERE session_id = %s"
    found = await (await execute(conn, _SESSIONS, sql, (session,))).fetchone()
    raise conflict(session, expected, None if found is None else int(found[0]))


async def _insert_values(
    conn: Connection, session: str, keys: Sequence[ChannelKey], texts: Sequence[str]
) -> None:
    """Write channel values (one statement over arrays, whatever their number)."""
    params = (session, [c for c, _ in keys], [v for _, v in keys], list(texts))
    await execute(conn, _VALUES, _INSERT_VALUES, params)


async def _values(
    conn: Connection, session: str, versions: Sequence[Mapping[str, int]]
) -> dict[ChannelKey, JSONValue]:
    keys = sorted(needed_values(versions))
    params = (session, [c for c, _ in keys], [v for _, v in keys])
    rows = await (await execute(conn, _VALUES, _VALUES_OF, params)).fetchall()
    return {(channel, version): value for channel, version, value in rows}


def _checkpoint(row: tuple[Any, ...], values: Mapping[ChannelKey, JSONValue]) -> Checkpoint:
    session_id, step, versions, *lists, status, created_at, graph_hash = row
    return make_checkpoint(
        session_id,
        step,
        versions,
        lists,
        status,
        created_at.astimezone(UTC),
        graph_hash,
        values,
    )


_EVENTS = "weavegraph_events"


class PostgresEventLog(AsyncResource):
    """An event log in PostgreSQL (table ``weavegraph_events``), for many processes.

    Args:
        dsn: a libpq connection string or URL.
        min_size, max_size: bounds of the connection pool.
        open_timeout: seconds `setup()` waits for the server.

    Raises (from every method):
        EventLogError: the database failed; the message names the table and what to do.
    """

    __slots__ = ("_db",)

    def __init__(
        self, dsn: str, *, min_size: int = 1, max_size: int = 10, open_timeout: float = 30.0
    ) -> None:
        self._db = PostgresDatabase(
            dsn,
            components=(EVENTS,),
            error=EventLogError,
            min_size=min_size,
            max_size=max_size,
            open_timeout=open_timeout,
            name="weavegraph-events",
        )

    async def setup(self) -> None:
        """Open the pool and create or migrate the table (other methods do it on first use)."""
        await self._db.setup()

    async def aclose(self) -> None:
        """Close the pool. Safe to call twice."""
        await self._db.close()

    async def append(self, events: Sequence[Event]) -> None:
        """Store events in one statement (already stored (session, id) pairs are kept)."""
        rows = event_rows(events)
        if not rows:
            return
        # One INSERT over arrays: a batch costs one round trip, whatever its size. The arrays
        # go in binary (%b): the text format escapes every quote of every JSON text.
        sql = (
            f"INSERT INTO {_EVENTS} SELECT * FROM unnest(%b::text[], %b::bigint[], %b::json[]) "
            "ON CONFLICT DO NOTHING"
        )
        pool = await self._db.pool()
        with self._db.errors(
            f"append {len(rows)} events (ids {rows[0][1]}..{rows[-1][1]})", _EVENTS
        ):
            async with pool.connection() as conn:
                await execute(conn, _EVENTS, sql, [list(col) for col in zip(*rows, strict=True)])

    async def events_after(
        self, session_id: str, event_id: int, *, limit: int | None = None
    ) -> list[Event]:
        """The session's events with an id above `event_id`, in id order, at most `limit`."""
        check_limit(limit)
        sql = f"SELECT body FROM {_EVENTS} WHERE session_id = %s AND id > %s ORDER BY id LIMIT %s"
        rows = await self._fetch(
            f"read events of session {session_id!r}", sql, (session_id, event_id, limit)
        )
        return [Event.from_dict(body) for (body,) in rows]

    async def last_id(self, session_id: str) -> int:
        """The highest stored event id of the session, or 0."""
        sql = f"SELECT COALESCE(MAX(id), 0) FROM {_EVENTS} WHERE session_id = %s"
        rows = await self._fetch(f"read the last event id of {session_id!r}", sql, (session_id,))
        return int(rows[0][0])

    async def delete_session(self, session_id: str) -> bool:
        """Forget a session's events; True if there were any."""
        sql = f"DELETE FROM {_EVENTS} WHERE session_id = %s"
        pool = await self._db.pool()
        with self._db.errors(f"delete the events of session {session_id!r}", _EVENTS):
            async with pool.connection() as conn:
                cur = await execute(conn, _EVENTS, sql, (session_id,))
        return cur.rowcount > 0

    async def _fetch(self, what: str, sql: str, params: Sequence[object]) -> list[tuple[Any, ...]]:
        pool = await self._db.pool()
        with self._db.errors(what, _EVENTS):
            async with pool.connection() as conn:
                return await (await execute(conn, _EVENTS, sql, params)).fetchall()
