"""What only the SQLite checkpointer has: its file, thread, schema versions and failures."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

import pytest

from weavegraph import CheckpointError, Message, VersionedState
from weavegraph.checkpoint import Checkpoint, SQLiteCheckpointer, SQLiteEventLog
from weavegraph.checkpoint import _migrations as migrations


def cp(session: str, step: int, *, messages_version: int | None = None) -> Checkpoint:
    state = VersionedState(
        messages=[Message.user(f"step {step}")],
        versions={"messages": step + 1 if messages_version is None else messages_version},
    )
    return Checkpoint(session_id=session, step=step, state=state)


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


async def test_wal_mode_schema_versions_and_directory(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "cp.db"
    async with SQLiteCheckpointer(path) as store:
        assert store.path == str(path)
        await store.setup()  # twice is harmless
        await store.save(cp("s", 0))
    assert rows(path, "PRAGMA journal_mode") == [("wal",)]
    assert rows(path, "SELECT component, version, description FROM migrations") == [
        ("checkpoints", 1, "sessions, checkpoints and channel values")
    ]
    assert rows(path, "SELECT session_id, latest_step FROM sessions") == [("s", 0)]


async def test_a_new_migration_is_one_more_list_item(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "cp.db"
    saved = cp("s", 0)
    async with SQLiteCheckpointer(path) as store:
        await store.save(saved)
    runs = migrations.Migration(2, "runs", ("CREATE TABLE {p}runs (run_id TEXT PRIMARY KEY)",))
    extended = migrations.Component("checkpoints", (*migrations.CHECKPOINTS.migrations, runs))
    monkeypatch.setattr("weavegraph.checkpoint._sqlite.CHECKPOINTS", extended)
    async with SQLiteCheckpointer(path) as store:
        assert await store.load_latest("s") == saved
    assert rows(path, "SELECT version FROM migrations ORDER BY version") == [(1,), (2,)]
    assert rows(path, "SELECT name FROM sqlite_master WHERE name = 'runs'") == [("runs",)]


async def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cp.db"
    async with SQLiteCheckpointer(path):
        pass
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO migrations VALUES ('checkpoints', 9, 'future', 'now')")
    store = SQLiteCheckpointer(path)
    with pytest.raises(CheckpointError) as caught:
        await store.setup()
    assert str(caught.value) == (
        f"SQLite database {path}: its checkpoints schema is at version 9, newer than this "
        "weavegraph knows (1); upgrade weavegraph"
    )
    await store.aclose()


async def test_only_changed_channels_are_written(tmp_path: Path) -> None:
    path = tmp_path / "cp.db"
    async with SQLiteCheckpointer(path) as store:
        for step in range(100):
            await store.save(cp("s", step))  # messages changes every step, the others never
    assert rows(path, "SELECT channel, COUNT(*) FROM channel_values GROUP BY channel") == [
        ("errors", 1),
        ("extra", 1),
        ("messages", 100),
    ]
    async with SQLiteCheckpointer(path) as store:  # a restart: nothing remembered
        await store.save(cp("s", 100, messages_version=100))  # an existing version again
        latest = await store.load_latest("s")
        assert latest is not None
        assert latest.state.messages == (Message.user("step 99"),)  # the stored value
    assert rows(path, "SELECT COUNT(*) FROM channel_values") == [(102,)]


async def test_one_worker_thread_per_checkpointer_until_closed(tmp_path: Path) -> None:
    store = SQLiteCheckpointer(tmp_path / "cp.db")
    assert store._db._thread is None  # nothing starts before first use
    seen: set[int] = set()

    def record(conn: sqlite3.Connection) -> None:
        seen.add(threading.get_ident())

    await store.save(cp("s", 0))
    thread = store._db._thread
    assert thread is not None
    assert thread.is_alive()
    await asyncio.gather(*(store.save(cp("s", step)) for step in range(1, 20)))
    await asyncio.gather(*(store._db.call("record the thread", record) for _ in range(5)))
    assert store._db._thread is thread
    assert seen == {thread.ident}
    assert thread.ident != threading.get_ident()  # never the event loop's thread
    await store.aclose()
    await store.aclose()  # twice is harmless
    thread.join(timeout=5)
    assert not thread.is_alive()
    with pytest.raises(CheckpointError, match=r"cp\.db is closed; cannot save checkpoint"):
        await store.save(cp("s", 20))


async def test_checkpointer_and_event_log_share_a_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    async with SQLiteCheckpointer(path) as store, SQLiteEventLog(path) as log:
        await store.save(cp("s", 0))
        assert await log.last_id("s") == 0
    assert rows(path, "SELECT component, version FROM migrations ORDER BY component") == [
        ("checkpoints", 1),
        ("events", 1),
    ]


async def test_read_only_database_refuses_saves_and_keeps_nothing_partial(tmp_path: Path) -> None:
    """A save to a database that cannot be written raises CheckpointError naming the file.

    Tests run as root, and root ignores file modes, so chmod 0o444 proves nothing here.
    Instead the checkpointer opens the file with SQLite's ``mode=ro`` URI (`read_only=True`):
    SQLite itself then refuses every write with SQLITE_READONLY, the same error a read-only
    file gives a normal user. The first write of the save's transaction fails, the
    transaction is rolled back, and a writable checkpointer then finds no trace of it.
    """
    path = tmp_path / "cp.db"
    saved = cp("s", 0)
    async with SQLiteCheckpointer(path) as store:
        await store.save(saved)
    async with SQLiteCheckpointer(path, read_only=True) as reader:
        with pytest.raises(CheckpointError) as caught:
            await reader.save(cp("s", 1))
        assert str(caught.value) == (
            f"SQLite database {path}: could not save checkpoint of session 's' step 1 "
            "(OperationalError: attempt to write a readonly database); make the file, its "
            "-wal and -shm files and its directory writable"
        )
        assert isinstance(caught.value.__cause__, sqlite3.OperationalError)
        assert await reader.load_latest("s") == saved  # reading still works
    async with SQLiteCheckpointer(path) as store:
        assert await store.load("s", 1) is None
        await store.save(cp("s", 1))  # the connection of a writable one works as usual
    assert rows(path, "SELECT step FROM checkpoints") == [(0,), (1,)]


async def test_a_failure_mid_save_rolls_the_whole_save_back(tmp_path: Path) -> None:
    """A save that fails after it already wrote the session row and a channel value (a
    trigger aborts the checkpoint row's insert) leaves none of them behind."""
    path = tmp_path / "cp.db"
    async with SQLiteCheckpointer(path) as store:
        await store.save(cp("s", 0))
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON checkpoints WHEN NEW.step = 1 "
            "BEGIN SELECT RAISE(ABORT, 'disk says no'); END"
        )
    async with SQLiteCheckpointer(path) as store:
        with pytest.raises(CheckpointError, match=r"could not save checkpoint of session 's' "):
            await store.save(cp("s", 1))
        latest = await store.load_latest("s")
        assert latest is not None
        assert latest.step == 0
        await store.save(cp("s", 2))  # the connection is usable after the rollback
    assert rows(path, "SELECT step FROM checkpoints") == [(0,), (2,)]
    assert rows(path, "SELECT latest_step FROM sessions") == [(2,)]
    assert rows(path, "SELECT version FROM channel_values WHERE channel = 'messages'") == [
        (1,),
        (3,),
    ]


