"""`SQLiteCheckpointer`: every step's checkpoint in an SQLite file (which may also hold the
event log of `_sqlite_events.SQLiteEventLog`).

Tables (see `_migrations.CHECKPOINTS`): ``sessions`` (the latest step of each session, only
ever raised), ``checkpoints`` (one row per session and step, with each channel's version) and
``channel_values`` (each channel version's value, written once). A save is one ``BEGIN
IMMEDIATE`` transaction: claim the session row, write the new channel versions, write the
checkpoint row.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import sqlite3
from collections.abc import Mapping, Sequence

from .._errors import CheckpointError
from .._json import JSONValue
from .._resource import AsyncResource
from .._time import format_timestamp, parse_timestamp
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
from ._migrations import CHECKPOINTS
from ._sqlite_db import SQLiteDatabase, nothing, transaction

__all__ = ["SQLiteCheckpointer"]

_COLUMNS = (
    "session_id, step, channel_versions, frontier, joins, ran_nodes, skipped_nodes, "
    "updated_channels, status, created_at, graph_hash"
)
_Row = tuple[str, int, str, str, str, str, str, str, str, str, str]


class SQLiteCheckpointer(AsyncResource):
    """Keeps every step's checkpoint of every session in an SQLite file (WAL mode).

    All database work runs on one thread that owns the connection, so the event loop never
    blocks on disk; another thread copies the write-ahead log into the file beside it. Several
    processes may share the file; SQLite serialises their writes.

    Args:
        path: the database file; its directory is created if missing. The file may also hold
            a `SQLiteEventLog`.
        read_only: open the file for reading only (e.g. a dashboard); saves raise.
        busy_timeout: seconds a save waits for another process's write lock.
        synchronous: SQLite's `synchronous` pragma; "NORMAL" (the default) survives a crash
            of the process, "FULL" also a power loss, at several times the cost per save.
        max_remembered_sessions: how many sessions' written channel versions to remember (a
            forgotten session's unchanged values are re-sent and ignored by the database).

    Raises (from every method):
        CheckpointError: the database failed; the message names the file and what to do.
            A failed save stores nothing; a save cancelled once under way still completes
            (or fails) as a whole.
    """

    __slots__ = ("_db", "_written")

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        read_only: bool = False,
        busy_timeout: float = 5.0,
        synchronous: str = "NORMAL",
        max_remembered_sessions: int = 4096,
    ) -> None:
        self._db = SQLiteDatabase(
            path,
            components=(CHECKPOINTS,),
            error=CheckpointError,
            read_only=read_only,
            busy_timeout=busy_timeout,
            synchronous=synchronous,
        )
        self._written = WrittenValues(max_remembered_sessions)  # used on the worker thread only

    @property
    def path(self) -> str:
        """The absolute path of the database file."""
        return self._db.path

    async def setup(self) -> None:
        """Open the file and create or migrate its schema (other methods do this on first use)."""
        await self._db.call("set up the checkpoint schema", nothing)

    async def aclose(self) -> None:
        """Close the connection and stop the thread. Safe to call twice."""
        await self._db.close()

    # -- writing -----------------------------------------------------------------------------

    async def save(
        self, checkpoint: Checkpoint, *, expected_step: int | _AnyStep | None = ANY_STEP
    ) -> None:
        """Store `checkpoint` in one transaction; see `Checkpointer.save` for `expected_step`."""
        what = f"save checkpoint of session {checkpoint.session_id!r} step {checkpoint.step}"
        await self._db.call(what, functools.partial(self._save, checkpoint, expected_step))

    def _save(
        self, checkpoint: Checkpoint, expected: int | _AnyStep | None, conn: sqlite3.Connection
    ) -> None:
        session, step, state = checkpoint.session_id, checkpoint.step, checkpoint.state
        versions = state.versions
        with transaction(conn):
            epoch = _claim(conn, session, step, expected)
            new = self._written.missing(session, epoch, versions)
            for channel, version in new:  # usually one: execute() costs less than executemany()
                text = self._written.encode(session, state, channel)
                conn.execute(
                    "INSERT OR IGNORE INTO channel_values VALUES (?, ?, ?, ?)",
                    (session, channel, version, text),
                )
            conn.execute(
                f"INSERT OR REPLACE INTO checkpoints ({_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    session,
                    step,
                    *checkpoint_fields(checkpoint),
                    status_text(checkpoint),
                    format_timestamp(checkpoint.created_at),
                    checkpoint.graph_hash,
                ),
            )
        final = checkpoint.status in FINAL_STATUSES
        self._written.add(session, epoch, new, final=final)  # only once committed

    async def delete_session(self, session_id: str) -> bool:
        """Forget a session's checkpoints and values; True if it had any."""
        return await self._db.call(
            f"delete session {session_id!r}", functools.partial(self._delete, session_id)
        )

    def _delete(self, session_id: str, conn: sqlite3.Connection) -> bool:
        with transaction(conn):
            found = conn.execute("DELETE FROM sessions WHERE session_id = ?", (session_id,))
            conn.execute("DELETE FROM checkpoints WHERE session_id = ?", (session_id,))
            conn.execute("DELETE FROM channel_values WHERE session_id = ?", (session_id,))
        self._written.forget(session_id)
        return found.rowcount > 0

    # -- reading -----------------------------------------------------------------------------

    async def load_latest(self, session_id: str) -> Checkpoint | None:
        """The checkpoint with the highest step, or None for an unknown session."""
        sql = (
            f"SELECT {_COLUMNS} FROM checkpoints WHERE session_id = ? AND step = "
            "(SELECT latest_step FROM sessions WHERE session_id = ?)"
        )
        found = await self._read(f"load session {session_id!r}", sql, (session_id, session_id))
        return found[0] if found else None

    async def load(self, session_id: str, step: int) -> Checkpoint | None:
        """The checkpoint of one step, or None."""
        sql = f"SELECT {_COLUMNS} FROM checkpoints WHERE session_id = ? AND step = ?"
        what = f"load session {session_id!r} step {step}"
        found = await self._read(what, sql, (session_id, step))
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
        ran_test = "EXISTS (SELECT 1 FROM json_each(ran_nodes) WHERE value = ?)"
        where, params = history_where(
            session_id, from_step, to_step, ran_node, mark="?", ran_test=ran_test
        )
        order = "DESC" if newest_first else "ASC"
        sql = (
            f"SELECT {_COLUMNS} FROM checkpoints WHERE {where} "
            f"ORDER BY step {order} LIMIT ? OFFSET ?"
        )
        params += [-1 if limit is None else limit, offset]  # LIMIT -1: no limit
        return await self._read(f"read the history of session {session_id!r}", sql, params)

    async def list_sessions(self) -> Sequence[str]:
        """Every session with at least one checkpoint, sorted (by code point)."""

        def select(conn: sqlite3.Connection) -> list[str]:
            rows = conn.execute("SELECT session_id FROM sessions ORDER BY session_id")
            return [session_id for (session_id,) in rows]

        return await self._db.call("list sessions", select)

    async def _read(self, what: str, sql: str, params: Sequence[object]) -> list[Checkpoint]:
        def select(conn: sqlite3.Connection) -> list[Checkpoint]:
            rows: list[_Row] = conn.execute(sql, params).fetchall()
            return _decode(conn, rows)

        return await self._db.call(what, select)


