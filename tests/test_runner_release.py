"""Handing a run to another process: `release` and `run_until_complete(end_stream=False)`."""

from __future__ import annotations

import asyncio

import pytest

from test_runner import chain
from weavegraph import (
    END,
    START,
    AppRunner,
    EventBus,
    GraphBuilder,
    InMemoryCheckpointer,
    MemorySink,
    NodePartial,
    SessionError,
    VersionedState,
)
from weavegraph._lifecycle import stream_end


async def test_release_stops_after_the_step_in_flight_and_another_runner_finishes() -> None:
    checkpointer = InMemoryCheckpointer()
    log: list[str] = []
    app = chain("a", "b", "c", log=log).compile()
    sink = MemorySink()
    bus = EventBus([sink])
    first = AppRunner(app, checkpointer=checkpointer, event_bus=bus)
    sid = await first.create_session(VersionedState.with_user_message("go"), session_id="s")
    await first.run_step(sid)
    first.release(sid)
    state = await first.run_until_complete(sid)
    assert first.released(sid)
    assert [m.content for m in state.messages] == ["go", "a"]
    await bus.stop()
    scopes = [e.scope for e in sink.snapshot() if e.kind == "diagnostic"]
    assert not any(e.is_stream_end() for e in sink.snapshot())
    finished = [e for e in sink.snapshot() if e.metadata.get("status") == "released"]
    assert len(finished) == 1
    assert finished[0].scope in scopes

    second = AppRunner(app, checkpointer=checkpointer)
    assert await second.create_session(session_id="s") == "s"
    final = await second.run_until_complete("s")
    assert not second.released("s")
    assert [m.content for m in final.messages] == ["go", "a", "b", "c"]
    assert log == ["a", "b", "c"]  # nothing completed ran twice


async def test_end_stream_false_leaves_the_stream_end_to_the_caller() -> None:
    sink = MemorySink()
    bus = EventBus([sink])
    runner = AppRunner(chain("a", "b").compile(), event_bus=bus)
    sid = await runner.create_session(VersionedState.with_user_message("go"))
    await runner.run_until_complete(sid, end_stream=False)
    assert not any(e.is_stream_end() for e in sink.snapshot())
    bus.publish(stream_end(sid, 2, "completed"))
    await bus.stop()
    events = sink.snapshot()
    assert events[-1].is_stream_end()
    assert events[-1].message.endswith("status=completed step=2")
    assert sum(e.is_stream_end() for e in events) == 1


async def test_release_during_a_running_step_finishes_that_step() -> None:
    gate = asyncio.Event()
    entered = asyncio.Event()

    async def slow(state: object, ctx: object) -> NodePartial:
        entered.set()
        await gate.wait()
        return NodePartial(extra={"slow": True})

    async def after(state: object, ctx: object) -> NodePartial:
        return NodePartial(extra={"after": True})

    app = (
        GraphBuilder()
        .add_node("slow", slow)
        .add_node("after", after)
        .add_edge(START, "slow")
        .add_edge("slow", "after")
        .add_edge("after", END)
        .compile()
    )
    checkpointer = InMemoryCheckpointer()
    runner = AppRunner(app, checkpointer=checkpointer)
    sid = await runner.create_session(VersionedState())
    task = asyncio.create_task(runner.run_until_complete(sid))
    await entered.wait()
    runner.release(sid)
    gate.set()
    state = await task
    assert dict(state.extra) == {"slow": True}
    latest = await checkpointer.load_latest(sid)
    assert latest is not None
    assert latest.step == 1
    assert latest.frontier == ("after",)


async def test_a_runner_keeps_only_the_latest_finished_sessions() -> None:
    checkpointer = InMemoryCheckpointer()
    runner = AppRunner(chain("a").compile(), checkpointer=checkpointer, keep_finished=2)
    ids = []
    for index in range(4):
        sid = await runner.create_session(VersionedState(), session_id=f"s{index}")
        await runner.run_until_complete(sid)
        ids.append(sid)
    assert [runner.session(sid).status for sid in ids[2:]] == ["completed", "completed"]
    for sid in ids[:2]:
        with pytest.raises(SessionError, match=f"unknown session '{sid}'; sessions: s2, s3"):
            runner.session(sid)
        assert await checkpointer.load_latest(sid) is not None  # still in the checkpointer
    with pytest.raises(ValueError, match="keep_finished must not be negative; got -1"):
        AppRunner(chain("a").compile(), keep_finished=-1)


async def test_the_unknown_session_error_names_only_the_latest_ten() -> None:
    runner = AppRunner(chain("a").compile())
    for index in range(12):
        await runner.create_session(VersionedState(), session_id=f"s{index}")
    with pytest.raises(SessionError) as info:
        runner.session("nope")
    assert str(info.value) == (
        "unknown session 'nope'; sessions: 12 sessions, the latest s2, s3, s4, s5, s6, s7, s8, "
        "s9, s10, s11"
    )
