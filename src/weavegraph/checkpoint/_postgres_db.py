"""A PostgreSQL database reached through a psycopg connection pool (checkpointer and event log).

The pool is created and opened explicitly in `setup()` (psycopg_pool's implicit open is
deprecated). Migrations run under a transaction-scoped advisory lock, so several processes
may call `setup()` at once: one migrates, the others wait and then find nothing to do.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Sequence
from typing import Generic, TypeAlias, TypeVar

try:
    import psycopg
    from psycopg import errors as pg_errors
    from psycopg.abc import Params, QueryNoTemplate
    from psycopg.conninfo import conninfo_to_dict
    from psycopg.rows import TupleRow
    from psycopg_pool import AsyncConnectionPool, PoolTimeout
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise ImportError(
        "the PostgreSQL backends need psycopg 3 and psycopg_pool: "
        "pip install 'weavegraph[postgres]'"
    ) from exc

from .._errors import WeavegraphError
from .._time import utc_now
from ._migrations import MIGRATIONS_TABLE, POSTGRES, Component

__all__ = ["Connection", "Cursor", "Pool", "PostgresDatabase", "execute"]

E = TypeVar("E", bound=WeavegraphError)
Connection: TypeAlias = psycopg.AsyncConnection[TupleRow]
Pool: TypeAlias = AsyncConnectionPool[Connection]
Cursor: TypeAlias = psycopg.AsyncCursor[TupleRow]

# pg_advisory_xact_lock key for migrations: the bytes of "weavegra" as a big-endian bigint.
_MIGRATION_LOCK = int.from_bytes(b"weavegra", "big")


def _advice(exc: BaseException) -> str:
    if isinstance(exc, pg_errors.InsufficientPrivilege):
        return "grant the connecting role SELECT, INSERT, UPDATE and DELETE on it"
    if isinstance(exc, pg_errors.UndefinedTable):
        return "run setup() with a role that may create tables"
    if isinstance(exc, psycopg.OperationalError):
        return "check that the server is running and reachable, and the connection settings"
    return "see the server log for details"


class _TableError(Exception):
    """A statement on `table` failed (turned into the caller's error by `errors()`)."""

    def __init__(self, table: str, cause: psycopg.Error) -> None:
        super().__init__(table)
        self.table = table
        self.cause = cause


async def execute(
    conn: Connection, table: str, query: QueryNoTemplate, params: Params | None = None
) -> Cursor:
    """Run one statement, remembering which table it was about if it fails."""
    try:
        return await conn.execute(query, params)
    except psycopg.Error as exc:
        raise _TableError(table, exc) from exc


class PostgresDatabase(Generic[E]):
    """A connection pool, the schema it needs, and the translation of its errors.

    Args:
        dsn: a libpq connection string or URL.
        components: the schema components to migrate in `setup()`.
        error: the error type raised for every database failure.
        min_size, max_size: the pool's bounds.
        open_timeout: seconds `setup()` waits for the first `min_size` connections.
        name: the pool's name (in psycopg_pool's logs).
    """

    def __init__(
        self,
        dsn: str,
        *,
        components: Sequence[Component],
        error: type[E],
        min_size: int,
        max_size: int,
        open_timeout: float,
        name: str,
    ) -> None:
        if not 0 < min_size <= max_size:
            raise ValueError(f"need 0 < min_size <= max_size; got {min_size}, {max_size}")
        self._dsn = dsn
        self._components = tuple(components)
        self._error = error
        self._sizes = (min_size, max_size)
        self._open_timeout = open_timeout
        self._name = name
        self._pool: Pool | None = None
        self._lock = asyncio.Lock()
        self._closed = False
        self.location = _describe(dsn)

    def table(self, name: str) -> str:
        """The full name of one of the tables (``weavegraph_<name>``)."""
        return POSTGRES.prefix + name

    @property
    def opened(self) -> Pool | None:
        """The pool if `setup()` has opened it and it is not closed yet, else None."""
        return self._pool

    async def pool(self) -> Pool:
        """The open pool, setting up on first use.

        Raises:
            E: the server cannot be reached, or the schema cannot be created.
        """
        pool = self._pool
        if pool is not None:
            return pool
        await self.setup()
        assert self._pool is not None
        return self._pool

    async def setup(self) -> None:
        """Open the pool and create or migrate the schema. Safe to call twice."""
        async with self._lock:
            if self._closed:
                raise self._error(f"{self.location}: closed; create a new object to reconnect")
            if self._pool is not None:
                return
            min_size, max_size = self._sizes
            pool: Pool = AsyncConnectionPool(
                self._dsn,
                min_size=min_size,
                max_size=max_size,
                open=False,
                kwargs={"autocommit": True},  # writes say `async with conn.transaction()`
                name=self._name,
            )
            try:
                await self._open(pool)
            except BaseException:
                await pool.close()
                raise
            self._pool = pool

    async def _open(self, pool: Pool) -> None:
        try:
            await pool.open(wait=True, timeout=self._open_timeout)
        except PoolTimeout as exc:
            raise self._error(
                f"{self.location}: could not connect within {self._open_timeout:g} s ({exc}); "
                "check that the server is running and reachable, and the connection settings"
            ) from exc
        with self.errors("set up the schema", self.table("migrations")):
            async with pool.connection() as conn:
                await self._migrate(conn)

    async def close(self) -> None:
        """Close the pool. Idempotent."""
        async with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    @contextlib.contextmanager
    def errors(self, what: str, table: str) -> Iterator[None]:
        """Translate database failures in the block into E, naming the failed statement's
        table (or `table` when the failure is not a statement's: connecting, committing)."""
        try:
            yield
        except _TableError as failed:
            raise self.fail(what, failed.table, failed.cause) from failed.cause
        except psycopg.Error as exc:
            raise self.fail(what, table, exc) from exc

    def fail(self, what: str, table: str, exc: BaseException) -> E:
        """The error to raise for `exc`: what failed, on which table, and what to do."""
        return self._error(
            f"{self.location}: could not {what}: table {table} "
            f"({type(exc).__name__}: {str(exc).strip()}); {_advice(exc)}"
        )

    async def _migrate(self, conn: Connection) -> None:
        applied = await _applied(conn)
        for component in self._components:
            if problem := component.too_new(applied.get(component.name, set())):
                raise self._error(f"{self.location}: {problem}")
        if not any(c.pending(applied.get(c.name, set())) for c in self._components):
            return
        async with conn.transaction():
            # Held until commit: concurrent setup() calls migrate one after the other.
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            await conn.execute(POSTGRES.render(MIGRATIONS_TABLE))
            applied = await _applied(conn)  # again, under the lock: another may be done
            insert = f"INSERT INTO {self.table('migrations')} VALUES (%s, %s, %s, %s)"
            for component in self._components:
                for migration in component.pending(applied.get(component.name, set())):
                    for statement in migration.statements:
                        await conn.execute(POSTGRES.render(statement))
                    await conn.execute(
                        insert,
                        (component.name, migration.version, migration.description, utc_now()),
                    )


async def _applied(conn: Connection) -> dict[str, set[int]]:
    table = POSTGRES.prefix + "migrations"
    cur = await conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,))
    exists = await cur.fetchone()
    applied: dict[str, set[int]] = {}
    if exists is not None and exists[0]:
        cur = await conn.execute(f"SELECT component, version FROM {table}")
        for component, version in await cur.fetchall():
            applied.setdefault(component, set()).add(version)
    return applied


def _describe(dsn: str) -> str:
    """Where a DSN points, without its password: ``PostgreSQL database app on host:port``."""
    try:
        info = conninfo_to_dict(dsn)
    except psycopg.Error:
        return "PostgreSQL database (unparsable connection string)"
    host = info.get("host") or "localhost"
    port = info.get("port") or "5432"
    return f"PostgreSQL database {info.get('dbname') or info.get('user') or '?'} on {host}:{port}"
