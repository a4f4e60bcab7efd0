"""The workloads, written the way a weavegraph user would write them.

Each function builds its graph, runs it once untimed (warm-up), then times the measured part
and checks what it computed. `workloads_langgraph.py` has the same workloads for LangGraph.
"""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from bench_common import Result, Sizes, Stopwatch, check

from weavegraph import (
    END,
    START,
    App,
    AppRunner,
    EventBus,
    EventStream,
    GraphBuilder,
    InMemoryCheckpointer,
    Message,
    NodeContext,
    NodePartial,
    ReducerRegistry,
    StateSnapshot,
    VersionedState,
    sum_keys,
)
from weavegraph.checkpoint import Checkpointer, SQLiteCheckpointer

if TYPE_CHECKING:
    from weavegraph._node import NodeFunction

# Published by the runtime after each node (weavegraph._lifecycle.NODE_FINISHED_SCOPE).
NODE_FINISHED = "__weavegraph_node_finished__"


# -- graphs -----------------------------------------------------------------------------------


async def add_one(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
    return NodePartial(extra={"counter": 1})


def add_one_sync(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
    return NodePartial(extra={"counter": 1})


def chain_app(n: int, node: NodeFunction = add_one) -> App:
    """START -> n0 -> … -> n{n-1} -> END, each node adding 1 to extra["counter"]."""
    builder = GraphBuilder().with_reducers(ReducerRegistry().replace("extra", sum_keys("counter")))
    names = [f"n{i}" for i in range(n)]
    for name in names:
        builder.add_node(name, node)
    for source, target in zip([START, *names], [*names, END], strict=True):
        builder.add_edge(source, target)
    return builder.compile()


def counter_state() -> VersionedState:
    return VersionedState(extra={"counter": 0})


def _check_counter(final: VersionedState, n: int) -> None:
    counter = final.extra["counter"]
    check(counter == n, f"the chain of {n} nodes counted {counter}")


def fanout_app(k: int) -> App:
    """START -> b0 … b{k-1} (each appends a message) -> join (counts them) -> END."""

    def branch(index: int) -> NodeFunction:
        async def node(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
            return NodePartial(messages=[Message.assistant(f"b{index}")])

        return node

    async def join(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
        return NodePartial(extra={"joined": len(snapshot.messages)})

    builder = GraphBuilder().add_node("join", join).add_edge("join", END)
    names = [f"b{i}" for i in range(k)]
    for index, name in enumerate(names):
        builder.add_node(name, branch(index)).add_edge(START, name)
    return builder.add_edge(names, "join").compile()


def emitter_app(every: int) -> App:
    """One node emitting `extra["m"]` events, yielding to the loop every `every` events."""

    async def produce(snapshot: StateSnapshot, ctx: NodeContext) -> None:
        emit = ctx.emit
        sleep = asyncio.sleep
        for i in range(1, snapshot.extra["m"] + 1):
            emit("tick", "x")
            if i % every == 0:
                await sleep(0)

    builder = GraphBuilder().add_node("produce", produce)
    return builder.add_edge(START, "produce").add_edge("produce", END).compile()


# -- the workloads ----------------------------------------------------------------------------


async def chain(sizes: Sizes) -> Result:
    app = chain_app(sizes.chain)
    await app.invoke(counter_state())
    with Stopwatch() as watch:
        for _ in range(sizes.runs):
            final = await app.invoke(counter_state())
            _check_counter(final, sizes.chain)
    return Result(sizes.chain * sizes.runs, watch.seconds)


def chain_sync(sizes: Sizes) -> Result:
    app = chain_app(sizes.chain, add_one_sync)
    app.invoke_sync(counter_state())
    with Stopwatch() as watch:
        for _ in range(sizes.runs):
            final = app.invoke_sync(counter_state())
            _check_counter(final, sizes.chain)
    return Result(sizes.chain * sizes.runs, watch.seconds)


async def fanout(sizes: Sizes) -> Result:
    app = fanout_app(sizes.fanout)
    await app.invoke()
    with Stopwatch() as watch:
        for _ in range(sizes.fanout_runs):
            final = await app.invoke()
            check(len(final.messages) == sizes.fanout, f"{len(final.messages)} branch messages")
            check(final.extra["joined"] == sizes.fanout, f"join saw {final.extra['joined']}")
    return Result((sizes.fanout + 1) * sizes.fanout_runs, watch.seconds)


async def _count_node_events(stream: EventStream) -> tuple[int, int]:
    """(events of kind "node" received, events dropped) until the stream ends."""
    received = 0
    async with stream:
        async for event in stream:
            if event.kind == "node":
                received += 1
    return received, stream.dropped


async def _stream_events(app: App, m: int) -> tuple[int, int]:
    invocation, stream = await app.invoke_streaming(VersionedState(extra={"m": m}))
    counted = await _count_node_events(stream)
    await invocation.join()
    return counted


async def _events(sizes: Sizes, every: int) -> Result:
    app = emitter_app(every)
    await _stream_events(app, 1000)
    with Stopwatch() as watch:
        received, dropped = await _stream_events(app, sizes.events)
    check(received == sizes.events, f"received {received} of {sizes.events} events")
    check(dropped == 0, f"the stream dropped {dropped} events")
    return Result(received, watch.seconds)


async def events(sizes: Sizes) -> Result:
    return await _events(sizes, sizes.batch)


async def events_yield(sizes: Sizes) -> Result:
    return await _events(sizes, 1)


async def _broadcast(app: App, m: int, consumers: int) -> list[tuple[int, int]]:
    bus = EventBus()
    async with AppRunner(app, event_bus=bus) as runner, bus:
        session = uuid.uuid4().hex
        streams = [bus.subscribe(session_id=session) for _ in range(consumers)]
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(_count_node_events(s)) for s in streams]
            await runner.create_session(VersionedState(extra={"m": m}), session_id=session)
            await runner.run_until_complete(session)
    return [task.result() for task in tasks]


async def events_multi(sizes: Sizes) -> Result:
    app = emitter_app(sizes.batch)
    await _broadcast(app, 1000, sizes.consumers)
    with Stopwatch() as watch:
        seen = await _broadcast(app, sizes.events, sizes.consumers)
    want = [(sizes.events, 0)] * sizes.consumers
    check(seen == want, f"(received, dropped) per consumer: {seen}; want {want}")
    return Result(sizes.events, watch.seconds)


async def _updates_run(runner: AppRunner, n: int) -> None:
    session = uuid.uuid4().hex
    stream = runner.event_bus.subscribe(session_id=session, scopes=NODE_FINISHED)
    async with asyncio.TaskGroup() as group:
        counted = group.create_task(_count_diagnostics(stream))
        await runner.create_session(counter_state(), session_id=session)
        final = await runner.run_until_complete(session)
    _check_counter(final, n)
    check(counted.result() == (n, 0), f"(updates, dropped) {counted.result()}; want ({n}, 0)")


async def _count_diagnostics(stream: EventStream) -> tuple[int, int]:
    """(node-finished diagnostics received, events dropped) until the stream ends."""
    received = 0
    async with stream:
        async for event in stream:
            if event.scope == NODE_FINISHED:
                received += 1
    return received, stream.dropped


async def updates_stream(sizes: Sizes) -> Result:
    app = chain_app(sizes.chain)
    async with AppRunner(app) as runner:
        await _updates_run(runner, sizes.chain)
        with Stopwatch() as watch:
            for _ in range(sizes.runs):
                await _updates_run(runner, sizes.chain)
    return Result(sizes.chain * sizes.runs, watch.seconds)


async def _checkpointed(sizes: Sizes, checkpointer: Checkpointer) -> Result:
    app = chain_app(sizes.chain)
    sessions: list[str] = []
    async with AppRunner(app, checkpointer=checkpointer) as runner:

        async def run_once() -> None:
            session = await runner.create_session(counter_state())
            _check_counter(await runner.run_until_complete(session), sizes.chain)
            sessions.append(session)

        await run_once()
        with Stopwatch() as watch:
            for _ in range(sizes.runs):
                await run_once()
    await _check_saved(checkpointer, sessions, sizes.chain)
    return Result(sizes.chain * sizes.runs, watch.seconds)


async def _check_saved(checkpointer: Checkpointer, sessions: list[str], n: int) -> None:
    """Every session's latest checkpoint is its completed last step; each step was saved."""
    for session in sessions:
        latest = await checkpointer.load_latest(session)
        done = latest is not None and latest.step == n and latest.status == "completed"
        check(done, f"latest checkpoint of session {session}: {latest!r}")
        _check_counter(latest.state, n)  # type: ignore[union-attr]
    saved = len(await checkpointer.history(sessions[-1]))
    check(saved == n + 1, f"{saved} checkpoints of one run of {n} steps; want {n + 1}")


async def checkpoint_mem(sizes: Sizes) -> Result:
    return await _checkpointed(sizes, InMemoryCheckpointer())


async def checkpoint_sqlite(sizes: Sizes) -> Result:
    with tempfile.TemporaryDirectory() as folder:
        async with SQLiteCheckpointer(Path(folder) / "bench.sqlite") as checkpointer:
            return await _checkpointed(sizes, checkpointer)


WORKLOADS = {
    "chain": chain,
    "chain_sync": chain_sync,
    "fanout": fanout,
    "events": events,
    "events_yield": events_yield,
    "events_multi": events_multi,
    "updates_stream": updates_stream,
    "checkpoint_mem": checkpoint_mem,
    "checkpoint_sqlite": checkpoint_sqlite,
}
