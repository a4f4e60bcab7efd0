"""The workloads of `workloads_weavegraph.py`, written the way a LangGraph user would write them.

Same graphs, same inputs, same checks; each framework's defaults otherwise.
"""

from __future__ import annotations

import asyncio
import operator
import tempfile
import uuid
from pathlib import Path
from typing import Annotated, Any, TypedDict

from bench_common import Result, Sizes, Stopwatch, check
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

Graph = CompiledStateGraph[Any, Any, Any, Any]
Saver = BaseCheckpointSaver[Any]


class Counter(TypedDict):
    counter: Annotated[int, operator.add]


class FanState(TypedDict, total=False):
    items: Annotated[list[str], operator.add]
    joined: int


class EmitState(TypedDict):
    m: int


# -- graphs -----------------------------------------------------------------------------------


async def _add_one(state: Counter) -> dict[str, int]:
    return {"counter": 1}


def _add_one_sync(state: Counter) -> dict[str, int]:
    return {"counter": 1}


def _chain(n: int, node: Any = _add_one, checkpointer: Saver | None = None) -> Graph:
    builder = StateGraph(Counter)
    names = [f"n{i}" for i in range(n)]
    for name in names:
        builder.add_node(name, node)
    for source, target in zip([START, *names], [*names, END], strict=True):
        builder.add_edge(source, target)
    return builder.compile(checkpointer=checkpointer)


def _config(n: int, thread: str | None = None) -> RunnableConfig:
    config: RunnableConfig = {"recursion_limit": n + 10}  # the default, 25, stops a long chain
    if thread is not None:
        config["configurable"] = {"thread_id": thread}
    return config


def _check_counter(final: dict[str, Any], n: int) -> None:
    check(final["counter"] == n, f"the chain of {n} nodes counted {final['counter']}")


def _fanout(k: int) -> Graph:
    def branch(index: int) -> Any:
        async def node(state: FanState) -> dict[str, list[str]]:
            return {"items": [f"b{index}"]}

        return node

    async def join(state: FanState) -> dict[str, int]:
        return {"joined": len(state["items"])}

    builder = StateGraph(FanState)
    builder.add_node("join", join)
    builder.add_edge("join", END)
    names = [f"b{i}" for i in range(k)]
    for index, name in enumerate(names):
        builder.add_node(name, branch(index))
        builder.add_edge(START, name)
    builder.add_edge(names, "join")
    return builder.compile()


def _emitter(every: int) -> Graph:
    """One node emitting `m` custom events, yielding to the loop every `every` events."""

    async def produce(state: EmitState) -> None:
        write = get_stream_writer()
        sleep = asyncio.sleep
        for i in range(1, state["m"] + 1):
            write({"scope": "tick", "message": "x"})
            if i % every == 0:
                await sleep(0)

    builder = StateGraph(EmitState)
    builder.add_node("produce", produce)
    builder.add_edge(START, "produce")
    builder.add_edge("produce", END)
    return builder.compile()


# -- the workloads ----------------------------------------------------------------------------


async def chain(sizes: Sizes) -> Result:
    graph, config = _chain(sizes.chain), _config(sizes.chain)
    await graph.ainvoke({"counter": 0}, config)
    with Stopwatch() as watch:
        for _ in range(sizes.runs):
            _check_counter(await graph.ainvoke({"counter": 0}, config), sizes.chain)
    return Result(sizes.chain * sizes.runs, watch.seconds)


def chain_sync(sizes: Sizes) -> Result:
    graph, config = _chain(sizes.chain, _add_one_sync), _config(sizes.chain)
    graph.invoke({"counter": 0}, config)
    with Stopwatch() as watch:
        for _ in range(sizes.runs):
            _check_counter(graph.invoke({"counter": 0}, config), sizes.chain)
    return Result(sizes.chain * sizes.runs, watch.seconds)


async def fanout(sizes: Sizes) -> Result:
    graph = _fanout(sizes.fanout)
    await graph.ainvoke({"items": []})
    with Stopwatch() as watch:
        for _ in range(sizes.fanout_runs):
            final = await graph.ainvoke({"items": []})
            check(len(final["items"]) == sizes.fanout, f"{len(final['items'])} branch items")
            check(final["joined"] == sizes.fanout, f"join saw {final['joined']}")
    return Result((sizes.fanout + 1) * sizes.fanout_runs, watch.seconds)


