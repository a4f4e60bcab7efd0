"""Backends for the storage tests: in-memory, an SQLite file, and a real PostgreSQL server.

The server is `WEAVEGRAPH_TEST_POSTGRES_DSN` if set (its role must be allowed to create
databases), otherwise a throwaway cluster started for this test session (see `services`).
Every test gets a database of its own, so each starts from an empty schema.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from services import ServiceError, postgres_server
from store_backends import Backend
from weavegraph.checkpoint import (
    Checkpointer,
    InMemoryCheckpointer,
    PostgresCheckpointer,
    SQLiteCheckpointer,
)

_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_admin_dsn() -> Iterator[str]:
    """The DSN of a PostgreSQL server whose role may create databases."""
    dsn = os.environ.get("WEAVEGRAPH_TEST_POSTGRES_DSN")
    if dsn:
        yield dsn
        return
    try:
        server_cm = postgres_server()
        server = server_cm.__enter__()
    except ServiceError as exc:
        pytest.fail(f"cannot start the test PostgreSQL server: {exc}", pytrace=False)
    try:
        yield server.dsn
    finally:
        server_cm.__exit__(None, None, None)


@pytest.fixture
def postgres_dsn(postgres_admin_dsn: str) -> Iterator[str]:
    """A fresh, empty database for one test; dropped afterwards."""
    name = f"weavegraph_test_{os.getpid()}_{next(_numbers)}"
    with psycopg.connect(postgres_admin_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_conninfo(postgres_admin_dsn, dbname=name)
    finally:
        with psycopg.connect(postgres_admin_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """Each checkpointer backend in turn."""
    make: Callable[[], Checkpointer]
    if request.param == "memory":
        shared = InMemoryCheckpointer()
        make = lambda: shared  # noqa: E731
    elif request.param == "sqlite":
        path = tmp_path / "checkpoints.db"
        make = lambda: SQLiteCheckpointer(path)  # noqa: E731
    else:
        dsn: str = request.getfixturevalue("postgres_dsn")
        make = lambda: PostgresCheckpointer(dsn, max_size=4)  # noqa: E731
    backend = Backend(request.param, make)
    try:
        yield backend
    finally:
        for store in backend.opened:
            await store.aclose()


@pytest.fixture
async def store(backend: Backend) -> Checkpointer:
    """A set-up checkpointer of each backend."""
    return await backend.open()