_CLAIM_ANY = (
    "INSERT INTO sessions VALUES (?, ?, ?) ON CONFLICT (session_id) "
    "DO UPDATE SET latest_step = max(latest_step, excluded.latest_step) RETURNING epoch"
)
_CLAIM_NEW = "INSERT INTO sessions VALUES (?, ?, ?) ON CONFLICT DO NOTHING RETURNING epoch"
_CLAIM_NEXT = (
    "UPDATE sessions SET latest_step = max(latest_step, ?) "
    "WHERE session_id = ? AND latest_step = ? RETURNING epoch"
)


def _claim(
    conn: sqlite3.Connection, session: str, step: int, expected: int | _AnyStep | None
) -> int:
    """Raise the session's latest step to `step` if `expected` allows; the session's epoch."""
    epoch = secrets.randbits(62)
    # fetchall(): a RETURNING statement must run to its end before COMMIT.
    if isinstance(expected, _AnyStep):  # an upsert always returns its row
        return int(conn.execute(_CLAIM_ANY, (session, step, epoch)).fetchall()[0][0])
    if expected is None:
        claimed = conn.execute(_CLAIM_NEW, (session, step, epoch)).fetchall()
    else:
        claimed = conn.execute(_CLAIM_NEXT, (step, session, expected)).fetchall()
    if claimed:
        return int(claimed[0][0])
    sql = "SELECT latest_step FROM sessions WHERE session_id = ?"
    found = conn.execute(sql, (session,)).fetchone()
    raise conflict(session, expected, None if found is None else int(found[0]))


def _decode(conn: sqlite3.Connection, rows: list[_Row]) -> list[Checkpoint]:
    """Checkpoints from their rows, each channel value fetched and parsed once."""
    if not rows:
        return []
    session_id = rows[0][0]
    versions = [json.loads(row[2]) for row in rows]
    values: dict[ChannelKey, JSONValue] = {}
    for channel, version in needed_values(versions):
        found = conn.execute(
            "SELECT value FROM channel_values WHERE session_id = ? AND channel = ? AND version = ?",
            (session_id, channel, version),
        ).fetchone()
        if found is not None:
            values[channel, version] = json.loads(found[0])
    return [_checkpoint(row, v, values) for row, v in zip(rows, versions, strict=True)]


def _checkpoint(
    row: _Row, versions: Mapping[str, int], values: Mapping[ChannelKey, JSONValue]
) -> Checkpoint:
    session_id, step, _, *lists, status, created_at, graph_hash = row
    return make_checkpoint(
        session_id,
        step,
        versions,
        [json.loads(text) for text in lists],
        status,
        parse_timestamp(created_at),
        graph_hash,
        values,
    )
