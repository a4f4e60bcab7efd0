"""A cluster of real processes per test: its own database, a Redis server, workers, servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from cluster import Cluster

from services import RedisServer


def make_cluster(dsn: str, redis_url: str, logdir: Path) -> Iterator[Cluster]:
    """The cluster's effects table, then the cluster; every process stopped afterwards."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE effects (run_id TEXT NOT NULL, node TEXT NOT NULL)")
    cluster = Cluster(dsn, redis_url, logdir)
    try:
        yield cluster
    finally:
        cluster.stop()
        for log in sorted(logdir.glob("*.log")):  # shown by pytest when the test failed
            print(f"--- {log.name}\n{log.read_text(errors='replace')[-4000:]}")


@pytest.fixture
def cluster(postgres_dsn: str, redis_url: str, tmp_path: Path) -> Iterator[Cluster]:
    """Processes on the shared Redis server."""
    yield from make_cluster(postgres_dsn, redis_url, tmp_path)


@pytest.fixture
def cluster_own_redis(
    postgres_dsn: str, own_redis: RedisServer, tmp_path: Path
) -> Iterator[tuple[Cluster, RedisServer]]:
    """Processes on a Redis server of the test's own (which it may restart)."""
    for cluster in make_cluster(postgres_dsn, own_redis.url, tmp_path):
        yield cluster, own_redis
