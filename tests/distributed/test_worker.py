"""The worker in-process, on real PostgreSQL and Redis: the paths a cluster test cannot time
(a lease lost to another worker, a hard stop, a cancel seen only by the heartbeat, runs the
queue gave up on) and the event-id takeover between the two stores."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import psycopg
import pytest
from redis.asyncio import Redis

from weavegraph import (
    END,
    START,
    Event,
    EventBus,
    GraphBuilder,
    NodeContext,
    NodePartial,
    StateSnapshot,
    VersionedState,
)
from weavegraph.checkpoint import PostgresCheckpointer, PostgresEventLog
from weavegraph.distributed import QueuedRun, RedisEventSink, RunQueue, Worker
from weavegraph.distributed._redis_sink import connect, decode_entries, stream_key
from weavegraph.distributed._run_stream import next_event_id

GRAPH = "slow"


async def slow(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
    ctx.emit("work", ctx.node)
    await asyncio.sleep(float(snapshot.extra.get("pace", 0.2)))  # type: ignore[arg-type]
    return NodePartial(extra={ctx.node: True})


app = (
    GraphBuilder()
    .add_node("a", slow)
    .add_node("b", slow)
    .add_node("c", slow)
    .add_edge(START, "a")
    .add_edge("a", "b")
    .add_edge("b", "c")
    .add_edge("c", END)
    .compile()
)


@dataclass
class Stores:
    dsn: str
    queue: RunQueue
    checkpointer: PostgresCheckpointer
    log: PostgresEventLog
    redis: Redis

    def worker(self, **options: float) -> Worker:
        return Worker(
            app,
            graph=GRAPH,
            queue=self.queue,
            checkpointer=self.checkpointer,
            event_log=self.log,
            redis=self.redis,
            poll=0.2,
            **options,  # type: ignore[arg-type]
        )

    async def stream(self, run_id: str) -> list[Event]:
        return decode_entries(await self.redis.xrange(stream_key(run_id)))

    def sql(self, statement: str, *params: object) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(statement, params)  # type: ignore[arg-type]


@pytest.fixture
async def stores(postgres_dsn: str, redis_url: str) -> AsyncIterator[Stores]:
    redis = connect(redis_url)[0]
    async with (
        RunQueue(postgres_dsn) as queue,
        PostgresCheckpointer(postgres_dsn) as checkpointer,
        PostgresEventLog(postgres_dsn) as log,
    ):
        yield Stores(postgres_dsn, queue, checkpointer, log, redis)
    await redis.aclose()


async def until(check: Callable[[], Awaitable[bool]], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        assert loop.time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def status(stores: Stores, run_id: str) -> str:
    run = await stores.queue.get(run_id)
    assert run is not None
    return run.status


async def enqueue(stores: Stores, pace: float = 0.2, **options: int) -> str:
    state = VersionedState(extra={"pace": pace}).to_dict()
    return (await stores.queue.enqueue(GRAPH, state, **options)).id


async def test_events_only_redis_got_are_copied_into_the_log(stores: Stores) -> None:
    bus = EventBus([RedisEventSink(stores.redis)])
    async with bus:
        for index in range(5):
            bus.publish(Event.node("work", f"e{index}", node_id="a", session_id="r1"))
    first_three = (await stores.stream("r1"))[:3]
    await stores.log.append(first_three)
    assert await next_event_id(stores.log, stores.redis, "r1") == 6
    assert [e.id for e in await stores.log.events_after("r1", 0)] == [1, 2, 3, 4, 5]
    assert await next_event_id(stores.log, stores.redis, "fresh") == 1


async def test_a_run_completes_and_its_stream_ends_once(stores: Stores) -> None:
    worker = stores.worker(concurrency=2)
    task = asyncio.create_task(worker.run())
    run_id = await enqueue(stores, pace=0.01)
    await until(lambda: _is(stores, run_id, "succeeded"))
    worker.stop()
    await task
    events = await stores.stream(run_id)
    logged = await stores.log.events_after(run_id, 0)
    assert [e.id for e in events] == list(range(1, len(events) + 1))
    assert [e.to_json() for e in logged] == [e.to_json() for e in events]
    assert [e.is_stream_end() for e in events].count(True) == 1
    assert events[-1].metadata["status"] == "completed"
    assert (worker.counts.succeeded, worker.counts.claimed) == (1, 1)


async def test_a_lease_taken_by_another_worker_stops_the_run_here(stores: Stores) -> None:
    worker = stores.worker(lease=0.6)
    task = asyncio.create_task(worker.run())
    run_id = await enqueue(stores, pace=2.0)
    await until(lambda: _is(stores, run_id, "running"))
    stores.sql("UPDATE weavegraph_runs SET lease_owner = 'thief' WHERE id = %s", run_id)
    await until(lambda: _true(worker.counts.lost == 1))
    run = await stores.queue.get(run_id)
    worker.stop()
    await task
    assert run is not None
    assert (run.status, run.lease_owner) == ("running", "thief")  # left to its new owner
    assert not any(e.is_stream_end() for e in await stores.stream(run_id))


async def test_a_second_stop_cancels_at_once_and_leaves_the_lease_to_expire(
    stores: Stores,
) -> None:
    worker = stores.worker(lease=5.0)
    task = asyncio.create_task(worker.run())
    run_id = await enqueue(stores, pace=5.0)
    await until(lambda: _true(worker.active == [run_id]))  # the worker holds it, not just the row
    worker.stop()
    worker.stop()
    await asyncio.wait_for(task, 3)
    run = await stores.queue.get(run_id)
    assert run is not None
    assert (run.status, run.lease_owner) == ("running", worker.owner)
    assert worker.counts.lost == 1


async def test_a_cancel_seen_only_by_the_heartbeat(stores: Stores) -> None:
    worker = stores.worker(lease=0.6)
    task = asyncio.create_task(worker.run())
    run_id = await enqueue(stores, pace=2.0)
    await until(lambda: _is(stores, run_id, "running"))
    stores.sql("UPDATE weavegraph_runs SET cancel_requested = true WHERE id = %s", run_id)
    await until(lambda: _is(stores, run_id, "cancelled"))
    worker.stop()
    await task
    events = await stores.stream(run_id)
    assert events[-1].is_stream_end()
    assert events[-1].metadata["status"] == "cancelled"


async def test_runs_the_queue_gave_up_on_get_their_stream_closed(stores: Stores) -> None:
    lost = await enqueue(stores, max_attempts=1)
    claimed = await stores.queue.claim(GRAPH, "dead-worker", lease=0.1)
    assert claimed is not None
    assert claimed.id == lost
    await asyncio.sleep(0.2)  # its worker "died": the lease expired on its only attempt
    worker = stores.worker()
    task = asyncio.create_task(worker.run())
    await until(lambda: _true(worker.counts.closed == [lost]))
    worker.stop()
    await task
    events = await stores.stream(lost)
    assert [e.id for e in events] == [1, 2]
    assert events[0].message.startswith("run failed: worker dead-worker lost")
    assert events[1].is_stream_end()
    assert events[1].metadata["status"] == "error"
    assert await status(stores, lost) == "failed"


async def test_an_input_that_is_not_a_state_fails_without_retrying(stores: Stores) -> None:
    worker = stores.worker()
    task = asyncio.create_task(worker.run())
    run_id = (await stores.queue.enqueue(GRAPH, {"messages": 3})).id
    await until(lambda: _is(stores, run_id, "failed"))
    worker.stop()
    await task
    run = await stores.queue.get(run_id)
    assert run is not None
    assert run.attempt == 1
    assert (run.error or "").startswith("the run's input is not a valid state:")
    events = await stores.stream(run_id)
    assert events[-1].metadata["status"] == "error"


def test_worker_options_are_checked(stores: Stores) -> None:
    with pytest.raises(ValueError, match="concurrency must be at least 1; got 0"):
        stores.worker(concurrency=0)
    with pytest.raises(ValueError, match=r"lease and poll must be positive; got 0 and 0\.2"):
        stores.worker(lease=0)


async def _is(stores: Stores, run_id: str, wanted: str) -> bool:
    return await status(stores, run_id) == wanted


async def _true(value: bool) -> bool:
    return value


async def test_a_cancel_notice_that_overtakes_the_claim(stores: Stores) -> None:
    worker = stores.worker()
    worker._remember_cancel("old")  # pruned once a minute old
    worker._early_cancels["old"] -= 120
    run_id = await enqueue(stores, pace=0.5)
    worker._remember_cancel(run_id)  # the notice came before the claim returned
    assert list(worker._early_cancels) == [run_id]
    task = asyncio.create_task(worker.run())
    await until(lambda: _is(stores, run_id, "cancelled"))
    worker.stop()
    await task
    events = await stores.stream(run_id)
    assert [e.is_stream_end() for e in events] == [True]
    assert events[0].metadata["status"] == "cancelled"
    assert worker.counts.cancelled == 1


async def test_stop_while_a_run_has_no_session_yet(stores: Stores) -> None:
    from weavegraph.distributed._worker import _Active

    worker = stores.worker()
    run_id = await enqueue(stores)
    run = await stores.queue.get(run_id)
    assert run is not None
    task = asyncio.create_task(asyncio.sleep(0))  # stands for the run's task, not begun
    active = _Active(run, task=task, runner=app.runner())
    worker._active[run_id] = active
    worker.stop()  # the runner has no session for the run yet: nothing to release there
    assert (active.release, active.lost) == (True, False)
    worker.stop()  # its task never started: it is marked, not cancelled
    assert active.lost
    await task
    assert not task.cancelled()


async def test_a_run_claimed_while_the_worker_stops_goes_back_at_once(
    stores: Stores, monkeypatch: pytest.MonkeyPatch
) -> None:
    worker = stores.worker()
    run_id = await enqueue(stores)
    claim = RunQueue.claim

    async def claim_then_stop(
        queue: RunQueue, graph: str, owner: str, *, lease: float
    ) -> QueuedRun | None:
        found = await claim(queue, graph, owner, lease=lease)
        worker.stop()  # SIGTERM arrives while the claim is on its way back
        return found

    monkeypatch.setattr(RunQueue, "claim", claim_then_stop)
    await asyncio.wait_for(worker.run(), 5)
    run = await stores.queue.get(run_id)
    assert run is not None
    assert (run.status, run.lease_owner, run.attempt) == ("queued", None, 0)
    assert worker.counts.claimed == 0
