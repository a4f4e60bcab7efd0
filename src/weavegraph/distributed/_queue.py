"""`RunQueue`: runs of graphs queued in PostgreSQL and taken by many workers under leases.

A worker claims the oldest queued run of its graph and holds it under a lease that it renews
with `heartbeat()`. When a worker dies its lease expires and another worker claims the run
again, up to the run's `max_attempts` claims in all. `listen()` tells workers when work arrives
or a run is to be cancelled, so they need not poll often.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

try:
    import psycopg
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "the run queue needs psycopg 3 and psycopg_pool: pip install 'weavegraph[postgres]'"
    ) from exc

from .._errors import QueueError
from .._json import JSONValue
from .._resource import AsyncResource
from .._time import format_timestamp
from ..checkpoint._codec import dumps
from ..checkpoint._migrations import RUNS as RUNS_SCHEMA
from ..checkpoint._postgres_db import Connection, Cursor, PostgresDatabase, execute
from . import _queue_sql as sql
from ._listener import Listener, Notice
from ._queue_records import FINISHED, QueuedRun, QueueStats, run_from_row

__all__ = ["Listener", "Notice", "QueueStats", "QueuedRun", "RunQueue"]


class RunQueue(AsyncResource):
    """A queue of graph runs in PostgreSQL, shared by many worker and web processes.

    Args:
        dsn: a libpq connection string or URL.
        min_size, max_size: bounds of the connection pool.
        max_attempts: claims a run gets by default before it is failed for good.
        open_timeout: seconds `setup()` (and `listen()`) wait for the server.

    Raises (from every method that reaches the database):
        QueueError: the database failed; the message names the table and what to do.
    """

    __slots__ = ("_abandoned", "_db", "_dsn", "_max_attempts", "_open_timeout")

    def __init__(
        self,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        max_attempts: int = 3,
        open_timeout: float = 30.0,
    ) -> None:
        _check_attempts(max_attempts)
        self._db = PostgresDatabase(
            dsn,
            components=(RUNS_SCHEMA,),
            error=QueueError,
            min_size=min_size,
            max_size=max_size,
            open_timeout=open_timeout,
            name="weavegraph-runs",
        )
        self._dsn = dsn
        self._max_attempts = max_attempts
        self._open_timeout = open_timeout
        self._abandoned: list[QueuedRun] = []

    async def setup(self) -> None:
        """Open the pool and create or migrate the tables (other methods do it on first use).

        Safe to run from several processes at once.
        """
        await self._db.setup()

    async def aclose(self) -> None:
        """Close the pool. Safe to call twice."""
        await self._db.close()

    async def enqueue(
        self,
        graph: str,
        input: Mapping[str, JSONValue],
        *,
        run_id: str | None = None,
        max_attempts: int | None = None,
    ) -> QueuedRun:
        """Queue a run of `graph` starting from `input` and wake the listening workers.

        Args:
            run_id: the run's (and its session's) id; a fresh random one by default.
            max_attempts: claims the run gets; the queue's default if None.

        Raises:
            QueueError: a run with this id exists already, or the database failed.
            TypeError: `input` is not made of JSON values.
        """
        attempts = self._max_attempts if max_attempts is None else max_attempts
        _check_attempts(attempts)
        run_id = uuid.uuid4().hex if run_id is None else run_id
        params = (run_id, graph, dumps(dict(input)), attempts)
        rows = await self._fetch(f"enqueue run {run_id!r} of graph {graph!r}", sql.ENQUEUE, params)
        if not rows:
            raise QueueError(
                f"{self._db.location}: a run with id {run_id!r} exists already; "
                "pass another run_id, or none for a fresh one"
            )
        return run_from_row(rows[0])

    async def claim(self, graph: str, owner: str, *, lease: float) -> QueuedRun | None:
        """Take the oldest claimable run of `graph` for `owner`, leased for `lease` seconds.

        Claimable are queued runs and running ones whose lease expired. On the way, a run
        whose cancellation was requested is cancelled, and a run whose worker was lost on its
        last allowed attempt is failed; both are kept for `take_abandoned()`.

        Returns:
            The run, now running under `owner`'s lease, or None if there is nothing to do.
        """
        _check_lease(lease)
        pool = await self._db.pool()
        ended: list[QueuedRun] = []
        with self._db.errors(f"claim a run of graph {graph!r}", sql.RUNS):
            async with pool.connection() as conn, conn.transaction():
                taken = await _claim(conn, graph, owner, lease, ended)
        self._abandoned.extend(ended)  # only once committed
        return taken

    def take_abandoned(self) -> list[QueuedRun]:
        """The runs `claim()` on this object failed or cancelled since the last call."""
        taken, self._abandoned = self._abandoned, []
        return taken

    async def heartbeat(
        self, owner: str, run_ids: Sequence[str], *, lease: float, graph: str = ""
    ) -> dict[str, bool]:
        """Extend `owner`'s leases on `run_ids` by `lease` seconds and record the worker as seen.

        Args:
            graph: the worker's graph, shown by `stats()` (an empty string keeps the last one).

        Returns:
            ``{run_id: cancel_requested}`` for the runs `owner` still holds; a run missing
            from it was lost (another worker claimed it, or it finished).
        """
        _check_lease(lease)
        host, pid = socket.gethostname(), os.getpid()
        params = (lease, list(run_ids), owner, owner, graph, host, pid)
        rows = await self._fetch(f"renew the leases of worker {owner!r}", sql.HEARTBEAT, params)
        return dict(rows)

    async def finish(
        self, run_id: str, owner: str, status: str, *, error: str | None = None
    ) -> bool:
        """End a run `owner` holds with `status` (succeeded, failed or cancelled).

        Returns:
            False if `owner` does not hold the run (its lease was taken, or it ended).

        Raises:
            ValueError: `status` is not a final status.
        """
        if status not in FINISHED:
            raise ValueError(
                f"a run finishes as succeeded, failed or cancelled; got status {status!r}"
            )
        params = (status, error, run_id, owner)
        return bool(await self._fetch(f"finish run {run_id!r}", sql.FINISH, params))

    async def fail_attempt(self, run_id: str, owner: str, error: str) -> str:
        """Record a failed attempt: the run is queued again if it has attempts left, else failed.

        Returns:
            The run's new status (``queued`` or ``failed``), or ``""`` if `owner` does not
            hold it.
        """
        params = (error, run_id, owner)
        rows = await self._fetch(f"fail an attempt of run {run_id!r}", sql.FAIL_ATTEMPT, params)
        return str(rows[0][0]) if rows else ""

    async def release(self, run_id: str, owner: str) -> bool:
        """Hand a run back to the queue untouched (a worker shutting down), attempt not counted.

        Returns:
            False if `owner` does not hold the run.
        """
        return bool(await self._fetch(f"release run {run_id!r}", sql.RELEASE, (run_id, owner)))

    async def cancel(self, run_id: str) -> QueuedRun:
        """Cancel a queued run at once, or ask the worker of a running one to stop it.

        A finished run is returned unchanged.

        Raises:
            LookupError: no run has this id.
        """
        pool = await self._db.pool()
        with self._db.errors(f"cancel run {run_id!r}", sql.RUNS):
            async with pool.connection() as conn, conn.transaction():
                cur = await execute(conn, sql.RUNS, sql.LOCK_FOR_CANCEL, (run_id,))
                found = await cur.fetchone()
                if found is None:
                    raise LookupError(run_id)
                query = {"queued": sql.CANCEL_QUEUED, "running": sql.CANCEL_RUNNING}
                cur = await execute(conn, sql.RUNS, query.get(found[0], sql.GET), (run_id,))
                row = await cur.fetchone()
        assert row is not None  # the row is locked
        return run_from_row(row)

    async def get(self, run_id: str) -> QueuedRun | None:
        """The run with this id, or None."""
        rows = await self._fetch(f"read run {run_id!r}", sql.GET, (run_id,))
        return run_from_row(rows[0]) if rows else None

    async def stats(self, graph: str | None = None, *, workers_window: float = 30.0) -> QueueStats:
        """Queued and running runs (of `graph`, or all), and the workers seen lately.

        Args:
            workers_window: a worker counts if it sent a heartbeat within this many seconds.
        """
        pool = await self._db.pool()
        with self._db.errors("read the queue's stats", sql.RUNS):
            async with pool.connection() as conn:
                cur = await execute(conn, sql.RUNS, sql.QUEUE_COUNTS, (graph, graph))
                counts = await cur.fetchone()
                params = (workers_window, graph, graph)
                cur = await execute(conn, sql.WORKERS, sql.WORKERS_SEEN, params)
                seen = await cur.fetchall()
        assert counts is not None  # an aggregate has one row
        workers: list[dict[str, JSONValue]] = [
            {"owner": o, "graph": g, "host": h, "pid": p, "seen_at": format_timestamp(at)}
            for o, g, h, p, at in seen
        ]
        return QueueStats(counts[0], counts[1], counts[2], workers)

    async def forget_worker(self, owner: str) -> None:
        """Remove a worker's row (it is leaving)."""
        pool = await self._db.pool()
        with self._db.errors(f"forget worker {owner!r}", sql.WORKERS):
            async with pool.connection() as conn:
                await execute(conn, sql.WORKERS, sql.FORGET_WORKER, (owner,))

    async def ping(self, *, timeout: float = 2.0) -> bool:
        """True if the server answers ``SELECT 1`` within `timeout` seconds; never raises."""
        try:
            async with asyncio.timeout(timeout):
                pool = self._db.opened
                if pool is not None:
                    async with pool.connection() as conn:
                        await conn.execute("SELECT 1")
                else:
                    conn = await psycopg.AsyncConnection.connect(self._dsn, autocommit=True)
                    try:
                        await conn.execute("SELECT 1")
                    finally:
                        await conn.close()
        except (psycopg.Error, OSError, TimeoutError):
            return False
        return True

    def listen(self) -> Listener:
        """A listener for new work and cancellations, on a connection of its own.

        Use it as ``async with queue.listen() as listener:``.
        """
        return Listener(self._dsn, location=self._db.location, open_timeout=self._open_timeout)

    async def _fetch(
        self, what: str, query: str, params: Sequence[object]
    ) -> list[tuple[Any, ...]]:
        pool = await self._db.pool()
        with self._db.errors(what, sql.RUNS):
            async with pool.connection() as conn:
                return await (await execute(conn, sql.RUNS, query, params)).fetchall()


