"""The runtime's events: lifecycle diagnostics, stream end, and the App's streaming entry points."""

from __future__ import annotations

import asyncio
import threading

import pytest

from helpers import assert_no_tasks_left
from weavegraph import (
    END,
    START,
    STREAM_END_SCOPE,
    AppRunner,
    Event,
    EventBus,
    EventBusConfig,
    GraphBuilder,
    MemorySink,
    Message,
    NodeContext,
    NodeExecutionError,
    NodePartial,
    RuntimeConfig,
    RunTimeoutError,
    StateSnapshot,
    VersionedState,
)
from weavegraph._lifecycle import (
    NODE_FAILED_SCOPE,
    NODE_FINISHED_SCOPE,
    NODE_RETRY_SCOPE,
    NODE_STARTED_SCOPE,
    RUN_FINISHED_SCOPE,
    RUN_STARTED_SCOPE,
    STEP_FINISHED_SCOPE,
    STEP_STARTED_SCOPE,
)


async def talk(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
    ctx.emit("work", f"{ctx.node} working", detail=ctx.step)
    return NodePartial(messages=[Message.assistant(ctx.node)])


def chain(*names: str, node=talk, config: RuntimeConfig | None = None):  # type: ignore[no-untyped-def]
    b = GraphBuilder()
    previous = START
    for name in names:
        b.add_node(name, node).add_edge(previous, name)
        previous = name
    return b.add_edge(previous, END).compile(config)


def outline(events: list[Event]) -> list[tuple[str, str | None, int | None]]:
    return [(e.scope, e.node_id, e.step) for e in events]


async def test_lifecycle_sequence_of_a_three_node_run() -> None:
    final, receiver = await chain("a", "b", "c").invoke_with_channel(VersionedState())
    events = list(receiver)
    expected: list[tuple[str, str | None, int | None]] = [(RUN_STARTED_SCOPE, None, 0)]
    for step, name in enumerate("abc", 1):
        expected += [
            (STEP_STARTED_SCOPE, None, step),
            (NODE_STARTED_SCOPE, name, step),
            ("work", name, step),
            (NODE_FINISHED_SCOPE, name, step),
            (STEP_FINISHED_SCOPE, None, step),
        ]
    expected += [(RUN_FINISHED_SCOPE, None, 3), (STREAM_END_SCOPE, None, 3)]
    assert outline(events) == expected
    assert [e.id for e in events] == list(range(1, len(expected) + 1))
    assert len({e.session_id for e in events}) == 1
    step_done = events[5]
    assert step_done.metadata["ran"] == ["a"]
    assert step_done.metadata["updated_channels"] == ["messages"]
    assert step_done.metadata["events"] == 3
    assert sorted(step_done.metadata) == [
        "checkpoint_ms",
        "events",
        "merge_ms",
        "node_ms",
        "ran",
        "updated_channels",
    ]
    assert events[0].metadata == {"frontier": ["a"]}
    assert events[-2].metadata["status"] == "completed"
    assert events[-1].message == f"session={events[-1].session_id} status=completed step=3"
    assert events[3].metadata == {"detail": 1}
    assert [m.content for m in final.messages] == ["a", "b", "c"]


async def test_lifecycle_events_can_be_turned_off() -> None:
    app = chain("a", "b", config=RuntimeConfig(lifecycle_events=False))
    _, receiver = await app.invoke_with_channel()
    assert outline(list(receiver)) == [
        ("work", "a", 1),
        ("work", "b", 2),
        (STREAM_END_SCOPE, None, 2),
    ]


async def test_retry_and_failure_are_announced() -> None:
    from weavegraph import RetryPolicy

    async def bad(snapshot: StateSnapshot, ctx: NodeContext) -> None:
        raise RuntimeError(f"attempt {ctx.attempt}")

    b = GraphBuilder().add_node("bad", bad, retry=RetryPolicy(max_attempts=2))
    app = b.add_edge(START, "bad").add_edge("bad", END).compile()
    sink = MemorySink()
    with pytest.raises(NodeExecutionError):
        await app.invoke_with_sinks(VersionedState(), [sink])
    events = sink.snapshot()
    assert outline(events) == [
        (RUN_STARTED_SCOPE, None, 0),
        (STEP_STARTED_SCOPE, None, 1),
        (NODE_STARTED_SCOPE, "bad", 1),
        (NODE_RETRY_SCOPE, "bad", 1),
        (NODE_STARTED_SCOPE, "bad", 1),
        (NODE_FAILED_SCOPE, "bad", 1),
        (RUN_FINISHED_SCOPE, None, 0),
        (STREAM_END_SCOPE, None, 0),
    ]
    assert events[3].metadata == {
        "attempt": 1,
        "delay_s": 0.0,
        "error": "RuntimeError: attempt 1",
    }
    assert events[5].metadata == {"attempts": 2, "error": "RuntimeError: attempt 2"}
    assert events[-1].metadata == {"status": "error"}


async def test_invoke_streaming_delivers_every_event_then_ends() -> None:
    invocation, stream = await chain("a", "b").invoke_streaming(VersionedState())
    async with stream:
        events = [event async for event in stream]
    final = await invocation.join()
    assert invocation.done()
    assert events[-1].is_stream_end()
    assert sum(e.is_stream_end() for e in events) == 1
    assert [e.id for e in events] == list(range(1, len(events) + 1))
    assert [m.content for m in final.messages] == ["a", "b"]
    await assert_no_tasks_left()


def stream_end_status(events: list[Event]) -> str:
    ends = [e for e in events if e.scope == STREAM_END_SCOPE]
    assert len(ends) == 1
    assert ends[0] is events[-1]
    return str(ends[0].metadata["status"])


async def test_stream_end_on_node_failure() -> None:
    async def boom(snapshot: StateSnapshot, ctx: NodeContext) -> None:
        ctx.emit("before", "about to fail")
        raise ValueError("no")

    invocation, stream = await chain("ok", "boom", node=boom).invoke_streaming()
    events = [event async for event in stream]
    with pytest.raises(NodeExecutionError):
        await invocation.join()
    assert stream_end_status(events) == "error"


async def test_stream_end_on_abort_mid_run() -> None:
    started = asyncio.Event()

    async def forever(snapshot: StateSnapshot, ctx: NodeContext) -> None:
        started.set()
        await asyncio.Event().wait()

    invocation, stream = await chain("x", node=forever).invoke_streaming()
    await started.wait()
    invocation.abort()
    events = [event async for event in stream]
    with pytest.raises(asyncio.CancelledError):
        await invocation.join()
    assert stream_end_status(events) == "cancelled"
    await assert_no_tasks_left()


async def test_stream_end_on_abort_before_start() -> None:
    invocation, stream = await chain("x").invoke_streaming()
    invocation.abort()
    events = [event async for event in stream]
    with pytest.raises(asyncio.CancelledError):
        await invocation.join()
    assert stream_end_status(events) == "cancelled"
    assert events[-1].message == f"session={invocation.session_id} status=cancelled step=0"


async def test_stream_end_on_timeout() -> None:
    async def slow(snapshot: StateSnapshot, ctx: NodeContext) -> None:
        await asyncio.Event().wait()

    invocation, stream = await chain("x", node=slow).invoke_streaming(timeout=0.02)
    events = [event async for event in stream]
    with pytest.raises(RunTimeoutError):
        await invocation.join()
    assert stream_end_status(events) == "error"


async def test_llm_final_does_not_end_the_stream() -> None:
    async def model(snapshot: StateSnapshot, ctx: NodeContext) -> None:
        ctx.emit_llm_chunk("Hel")
        ctx.emit_llm_chunk("lo")
        ctx.emit_llm_final("Hello")
        ctx.emit_llm_error("rate limited", stream_id="second")
        ctx.emit_diagnostic("note", "after the final chunk")

    invocation, stream = await chain("m", node=model).invoke_streaming()
    events = [e async for e in stream]
    await invocation.join()
    llm = [(e.scope, e.message, e.is_final, e.stream_id) for e in events if e.kind == "llm"]
    assert llm == [
        ("chunk", "Hel", False, "m@1"),
        ("chunk", "lo", False, "m@1"),
        ("final", "Hello", True, "m@1"),
        ("error", "rate limited", True, "second"),
    ]
    assert [e for e in events if e.kind == "llm"][-1].metadata == {"severity": "error"}
    notes = [e for e in events if e.scope == "note"]
    assert (notes[0].kind, notes[0].node_id) == ("diagnostic", "m")
    assert events[-1].is_stream_end()


async def test_invoke_with_channel_receiver_iterates_sync_and_async() -> None:
    _, receiver = await chain("a").invoke_with_channel()
    assert len(receiver) == 8
    first = receiver.try_recv()
    assert first is not None
    assert first.scope == RUN_STARTED_SCOPE
    rest = [e async for e in receiver]
    assert len(rest) == 7
    assert receiver.try_recv() is None
    assert [e.id for e in receiver.events] == list(range(1, 9))


async def test_invoke_with_sinks_returns_after_every_sink_saw_every_event() -> None:
    sinks = [MemorySink(name="one"), MemorySink(name="two")]
    await chain("a", "b").invoke_with_sinks(VersionedState(), sinks)
    first, second = (s.snapshot() for s in sinks)
    assert len(first) == 13
    assert [e.id for e in first] == [e.id for e in second] == list(range(1, 14))
    assert first[-1].is_stream_end()


async def test_runtime_config_sinks_and_capacity_reach_the_bus() -> None:
    sink = MemorySink()
    config = RuntimeConfig(event_bus=EventBusConfig(capacity=4096, sinks=(sink,)))
    app = chain("a", config=config)
    runner = app.runner()
    assert runner.event_bus.capacity == 4096
    await runner.aclose()
    await app.invoke()
    assert sink.snapshot()[-1].is_stream_end()


async def test_many_events_to_four_streams_and_three_sinks_lose_nothing() -> None:
    total = 100_000

    async def flood(snapshot: StateSnapshot, ctx: NodeContext) -> None:
        for index in range(total):
            ctx.emit("tick", "t", n=index)
            if index % 256 == 255:
                await asyncio.sleep(0)

    sinks = [MemorySink(name=f"sink{i}") for i in range(3)]
    bus = EventBus(sinks, capacity=1 << 17)
    runner = AppRunner(chain("flood", node=flood), event_bus=bus, lifecycle_events=False)
    sid = await runner.create_session()
    streams = [bus.subscribe(session_id=sid, kinds="node") for _ in range(4)]

    async def consume(stream) -> list[int]:  # type: ignore[no-untyped-def]
        return [e.metadata["n"] async for e in stream if e.kind == "node"]

    consumers = [asyncio.create_task(consume(s)) for s in streams]
    await runner.run_until_complete(sid)
    seen = await asyncio.gather(*consumers)
    await bus.stop()
    expected = list(range(total))
    assert all(s == expected for s in seen)
    assert all(stream.dropped == 0 for stream in streams)
    for sink in sinks:
        events = sink.snapshot()
        assert len(events) == total + 1
        assert [e.id for e in events] == list(range(1, total + 2))


async def test_sync_nodes_emit_from_their_thread_without_loss() -> None:
    threads: set[int] = set()

    def emitter(snapshot: StateSnapshot, ctx: NodeContext) -> None:
        threads.add(threading.get_ident())
        for index in range(2_000):
            ctx.emit("tick", str(index))

    b = GraphBuilder()
    for name in ("t1", "t2", "t3", "t4"):
        b.add_node(name, emitter).add_edge(START, name).add_edge(name, END)
    app = b.compile(RuntimeConfig(lifecycle_events=False))
    _, receiver = await app.invoke_with_channel()
    ticks = [e for e in receiver if e.scope == "tick"]
    assert len(ticks) == 8_000
    assert threading.get_ident() not in threads
    for name in ("t1", "t2", "t3", "t4"):
        assert [e.message for e in ticks if e.node_id == name] == [str(i) for i in range(2_000)]


async def test_emit_async_applies_backpressure_for_a_lossless_reader() -> None:
    async def producer(snapshot: StateSnapshot, ctx: NodeContext) -> None:
        for index in range(5_000):
            await ctx.emit_async("tick", str(index))

    bus = EventBus(capacity=64)
    runner = AppRunner(chain("p", node=producer), event_bus=bus, lifecycle_events=False)
    sid = await runner.create_session()
    stream = bus.subscribe(lossless=True)
    peak = 0

    async def consume() -> int:
        nonlocal peak
        count = 0
        async for event in stream:
            peak = max(peak, bus.metrics().retained)
            count += event.scope == "tick"
        return count

    reader = asyncio.create_task(consume())
    await runner.run_until_complete(sid)
    assert await reader == 5_000
    assert peak <= 2 * 64
    await bus.stop()


async def test_reserved_metadata_keys_are_refused() -> None:
    async def clash(snapshot: StateSnapshot, ctx: NodeContext) -> None:
        ctx.emit("x", "y", step=3)

    with pytest.raises(NodeExecutionError, match="may not use the reserved keys step"):
        await chain("c", node=clash).invoke()
