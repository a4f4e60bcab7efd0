"""The PostgreSQL run queue: claims under leases, retries, cancellation, notices and stats."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncIterator
from datetime import UTC

import psycopg
import pytest

from services import free_port
from weavegraph._errors import QueueError, WeavegraphError
from weavegraph._time import format_timestamp
from weavegraph.distributed._queue import Notice, QueuedRun, QueueStats, RunQueue


@pytest.fixture
async def queue(postgres_dsn: str) -> AsyncIterator[RunQueue]:
    async with RunQueue(postgres_dsn) as q:
        yield q


def rows(dsn: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(sql).fetchall()


async def test_enqueue_and_get_round_trip(queue: RunQueue) -> None:
    state = {"messages": [{"role": "user", "content": "héllo"}], "x": 1.5, "z": None, "a": [1]}
    run = await queue.enqueue("g", state, run_id="r1")
    assert run == await queue.get("r1")
    assert (run.id, run.graph, run.input, run.status, run.attempt, run.max_attempts) == (
        "r1", "g", state, "queued", 0, 3
    )  # fmt: skip
    assert list(run.input) == ["messages", "x", "z", "a"]  # JSON kept verbatim, key order too
    assert run.created_at.tzinfo is UTC
    assert not run.finished
    assert run.to_json() == {
        "id": "r1",
        "graph": "g",
        "status": "queued",
        "attempt": 0,
        "max_attempts": 3,
        "lease_owner": None,
        "lease_expires_at": None,
        "cancel_requested": False,
        "created_at": format_timestamp(run.created_at),
        "started_at": None,
        "finished_at": None,
        "error": None,
    }
    fresh = await queue.enqueue("g", {}, max_attempts=1)
    assert len(fresh.id) == 32
    assert fresh.max_attempts == 1
    assert await queue.get("nope") is None


async def test_a_taken_run_id_is_a_queue_error(queue: RunQueue) -> None:
    await queue.enqueue("g", {"n": 1}, run_id="r1")
    with pytest.raises(QueueError, match="a run with id 'r1' exists already; pass another run_id"):
        await queue.enqueue("h", {"n": 2}, run_id="r1")
    assert issubclass(QueueError, WeavegraphError)
    run = await queue.get("r1")
    assert run is not None
    assert (run.graph, run.input) == ("g", {"n": 1})


async def test_bad_arguments_are_value_errors(queue: RunQueue) -> None:
    with pytest.raises(ValueError, match="max_attempts must be at least 1; got 0"):
        RunQueue("host=127.0.0.1", max_attempts=0)
    with pytest.raises(ValueError, match="max_attempts must be at least 1; got 0"):
        await queue.enqueue("g", {}, max_attempts=0)
    with pytest.raises(ValueError, match="a lease is a positive number of seconds; got 0"):
        await queue.claim("g", "w", lease=0)
    run = await queue.enqueue("g", {})
    await queue.claim("g", "w", lease=10)
    with pytest.raises(ValueError, match="got status 'running'"):
        await queue.finish(run.id, "w", "running")


async def test_claims_are_first_in_first_out_and_held_while_leased(queue: RunQueue) -> None:
    for run_id in ("a", "b", "c"):
        await queue.enqueue("g", {}, run_id=run_id)
    await queue.enqueue("other", {}, run_id="o")
    claimed = [await queue.claim("g", f"w{i}", lease=30) for i in range(3)]
    assert [run.id for run in claimed if run] == ["a", "b", "c"]
    assert await queue.claim("g", "w9", lease=30) is None
    first = claimed[0]
    assert first is not None
    assert (first.status, first.attempt, first.lease_owner) == ("running", 1, "w0")
    assert first.started_at is not None
    assert first.lease_expires_at is not None
    assert 29 < (first.lease_expires_at - first.started_at).total_seconds() <= 30
    other = await queue.claim("other", "w9", lease=30)
    assert other is not None
    assert other.id == "o"


async def test_concurrent_claimers_take_each_run_exactly_once(postgres_dsn: str) -> None:
    queues = [RunQueue(postgres_dsn, max_size=2) for _ in range(4)]  # 4 pools, 4 "processes"
    try:
        await asyncio.gather(*(q.setup() for q in queues))
        ids = [(await queues[0].enqueue("g", {"n": n})).id for n in range(50)]

        async def claimer(q: RunQueue, owner: str) -> list[str]:
            taken = []
            while (run := await q.claim("g", owner, lease=30)) is not None:
                taken.append(run.id)
            return taken

        taken = await asyncio.gather(*(claimer(queues[i % 4], f"w{i}") for i in range(8)))
    finally:
        for q in queues:
            await q.aclose()
    every = [run_id for one in taken for run_id in one]
    assert len(every) == 50
    assert sorted(every) == sorted(ids)
    assert sum(1 for one in taken if one) > 1  # the work was shared


async def test_an_expired_lease_passes_to_another_worker(queue: RunQueue) -> None:
    run = await queue.enqueue("g", {})
    await queue.claim("g", "first", lease=0.2)
    assert await queue.claim("g", "second", lease=30) is None  # still held
    await asyncio.sleep(0.3)
    again = await queue.claim("g", "second", lease=30)
    assert again is not None
    assert (again.id, again.attempt, again.lease_owner) == (run.id, 2, "second")
    assert await queue.heartbeat("first", [run.id], lease=30) == {}
    assert await queue.finish(run.id, "first", "succeeded") is False
    assert await queue.fail_attempt(run.id, "first", "boom") == ""
    assert await queue.release(run.id, "first") is False
    assert await queue.heartbeat("second", [run.id], lease=30) == {run.id: False}
    assert await queue.finish(run.id, "second", "succeeded") is True


async def test_heartbeats_keep_the_lease_and_report_cancellation(queue: RunQueue) -> None:
    run = await queue.enqueue("g", {})
    await queue.claim("g", "w", lease=0.3)
    for _ in range(5):
        await asyncio.sleep(0.2)
        assert await queue.heartbeat("w", [run.id, "unknown"], lease=0.3) == {run.id: False}
        assert await queue.claim("g", "thief", lease=30) is None
    await queue.cancel(run.id)
    assert await queue.heartbeat("w", [run.id], lease=30) == {run.id: True}


async def test_a_failed_attempt_is_retried_until_max_attempts(queue: RunQueue) -> None:
    run = await queue.enqueue("g", {}, max_attempts=2)
    await queue.claim("g", "w", lease=30)
    assert await queue.fail_attempt(run.id, "w", "boom 1") == "queued"
    back = await queue.get(run.id)
    assert back is not None
    assert (back.status, back.attempt, back.lease_owner, back.lease_expires_at) == (
        "queued", 1, None, None
    )  # fmt: skip
    assert (back.error, back.finished_at) == ("boom 1", None)
    second = await queue.claim("g", "w", lease=30)
    assert second is not None
    assert second.attempt == 2
    assert await queue.fail_attempt(run.id, "w", "boom 2") == "failed"
    failed = await queue.get(run.id)
    assert failed is not None
    assert (failed.status, failed.error, failed.finished) == ("failed", "boom 2", True)
    assert failed.finished_at is not None
    assert await queue.claim("g", "w", lease=30) is None


async def test_a_run_that_keeps_losing_its_worker_is_failed_at_claim(queue: RunQueue) -> None:
    poisoned = await queue.enqueue("g", {}, run_id="poisoned", max_attempts=2)
    for attempt in (1, 2):
        claimed = await queue.claim("g", f"w{attempt}", lease=0.1)
        assert claimed is not None
        assert (claimed.id, claimed.attempt) == (poisoned.id, attempt)
        await asyncio.sleep(0.15)
    await queue.enqueue("g", {}, run_id="next")
    taken = await queue.claim("g", "w3", lease=30)
    assert taken is not None
    assert taken.id == "next"
    failed = await queue.get("poisoned")
    assert failed is not None
    assert (failed.status, failed.attempt, failed.lease_owner) == ("failed", 2, None)
    assert failed.error == "worker w2 lost on attempt 2 of 2 (its lease expired); giving up"
    assert failed.finished_at is not None
    assert queue.take_abandoned() == [failed]
    assert queue.take_abandoned() == []


async def test_release_hands_the_run_back_without_counting_an_attempt(queue: RunQueue) -> None:
    run = await queue.enqueue("g", {})
    claimed = await queue.claim("g", "w", lease=30)
    assert claimed is not None
    assert await queue.release(run.id, "other") is False
    assert await queue.release(run.id, "w") is True
    back = await queue.get(run.id)
    assert back is not None
    assert (back.status, back.attempt, back.lease_owner, back.lease_expires_at) == (
        "queued", 0, None, None
    )  # fmt: skip
    assert back.started_at == claimed.started_at
    again = await queue.claim("g", "w2", lease=30)
    assert again is not None
    assert (again.attempt, again.started_at) == (1, claimed.started_at)


async def test_cancel_in_every_status(queue: RunQueue) -> None:
    queued = await queue.enqueue("g", {}, run_id="queued")
    cancelled = await queue.cancel(queued.id)
    assert (cancelled.status, cancelled.cancel_requested) == ("cancelled", True)
    assert cancelled.finished_at is not None
    assert await queue.claim("g", "w", lease=30) is None

    running = await queue.enqueue("g", {}, run_id="running")
    await queue.claim("g", "w", lease=30)
    asked = await queue.cancel(running.id)
    assert (asked.status, asked.cancel_requested, asked.lease_owner) == ("running", True, "w")
    assert await queue.finish(running.id, "w", "cancelled") is True
    done = await queue.get(running.id)
    assert done is not None
    assert (done.status, done.lease_owner, done.error, done.finished) == (
        "cancelled", None, None, True
    )  # fmt: skip
    assert await queue.cancel(running.id) == done  # finished: unchanged
    with pytest.raises(LookupError) as unknown:
        await queue.cancel("unknown")
    assert unknown.value.args == ("unknown",)


async def test_a_released_run_with_a_pending_cancel_is_cancelled_at_claim(
    queue: RunQueue,
) -> None:
    run = await queue.enqueue("g", {})
    await queue.claim("g", "w", lease=30)
    await queue.cancel(run.id)
    assert await queue.release(run.id, "w") is True
    assert await queue.claim("g", "w2", lease=30) is None
    [abandoned] = queue.take_abandoned()
    assert (abandoned.id, abandoned.status, abandoned.error) == (run.id, "cancelled", None)


async def test_finish_ends_a_held_run_once(queue: RunQueue) -> None:
    run = await queue.enqueue("g", {})
    await queue.claim("g", "w", lease=30)
    assert await queue.finish(run.id, "w", "failed", error="bad input") is True
    assert await queue.finish(run.id, "w", "succeeded") is False
    done = await queue.get(run.id)
    assert done is not None
    assert (done.status, done.error, done.lease_owner, done.lease_expires_at) == (
        "failed", "bad input", None, None
    )  # fmt: skip
    assert done.finished_at is not None
    assert done.started_at is not None
    assert done.finished_at >= done.started_at


async def test_listen_hears_new_work_and_cancellations(queue: RunQueue) -> None:
    async with queue.listen() as listener:
        run = await queue.enqueue("g", {})
        assert await listener.wait(1) == [Notice("runs", "g")]
        await queue.claim("g", "w", lease=30)
        await queue.cancel(run.id)
        assert await listener.wait(1) == [Notice("cancel", run.id)]
        await queue.release(run.id, "w")
        assert await listener.wait(1) == [Notice("runs", "g")]
        started = time.monotonic()
        assert await listener.wait(0.1) == []
        assert time.monotonic() - started < 0.5
        await listener.setup()  # twice is harmless
    await listener.aclose()


async def test_a_listener_reconnects_after_its_connection_dies(
    queue: RunQueue, postgres_dsn: str
) -> None:
    async with queue.listen() as listener:
        killed = rows(
            postgres_dsn,
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE query LIKE 'LISTEN%' AND datname = current_database()",
        )
        assert killed == [(True,)]
        with pytest.raises(QueueError, match="could not wait for notices"):
            await listener.wait(1)
        assert await listener.wait(0.05) == []  # connected again
        await queue.enqueue("g", {})
        assert await listener.wait(1) == [Notice("runs", "g")]


async def test_stats_count_runs_and_recent_workers(queue: RunQueue) -> None:
    for n in range(3):
        await queue.enqueue("g", {"n": n})
    await queue.enqueue("h", {})
    running = await queue.claim("g", "w", lease=30)
    assert running is not None
    assert await queue.heartbeat("w", [running.id], lease=30, graph="g") == {running.id: False}
    stats = await queue.stats()
    assert (stats.queued, stats.running) == (3, 1)
    assert stats.oldest_queued_age is not None
    assert stats.oldest_queued_age > 0
    [worker] = stats.workers
    assert isinstance(worker["seen_at"], str)
    assert worker == {
        "owner": "w",
        "graph": "g",
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "seen_at": worker["seen_at"],
    }
    only_h = await queue.stats("h")
    assert (only_h.queued, only_h.running, only_h.workers) == (1, 0, [])
    only_g = await queue.stats("g")
    assert only_g.to_json() == {
        "queued": 2,
        "running": 1,
        "oldest_queued_age": only_g.oldest_queued_age,
        "workers": [worker],
    }
    await queue.heartbeat("w", [], lease=30)  # no graph: the last one is kept
    assert [w["graph"] for w in (await queue.stats()).workers] == ["g"]
    await queue.forget_worker("w")
    assert (await queue.stats()).workers == []
    empty = await queue.stats("nothing")
    assert empty == QueueStats(0, 0, None, [])


async def test_setup_twice_and_from_several_processes_at_once(postgres_dsn: str) -> None:
    queues = [RunQueue(postgres_dsn, max_size=1) for _ in range(4)]
    try:
        await asyncio.gather(*(q.setup() for q in queues))
        await queues[0].setup()
        await queues[1].enqueue("g", {}, run_id="r")
        assert isinstance(await queues[2].get("r"), QueuedRun)
    finally:
        for q in queues:
            await q.aclose()
        await queues[0].aclose()  # twice is harmless
    assert rows(postgres_dsn, "SELECT component, version FROM weavegraph_migrations") == [
        ("runs", 1)
    ]
    tables = "SELECT tablename FROM pg_tables WHERE tablename LIKE 'weavegraph%' ORDER BY 1"
    assert rows(postgres_dsn, tables) == [
        ("weavegraph_migrations",),
        ("weavegraph_runs",),
        ("weavegraph_workers",),
    ]


async def test_ping_and_an_unreachable_server(postgres_dsn: str) -> None:
    q = RunQueue(postgres_dsn)
    assert await q.ping() is True  # before setup: a connection of its own
    async with q:
        assert await q.ping() is True
    nowhere = f"host=127.0.0.1 port={free_port()} user=postgres dbname=x"
    down = RunQueue(nowhere, open_timeout=0.5)
    started = time.monotonic()
    assert await down.ping() is False
    assert time.monotonic() - started < 2
    with pytest.raises(QueueError, match=r"on 127\.0\.0\.1:\d+: could not connect within 0\.5 s"):
        await down.enqueue("g", {})
    with pytest.raises(QueueError, match="could not connect to listen for notices"):
        async with down.listen():
            pass