async def _claim(
    conn: Connection, graph: str, owner: str, lease: float, ended: list[QueuedRun]
) -> QueuedRun | None:
    """Claim inside the caller's transaction; runs ended on the way are appended to `ended`."""
    while True:
        cur = await execute(conn, sql.RUNS, sql.CLAIM_CANDIDATE, (graph,))
        found = await cur.fetchone()
        if found is None:
            return None
        run_id, status, attempt, max_attempts, lease_owner, cancel_requested = found
        if cancel_requested:
            end: tuple[str, str | None] = ("cancelled", None)
        elif status == "running" and attempt >= max_attempts:
            # A run that kills its worker each time must not block the queue forever.
            end = (
                "failed",
                f"worker {lease_owner} lost on attempt {attempt} of {max_attempts} "
                "(its lease expired); giving up",
            )
        else:
            cur = await execute(conn, sql.RUNS, sql.CLAIM_TAKE, (owner, lease, run_id))
            return run_from_row(await _one(cur))
        cur = await execute(conn, sql.RUNS, sql.END_AT_CLAIM, (*end, run_id))
        ended.append(run_from_row(await _one(cur)))


async def _one(cur: Cursor) -> tuple[Any, ...]:
    row = await cur.fetchone()
    assert row is not None  # an update of a row this transaction has locked
    return row


def _check_lease(lease: float) -> None:
    if not lease > 0:
        raise ValueError(f"a lease is a positive number of seconds; got {lease!r}")


def _check_attempts(max_attempts: int) -> None:
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be at least 1; got {max_attempts}")
