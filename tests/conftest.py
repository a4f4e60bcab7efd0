"""Fixtures for real servers, shared by every test folder.

PostgreSQL: `WEAVEGRAPH_TEST_POSTGRES_DSN` if set (its role must be allowed to create
databases), otherwise a throwaway cluster started once for the test session. Redis:
`WEAVEGRAPH_TEST_REDIS_URL` if set, otherwise a throwaway server started once for the session;
each test that asks for `redis_url` starts from an empty server. A test that restarts Redis
asks for `own_redis` (a server of its own). See `services`.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Callable, Iterator
from typing import TypeVar

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from services import RedisServer, ServiceError, postgres_server, redis_server

_numbers = itertools.count(1)
S = TypeVar("S")


@contextlib.contextmanager
def _started(start: Callable[[], contextlib.AbstractContextManager[S]], what: str) -> Iterator[S]:
    """A throwaway server from `services`; a test fails (not errors) when it cannot start."""
    try:
        server_cm = start()
        server = server_cm.__enter__()
    except ServiceError as exc:
        pytest.fail(f"cannot start {what}: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server_cm.__exit__(None, None, None)


@pytest.fixture(scope="session")
def postgres_admin_dsn() -> Iterator[str]:
    """The DSN of a PostgreSQL server whose role may create databases."""
    dsn = os.environ.get("WEAVEGRAPH_TEST_POSTGRES_DSN")
    if dsn:
        yield dsn
        return
    with _started(postgres_server, "the test PostgreSQL server") as server:
        yield server.dsn


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


@pytest.fixture(scope="session")
def redis_session_url() -> Iterator[str]:
    """The URL of a Redis server shared by the test session."""
    url = os.environ.get("WEAVEGRAPH_TEST_REDIS_URL")
    if url:
        yield url
        return
    with _started(redis_server, "the test Redis server") as server:
        yield server.url


@pytest.fixture
def redis_url(redis_session_url: str) -> str:
    """The shared Redis server, emptied for this test."""
    import redis

    client = redis.Redis.from_url(redis_session_url)
    try:
        client.flushall()
    finally:
        client.close()
    return redis_session_url


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A Redis server for this test alone (it may stop and restart it)."""
    with _started(redis_server, "a test Redis server") as server:
        yield server