async def test_a_directory_in_place_of_the_file(tmp_path: Path) -> None:
    path = tmp_path / "is_a_dir.db"
    path.mkdir()
    store = SQLiteCheckpointer(path)
    with pytest.raises(CheckpointError) as caught:
        await store.load_latest("s")
    assert str(caught.value) == (
        f"SQLite database {path}: could not load session 's' (OperationalError: unable to "
        "open database file); check that the path names a file in a directory that exists "
        "or can be created"
    )
    await store.aclose()


async def test_a_read_only_open_of_a_missing_schema_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    store = SQLiteCheckpointer(path, read_only=True)
    with pytest.raises(CheckpointError, match="open it once without read_only to create it"):
        await store.setup()
    await store.aclose()


async def test_the_wal_is_copied_beside_the_writer(tmp_path: Path) -> None:
    store = SQLiteCheckpointer(tmp_path / "cp.db")
    for step in range(200):  # enough write calls to wake the copier a few times
        await store.save(cp("s", step))

    def settings(conn: sqlite3.Connection) -> tuple[object, ...]:
        row: tuple[object, ...] = conn.execute("PRAGMA wal_autocheckpoint").fetchone()
        return row

    assert await store._db.call("read settings", settings) == (10_000,)  # only a backstop
    copier = store._db._copier
    assert copier is not None
    assert copier._thread.is_alive()
    await store.aclose()
    assert not copier._thread.is_alive()
    assert rows(tmp_path / "cp.db", "SELECT COUNT(*) FROM checkpoints") == [(200,)]