async def _stream_events(graph: Graph, m: int) -> int:
    received = 0
    async for _ in graph.astream({"m": m}, stream_mode="custom"):
        received += 1
    return received


async def _events(sizes: Sizes, every: int) -> Result:
    graph = _emitter(every)
    await _stream_events(graph, 1000)
    with Stopwatch() as watch:
        received = await _stream_events(graph, sizes.events)
    check(received == sizes.events, f"received {received} of {sizes.events} events")
    return Result(received, watch.seconds)


async def events(sizes: Sizes) -> Result:
    return await _events(sizes, sizes.batch)


async def events_yield(sizes: Sizes) -> Result:
    return await _events(sizes, 1)


_DONE = object()


async def _count_queue(queue: asyncio.Queue[object]) -> int:
    received = 0
    while await queue.get() is not _DONE:
        received += 1
    return received


async def _broadcast(graph: Graph, m: int, consumers: int) -> list[int]:
    """LangGraph streams to one reader; user code copies each event to every consumer."""
    queues: list[asyncio.Queue[object]] = [asyncio.Queue() for _ in range(consumers)]
    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(_count_queue(queue)) for queue in queues]
        async for chunk in graph.astream({"m": m}, stream_mode="custom"):
            for queue in queues:
                queue.put_nowait(chunk)
        for queue in queues:
            queue.put_nowait(_DONE)
    return [task.result() for task in tasks]


async def events_multi(sizes: Sizes) -> Result:
    graph = _emitter(sizes.batch)
    await _broadcast(graph, 1000, sizes.consumers)
    with Stopwatch() as watch:
        seen = await _broadcast(graph, sizes.events, sizes.consumers)
    check(seen == [sizes.events] * sizes.consumers, f"events per consumer: {seen}")
    return Result(sizes.events, watch.seconds)


async def _updates_run(graph: Graph, n: int) -> None:
    received = 0
    async for update in graph.astream({"counter": 0}, _config(n), stream_mode="updates"):
        received += 1
        check(len(update) == 1, f"an update of several nodes: {update}")
    check(received == n, f"{received} updates from a chain of {n}")


async def updates_stream(sizes: Sizes) -> Result:
    graph = _chain(sizes.chain)
    await _updates_run(graph, sizes.chain)
    with Stopwatch() as watch:
        for _ in range(sizes.runs):
            await _updates_run(graph, sizes.chain)
    return Result(sizes.chain * sizes.runs, watch.seconds)


async def _checkpointed(sizes: Sizes, saver: Saver) -> Result:
    graph = _chain(sizes.chain, checkpointer=saver)
    threads: list[str] = []

    async def run_once() -> None:
        thread = uuid.uuid4().hex
        _check_counter(
            await graph.ainvoke({"counter": 0}, _config(sizes.chain, thread)), sizes.chain
        )
        threads.append(thread)

    await run_once()
    with Stopwatch() as watch:
        for _ in range(sizes.runs):
            await run_once()
    await _check_saved(graph, saver, threads, sizes.chain)
    return Result(sizes.chain * sizes.runs, watch.seconds)


async def _check_saved(graph: Graph, saver: Saver, threads: list[str], n: int) -> None:
    """Every thread's latest checkpoint holds the final count; each step was saved."""
    for thread in threads:
        snapshot = await graph.aget_state(_config(n, thread))
        _check_counter(snapshot.values, n)
        check(not snapshot.next, f"thread {thread} still has {snapshot.next} to run")
    saved = len([c async for c in saver.alist(_config(n, threads[-1]))])
    # LangGraph saves the input, the step after START, then one per node.
    check(saved >= n + 1, f"{saved} checkpoints of one run of {n} steps; want at least {n + 1}")


async def checkpoint_mem(sizes: Sizes) -> Result:
    return await _checkpointed(sizes, InMemorySaver())


async def checkpoint_sqlite(sizes: Sizes) -> Result:
    with tempfile.TemporaryDirectory() as folder:
        async with AsyncSqliteSaver.from_conn_string(str(Path(folder) / "bench.sqlite")) as saver:
            return await _checkpointed(sizes, saver)


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
