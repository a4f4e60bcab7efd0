"""Backends for the storage tests: in-memory, an SQLite file, and a real PostgreSQL server.

Every PostgreSQL test gets a database of its own (the `postgres_dsn` fixture of the top-level
conftest), so each starts from an empty schema.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from store_backends import Backend
from weavegraph.checkpoint import (
    Checkpointer,
    InMemoryCheckpointer,
    PostgresCheckpointer,
    SQLiteCheckpointer,
)

_numbers = itertools.count(1)


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
