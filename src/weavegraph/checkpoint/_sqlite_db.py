"""One SQLite database file served by one worker thread (used by the checkpointer and event log).

sqlite3 blocks, so the event loop never touches the connection: a dedicated thread owns it
and runs the calls queued to it one at a time, in order. One thread (rather than
`asyncio.to_thread` per call) keeps a single connection, its statement cache and the order of
writes, and costs one queue hand-off per call. A second thread with its own connection copies
the write-ahead log into the database file (see `_WalCopier`), so no save waits for that.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import sqlite3
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from typing import Generic, TypeVar

from .._errors import WeavegraphError
from .._time import format_timestamp, utc_now
from ._migrations import MIGRATIONS_TABLE, SQLITE, Component

__all__ = ["SQLiteDatabase", "nothing", "transaction"]

T = TypeVar("T")
E = TypeVar("E", bound=WeavegraphError)
_SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
_COPY_EVERY = 64  # write calls between two background WAL checkpoints (~300 pages)
_WAL_BACKSTOP = 10_000  # pages: past this the writer checkpoints itself, bounding the WAL


class _Job(Generic[T]):
    __slots__ = ("fn", "future", "loop", "what")

    def __init__(
        self,
        what: str,
        fn: Callable[[], T],
        future: asyncio.Future[T],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.what, self.fn, self.future, self.loop = what, fn, future, loop


def _settle(future: asyncio.Future[T], result: T, error: BaseException | None) -> None:
    if future.done():  # the caller was cancelled and no longer waits
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _advice(exc: BaseException) -> str:
    text = str(exc).lower()
    if "readonly" in text or "read-only" in text:
        return "make the file, its -wal and -shm files and its directory writable"
    if "locked" in text or "busy" in text:
        return "another connection held the write lock longer than the busy timeout"
    if "unable to open" in text or isinstance(exc, OSError):
        return "check that the path names a file in a directory that exists or can be created"
    return "check that it is a weavegraph database on a disk with room"


class _WalCopier:
    """Copies committed WAL pages into the database file, on a thread and connection of its own.

    SQLite's automatic checkpoint runs inside a COMMIT every 1,000 pages, and its writes and
    fsync stall that one save for tens of milliseconds. A PASSIVE checkpoint from another
    connection does the same work beside the writer without blocking it (the GIL is released
    while SQLite works). The writer keeps its own automatic checkpoint at a higher limit as a
    backstop, so the WAL stays bounded when writes outpace the copier.
    """

    __slots__ = ("_path", "_stop", "_thread", "_wake")

    def __init__(self, path: str) -> None:
        self._path = path
        self._wake = threading.Event()
        self._stop = False
        self._thread = threading.Thread(
            target=self._run, name=f"weavegraph-sqlite-wal-{os.path.basename(path)}", daemon=True
        )
        self._thread.start()

    def nudge(self) -> None:
        """Ask for a checkpoint (one at a time; nudges during one coalesce)."""
        self._wake.set()

    def stop(self) -> None:
        """End the thread after the checkpoint under way, if any."""
        self._stop = True
        self._wake.set()
        self._thread.join()

    def _run(self) -> None:
        conn = sqlite3.connect(self._path, isolation_level=None)
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stop:
                    return
                # Failures need no report: the writer's own checkpoint is the backstop.
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        finally:
            conn.close()


class SQLiteDatabase(Generic[E]):
    """A database file, its connection and the worker thread that owns it.

    Args:
        path: the database file (its parent directory is created), or ":memory:".
        components: the schema components to migrate on first use.
        error: the error type raised for every database failure.
        read_only: open with ``mode=ro``: reads work, every write fails.
        busy_timeout: seconds to wait for another connection's write lock.
        synchronous: SQLite's `synchronous` pragma. NORMAL (the default) in WAL mode never
            corrupts the file; a power loss may undo the last commits, a crash of the process
            does not.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        components: Sequence[Component],
        error: type[E],
        read_only: bool = False,
        busy_timeout: float = 5.0,
        synchronous: str = "NORMAL",
    ) -> None:
        if synchronous.upper() not in _SYNCHRONOUS:
            raise ValueError(f"synchronous must be one of {', '.join(_SYNCHRONOUS)}")
        raw = os.fspath(path)
        self.path = raw if raw == ":memory:" else os.path.abspath(raw)
        self.read_only = read_only
        self._components = tuple(components)
        self._error = error
        self._busy_timeout = busy_timeout
        self._synchronous = synchronous.upper()
        self._jobs: queue.SimpleQueue[_Job[object] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        # Touched only by the worker thread:
        self._conn: sqlite3.Connection | None = None
        self._copier: _WalCopier | None = None
        self._changes = self._writes = 0
        self._closed = False

    # -- the event loop side ---------------------------------------------------------------

    async def call(self, what: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(connection)` on the worker thread and return its result.

        `what` names the operation for error messages ("save checkpoint …"). A call cancelled
        before the thread started it is skipped; once started it runs to its end.

        Raises:
            E: the database failed (the message names the file and what to do).
        """
        if self._closed:
            raise self._error(f"SQLite database {self.path} is closed; cannot {what}")
        if self._thread is None:
            # A daemon: a database nobody closed must not keep the interpreter alive; SQLite's
            # journal undoes a transaction cut short at exit.
            self._thread = threading.Thread(
                target=self._run, name=f"weavegraph-sqlite-{os.path.basename(self.path)}"
            )
            self._thread.daemon = True
            self._thread.start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        job = _Job(what, lambda: fn(self._connect()), future, loop)
        self._jobs.put(job)  # type: ignore[arg-type]
        return await future

    async def close(self) -> None:
        """Close the connection and end the thread, after the calls queued before. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._thread is None:
            return
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._jobs.put(_Job("close", self._disconnect, done, loop))  # type: ignore[arg-type]
        self._jobs.put(None)
        await asyncio.shield(done)

    def fail(self, what: str, exc: BaseException) -> E:
        """The error to raise for `exc`, naming the file and what to do."""
        return self._error(
            f"SQLite database {self.path}: could not {what} ({type(exc).__name__}: {exc}); "
            f"{_advice(exc)}"
        )

    # -- the worker thread -----------------------------------------------------------------

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            if job.future.cancelled():
                continue
            result: object = None
            error: BaseException | None = None
            try:
                result = job.fn()
            except (sqlite3.Error, OSError) as exc:
                error = self.fail(job.what, exc)
                error.__cause__ = exc
            except Exception as exc:  # our own errors (conflicts) and bugs pass through
                error = exc
            with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits
                job.loop.call_soon_threadsafe(_settle, job.future, result, error)
            del job, result, error  # do not keep the last result alive while idle
            self._count_write()

    def _count_write(self) -> None:
        conn, copier = self._conn, self._copier
        if conn is None or copier is None or conn.total_changes == self._changes:
            return
        self._changes = conn.total_changes
        self._writes += 1
        if self._writes % _COPY_EVERY == 0:
            copier.nudge()

    def _connect(self) -> sqlite3.Connection:
        if self._conn is not None:
            return self._conn
        memory = self.path == ":memory:"
        if not memory and not self.read_only:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
        target = self.path
        if self.read_only and not memory:
            target = f"file:{urllib.parse.quote(self.path)}?mode=ro"
        # isolation_level=None: no implicit transactions; every write says BEGIN itself.
        conn = sqlite3.connect(
            target, timeout=self._busy_timeout, isolation_level=None, uri=self.read_only
        )
        try:
            wal = not self.read_only and conn.execute("PRAGMA journal_mode=WAL").fetchone()
            conn.execute(f"PRAGMA synchronous={self._synchronous}")
            self._migrate(conn)
            if wal == ("wal",):
                conn.execute(f"PRAGMA wal_autocheckpoint={_WAL_BACKSTOP}")
                self._copier = _WalCopier(self.path)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    def _disconnect(self) -> None:
        if self._copier is not None:
            self._copier.stop()
            self._copier = None
        if self._conn is not None:
            self._conn.close()  # the last connection to close also checkpoints the WAL
            self._conn = None

    def _migrate(self, conn: sqlite3.Connection) -> None:
        applied = _applied(conn)
        for component in self._components:
            if problem := component.too_new(applied.get(component.name, set())):
                raise self._error(f"SQLite database {self.path}: {problem}")
        if not any(c.pending(applied.get(c.name, set())) for c in self._components):
            return
        if self.read_only:
            raise self._error(
                f"SQLite database {self.path} has no up-to-date weavegraph schema; open it "
                "once without read_only to create it"
            )
        with transaction(conn):
            conn.execute(SQLITE.render(MIGRATIONS_TABLE))
            applied = _applied(conn)  # again, under the write lock: another process may be done
            now = format_timestamp(utc_now())
            for component in self._components:
                for migration in component.pending(applied.get(component.name, set())):
                    for statement in migration.statements:
                        conn.execute(SQLITE.render(statement))
                    conn.execute(
                        "INSERT INTO migrations VALUES (?, ?, ?, ?)",
                        (component.name, migration.version, migration.description, now),
                    )


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, or ``ROLLBACK`` if the block raises.

    IMMEDIATE takes the write lock up front, so a read-then-write cannot be overtaken by
    another writer in between (what optimistic saves rely on).
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    finally:
        # Also after a failed COMMIT, so the connection is usable for the next call.
        if conn.in_transaction:
            conn.execute("ROLLBACK")


def _applied(conn: sqlite3.Connection) -> dict[str, set[int]]:
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'migrations'"
    ).fetchone()
    applied: dict[str, set[int]] = {}
    if exists:
        for component, version in conn.execute("SELECT component, version FROM migrations"):
            applied.setdefault(component, set()).add(version)
    return applied


def nothing(conn: sqlite3.Connection) -> None:
    """A call that only opens (and migrates) the database."""
