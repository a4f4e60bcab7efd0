"""What only the PostgreSQL checkpointer has: its pool, concurrent setup, and failures."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

import weavegraph.checkpoint
from services import free_port
from weavegraph import CheckpointError, Message, VersionedState
from weavegraph.checkpoint import Checkpoint, PostgresCheckpointer


def cp(session: str, step: int) -> Checkpoint:
    state = VersionedState(messages=[Message.user(f"step {step}")], versions={"messages": step + 1})
    return Checkpoint(session_id=session, step=step, state=state)


def rows(dsn: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql).fetchall()


def test_the_backend_is_imported_on_first_access() -> None:
    assert weavegraph.checkpoint.PostgresCheckpointer is PostgresCheckpointer
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        _ = weavegraph.checkpoint.Nope


async def test_concurrent_setup_from_several_processes_migrates_once(postgres_dsn: str) -> None:
    # Separate pools are separate server sessions, as separate processes would be.
    stores = [PostgresCheckpointer(postgres_dsn, min_size=1, max_size=1) for _ in range(6)]
    try:
        await asyncio.gather(*(store.setup() for store in stores))
        await stores[0].setup()  # twice is harmless
        await stores[1].save(cp("s", 0))
        assert [c.step for c in await stores[2].history("s")] == [0]
    finally:
        for store in stores:
            await store.aclose()
    assert rows(postgres_dsn, "SELECT component, version FROM weavegraph_migrations") == [
        ("checkpoints", 1)
    ]
    tables = rows(
        postgres_dsn,
        "SELECT tablename FROM pg_tables WHERE tablename LIKE 'weavegraph%' ORDER BY 1",
    )
    assert tables == [
        ("weavegraph_channel_values",),
        ("weavegraph_checkpoints",),
        ("weavegraph_migrations",),
        ("weavegraph_sessions",),
    ]


async def test_only_changed_channels_are_written(postgres_dsn: str) -> None:
    async with PostgresCheckpointer(postgres_dsn) as store:
        for step in range(100):
            await store.save(cp("s", step))
    sql = "SELECT channel, COUNT(*) FROM weavegraph_channel_values GROUP BY 1 ORDER BY 1"
    assert rows(postgres_dsn, sql) == [("errors", 1), ("extra", 1), ("messages", 100)]
    async with PostgresCheckpointer(postgres_dsn) as store:  # a restart: nothing remembered
        await store.save(cp("s", 99))
        assert [c.step for c in await store.history("s", from_step=98)] == [98, 99]
    assert rows(postgres_dsn, "SELECT COUNT(*) FROM weavegraph_channel_values") == [(102,)]


async def test_a_revoked_table_fails_the_save_and_leaves_nothing(postgres_dsn: str) -> None:
    """A role that may not insert into weavegraph_checkpoints: the save fails after it wrote
    the session row and the channel values, the error names the table, and the rollback
    leaves none of them."""
    saved = cp("s", 0)
    async with PostgresCheckpointer(postgres_dsn) as owner:
        await owner.save(saved)
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute("DROP ROLE IF EXISTS weavegraph_limited")
        admin.execute("CREATE ROLE weavegraph_limited LOGIN")
        admin.execute(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public "
            "TO weavegraph_limited"
        )
        admin.execute("REVOKE INSERT ON weavegraph_checkpoints FROM weavegraph_limited")
    limited_dsn = make_conninfo(postgres_dsn, user="weavegraph_limited")
    try:
        async with PostgresCheckpointer(limited_dsn) as limited:
            assert await limited.load_latest("s") == saved  # reading is allowed
            with pytest.raises(CheckpointError) as caught:
                await limited.save(cp("s", 1))
            with pytest.raises(CheckpointError) as caught_new:
                await limited.save(cp("new", 0))
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as admin:
            admin.execute("DROP OWNED BY weavegraph_limited")
            admin.execute("DROP ROLE weavegraph_limited")
    dbname = psycopg.conninfo.conninfo_to_dict(postgres_dsn)["dbname"]
    assert str(caught.value).startswith(f"PostgreSQL database {dbname} on 127.0.0.1:"), caught.value
    assert str(caught.value).endswith(
        ": could not save checkpoint of session 's' step 1: table weavegraph_checkpoints "
        "(InsufficientPrivilege: permission denied for table weavegraph_checkpoints); "
        "grant the connecting role SELECT, INSERT, UPDATE and DELETE on it"
    ), caught.value
    assert "table weavegraph_checkpoints" in str(caught_new.value)
    assert isinstance(caught.value.__cause__, psycopg.errors.InsufficientPrivilege)
    async with PostgresCheckpointer(postgres_dsn) as owner:
        assert await owner.load_latest("s") == saved
        assert await owner.list_sessions() == ["s"]
    assert rows(postgres_dsn, "SELECT session_id, latest_step FROM weavegraph_sessions") == [
        ("s", 0)
    ]
    sql = "SELECT session_id, channel, version FROM weavegraph_channel_values ORDER BY 2"
    assert rows(postgres_dsn, sql) == [("s", "errors", 1), ("s", "extra", 1), ("s", "messages", 1)]


async def test_an_unreachable_server(postgres_dsn: str) -> None:
    dsn = make_conninfo(postgres_dsn, port=str(free_port()), connect_timeout="1")
    store = PostgresCheckpointer(dsn, open_timeout=0.5)
    with pytest.raises(CheckpointError) as caught:
        await store.load_latest("s")
    assert "could not connect within 0.5 s" in str(caught.value)
    assert "check that the server is running and reachable" in str(caught.value)
    await store.aclose()


async def test_closed_checkpointer(postgres_dsn: str) -> None:
    store = PostgresCheckpointer(postgres_dsn)
    await store.save(cp("s", 0))  # sets itself up on first use
    await store.aclose()
    await store.aclose()
    with pytest.raises(CheckpointError, match="closed; create a new object to reconnect"):
        await store.load_latest("s")


def test_pool_bounds_are_checked() -> None:
    with pytest.raises(ValueError, match="need 0 < min_size <= max_size; got 3, 2"):
        PostgresCheckpointer("dbname=x", min_size=3, max_size=2)
