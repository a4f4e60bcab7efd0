"""Resume, fork and iterative sessions."""

from __future__ import annotations

import pytest

from helpers import recorder
from weavegraph import (
    END,
    INVOCATION_END_SCOPE,
    START,
    STREAM_END_SCOPE,
    AppRunner,
    EventBus,
    GraphBuilder,
    InMemoryCheckpointer,
    MemorySink,
    Message,
    NodeContext,
    NodeExecutionError,
    NodePartial,
    SessionError,
    StateSnapshot,
    VersionedState,
)


def counting_chain(n: int, log: list[str], fail_at: set[str] | None = None) -> GraphBuilder:
    async def node(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
        if fail_at and ctx.node in fail_at:
            fail_at.discard(ctx.node)  # fail once, like a crash in the middle of the run
            raise RuntimeError("crash")
        log.append(ctx.node)
        return NodePartial(extra={"last": ctx.node, ctx.node: snapshot.extra.get("last")})

    b = GraphBuilder()
    previous = START
    for index in range(n):
        b.add_node(f"s{index}", node).add_edge(previous, f"s{index}")
        previous = f"s{index}"
    return b.add_edge(previous, END)


async def test_resume_in_a_new_runner_runs_nothing_twice() -> None:
    store = InMemoryCheckpointer()
    log: list[str] = []
    app = counting_chain(6, log, fail_at={"s3"}).compile()
    first = AppRunner(app, checkpointer=store)
    sid = await first.create_session(session_id="job")
    with pytest.raises(NodeExecutionError):
        await first.run_until_complete(sid)
    assert log == ["s0", "s1", "s2"]
    second = AppRunner(app, checkpointer=store)  # a new process, the same store
    final = await second.resume("job")
    assert log == ["s0", "s1", "s2", "s3", "s4", "s5"]
    reference = await counting_chain(6, []).compile().invoke()
    assert final.extra == reference.extra
    assert final.versions == reference.versions
    latest = await store.load_latest("job")
    assert latest is not None
    assert (latest.step, latest.status) == (6, "completed")
    with pytest.raises(
        SessionError, match="'job' is already completed at step 6; nothing to resume"
    ):
        await AppRunner(app, checkpointer=store).resume("job")


async def test_resume_restores_join_progress() -> None:
    store = InMemoryCheckpointer()
    log: list[str] = []
    b = GraphBuilder()
    for name in ("a", "b", "b2", "c"):
        b.add_node(name, recorder(log, name))
    b.add_edge(START, "a").add_edge(START, "b").add_edge("b", "b2").add_edge(["a", "b2"], "c")
    app = b.add_edge("c", END).compile()
    first = AppRunner(app, checkpointer=store)
    sid = await first.create_session(session_id="j")
    await first.run_step(sid)  # a and b ran; the join has seen a
    latest = await store.load_latest("j")
    assert latest is not None
    assert latest.joins == {"a+b2->c": ("a",)}
    await AppRunner(app, checkpointer=store).resume("j")
    assert log == ["a", "b", "b2", "c"]


async def test_create_session_picks_up_a_checkpointed_session() -> None:
    store = InMemoryCheckpointer()
    app = counting_chain(3, []).compile()
    runner = AppRunner(app, checkpointer=store, interrupt_before=["s1"])
    await runner.create_session(session_id="x")
    await runner.run_until_complete("x")
    again = AppRunner(app, checkpointer=store)
    assert await again.create_session(session_id="x") == "x"
    assert (again.session("x").step, again.session("x").frontier) == (1, ("s1",))
    assert again.session("x").status == "interrupted"
    final = await again.run_until_complete("x")
    assert final.extra["last"] == "s2"
    with pytest.raises(SessionError, match="already has checkpoints"):
        await AppRunner(app, checkpointer=store).create_session(VersionedState(), session_id="x")


async def test_resume_refuses_a_changed_graph_and_unknown_sessions() -> None:
    store = InMemoryCheckpointer()
    runner = AppRunner(counting_chain(2, []).compile(), checkpointer=store)
    await runner.create_session(session_id="g")
    other = AppRunner(counting_chain(3, []).compile(), checkpointer=store)
    with pytest.raises(SessionError, match="saved by a different graph"):
        await other.resume("g")
    with pytest.raises(SessionError, match="no checkpoint of session 'nope'"):
        await other.resume("nope")


async def test_fork_starts_a_new_session_from_any_step() -> None:
    store = InMemoryCheckpointer()
    log: list[str] = []
    runner = AppRunner(counting_chain(4, log).compile(), checkpointer=store)
    sid = await runner.create_session(session_id="orig")
    await runner.run_until_complete(sid)
    fork_id = await runner.fork("orig", 2, new_session_id="fork")
    assert runner.session("fork").frontier == ("s2",)
    final = await runner.run_until_complete(fork_id)
    assert log == ["s0", "s1", "s2", "s3", "s2", "s3"]
    original = await store.load_latest("orig")
    assert original is not None
    assert final.extra == original.state.extra
    assert [cp.step for cp in await store.history("fork")] == [2, 3, 4]
    with pytest.raises(SessionError, match="has no checkpoint at step 9"):
        await runner.fork("orig", 9)
    with pytest.raises(SessionError, match="'fork' already exists"):
        await runner.fork("orig", 1, new_session_id="fork")


async def test_iterative_session_runs_once_per_input() -> None:
    async def reply(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
        question = snapshot.messages[-1].content
        return NodePartial(messages=[Message.assistant(f"echo: {question}")])

    app = (
        GraphBuilder()
        .add_node("reply", reply)
        .add_edge(START, "reply")
        .add_edge("reply", END)
        .compile()
    )
    sink = MemorySink()
    bus = EventBus([sink])
    runner = AppRunner(app, event_bus=bus, lifecycle_events=False)
    sid = await runner.create_iterative_session()
    stream = bus.subscribe(session_id=sid)
    first = await runner.invoke_next(sid, "one")
    second = await runner.invoke_next(sid, "two")
    assert [m.content for m in first.messages] == ["one", "echo: one"]
    assert [m.content for m in second.messages] == ["one", "echo: one", "two", "echo: two"]
    final = await runner.finish_iterative_session(sid)
    assert final == second
    events = [e async for e in stream]
    assert [e.scope for e in events] == [
        INVOCATION_END_SCOPE,
        INVOCATION_END_SCOPE,
        STREAM_END_SCOPE,
    ]
    assert [e.step for e in events] == [1, 2, 2]
    with pytest.raises(SessionError, match="not an open iterative session"):
        await runner.invoke_next(sid, "three")
    await bus.stop()
    assert sink.snapshot()[-1].scope == STREAM_END_SCOPE
