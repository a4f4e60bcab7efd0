from __future__ import annotations

import pytest

from helpers import recorder
from weavegraph import (
    END,
    START,
    AppRunner,
    CheckpointError,
    GraphBuilder,
    InMemoryCheckpointer,
    Message,
    NodeContext,
    NodePartial,
    SessionError,
    StateSnapshot,
    VersionedState,
)
from weavegraph.checkpoint import Checkpoint


def chain(*names: str, log: list[str] | None = None) -> GraphBuilder:
    log = [] if log is None else log
    b = GraphBuilder()
    previous = START
    for name in names:
        b.add_node(name, recorder(log, name, NodePartial(messages=[Message.assistant(name)])))
        b.add_edge(previous, name)
        previous = name
    return b.add_edge(previous, END)


async def test_run_step_by_step_and_checkpoint_history() -> None:
    checkpointer = InMemoryCheckpointer()
    runner = AppRunner(chain("a", "b", "c").compile(), checkpointer=checkpointer)
    sid = await runner.create_session(VersionedState.with_user_message("go"), session_id="s1")
    assert sid == "s1"
    report = await runner.run_step(sid)
    assert (report.step, report.ran_nodes, report.next_frontier) == (1, ("a",), ("b",))
    assert report.updated_channels == ("messages",)
    final = await runner.run_until_complete(sid)
    assert [m.content for m in final.messages] == ["go", "a", "b", "c"]
    history = await checkpointer.history("s1")
    assert [(cp.step, cp.ran_nodes, cp.frontier, cp.status) for cp in history] == [
        (0, (), ("a",), "running"),
        (1, ("a",), ("b",), "running"),
        (2, ("b",), ("c",), "running"),
        (3, ("c",), (), "completed"),
    ]
    assert [cp.state.versions["messages"] for cp in history] == [1, 2, 3, 4]
    assert history[2].updated_channels == ("messages",)
    assert len({cp.graph_hash for cp in history}) == 1
    latest = await checkpointer.load_latest("s1")
    assert latest is not None
    assert latest.state == final
    with pytest.raises(SessionError, match="session 's1' is completed; start a new one"):
        await runner.run_until_complete(sid)
    with pytest.raises(SessionError, match="it cannot step"):
        await runner.run_step(sid)
    await runner.aclose()


async def test_checkpoint_state_is_a_copy_not_the_live_state() -> None:
    checkpointer = InMemoryCheckpointer()
    runner = AppRunner(chain("a", "b").compile(), checkpointer=checkpointer)
    sid = await runner.create_session()
    await runner.run_until_complete(sid)
    first = await checkpointer.load(sid, 1)
    assert first is not None
    assert [m.content for m in first.state.messages] == ["a"]


async def test_autosave_off_saves_nothing() -> None:
    checkpointer = InMemoryCheckpointer()
    runner = AppRunner(chain("a").compile(), checkpointer=checkpointer, autosave=False)
    sid = await runner.create_session()
    await runner.run_until_complete(sid)
    assert await checkpointer.list_sessions() == []


async def test_unknown_and_duplicate_sessions() -> None:
    runner = AppRunner(chain("a").compile())
    with pytest.raises(SessionError, match="unknown session 'nope'; sessions: none"):
        runner.session("nope")
    await runner.create_session(session_id="x")
    with pytest.raises(SessionError, match="session 'x' already exists"):
        await runner.create_session(session_id="x")


async def test_interrupt_before_and_resume() -> None:
    log: list[str] = []
    runner = AppRunner(chain("a", "b", "c", log=log).compile(), interrupt_before=["b"])
    sid = await runner.create_session()
    state = await runner.run_until_complete(sid)
    assert log == ["a"]
    assert runner.session(sid).status == "interrupted"
    assert runner.session(sid).frontier == ("b",)
    assert [m.content for m in state.messages] == ["a"]
    final = await runner.run_until_complete(sid)
    assert log == ["a", "b", "c"]
    assert runner.session(sid).status == "completed"
    assert [m.content for m in final.messages] == ["a", "b", "c"]


async def test_interrupt_after_and_resume() -> None:
    log: list[str] = []
    runner = AppRunner(chain("a", "b", "c", log=log).compile(), interrupt_after=["a", "b"])
    sid = await runner.create_session()
    await runner.run_until_complete(sid)
    assert log == ["a"]
    await runner.run_until_complete(sid)
    assert log == ["a", "b"]
    await runner.run_until_complete(sid)
    assert log == ["a", "b", "c"]
    assert runner.session(sid).status == "completed"


async def test_interrupts_must_name_known_nodes() -> None:
    with pytest.raises(
        ValueError, match=r"interrupt_before names unknown node\(s\) 'zz'; registered nodes: a"
    ):
        AppRunner(chain("a").compile(), interrupt_before=["zz"])
    with pytest.raises(ValueError, match="max_concurrency must be at least 1"):
        AppRunner(chain("a").compile(), max_concurrency=0)
    with pytest.raises(ValueError, match="recursion_limit must be at least 1"):
        AppRunner(chain("a").compile(), recursion_limit=0)


async def test_failing_checkpointer_raises_checkpoint_error() -> None:
    class Broken(InMemoryCheckpointer):
        async def save(self, checkpoint: Checkpoint, **kwargs: object) -> None:
            if checkpoint.step == 1:
                raise OSError("disk full")
            await super().save(checkpoint)

    runner = AppRunner(chain("a", "b").compile(), checkpointer=Broken())
    sid = await runner.create_session()
    with pytest.raises(
        CheckpointError, match=r"saving step 1 of session '\w+' failed: disk full"
    ) as info:
        await runner.run_until_complete(sid)
    assert isinstance(info.value.__cause__, OSError)
    assert runner.session(sid).status == "failed"


async def test_concurrent_invocations_of_one_app_are_isolated() -> None:
    async def echo(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
        return NodePartial(extra={"echo": snapshot.messages[0].content, "session": ctx.session_id})

    app = (
        GraphBuilder()
        .add_node("echo", echo)
        .add_edge(START, "echo")
        .add_edge("echo", END)
        .compile()
    )
    import asyncio

    results = await asyncio.gather(
        *(app.invoke(VersionedState.with_user_message(str(i))) for i in range(20))
    )
    assert [r.extra["echo"] for r in results] == [str(i) for i in range(20)]
    assert len({r.extra["session"] for r in results}) == 20


async def test_empty_entry_completes_immediately() -> None:
    b = GraphBuilder().add_node("a", recorder([], "a"))
    b.add_conditional_edges(START, lambda s: [], ["a", END]).add_edge("a", END)
    runner = b.compile().runner()
    sid = await runner.create_session()
    assert runner.session(sid).frontier == ()
    await runner.run_until_complete(sid)
    assert runner.session(sid).status == "completed"
    assert runner.session(sid).step == 0
