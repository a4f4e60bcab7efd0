"""Edge cases found in review: each is a behaviour users rely on."""

from __future__ import annotations

import asyncio

import pytest

from helpers import recorder
from weavegraph import (
    END,
    START,
    AppRunner,
    CheckpointError,
    EventBus,
    GraphBuilder,
    InMemoryCheckpointer,
    NodeContext,
    NodeExecutionError,
    NodePartial,
    RecursionLimitError,
    ReducerError,
    ReducerRegistry,
    RoutingError,
    RunTimeoutError,
    StateSnapshot,
    VersionedState,
    pretty_print_errors,
    sum_keys,
    thaw,
)
from weavegraph.checkpoint import Checkpoint


def chain(*names: str, log: list[str]) -> GraphBuilder:
    b = GraphBuilder()
    previous = START
    for name in names:
        b.add_node(name, recorder(log, name)).add_edge(previous, name)
        previous = name
    return b.add_edge(previous, END)


def test_invoke_sync_errors_carry_no_event_loop_noise() -> None:
    async def boom(snapshot: StateSnapshot, ctx: NodeContext) -> None:
        raise ValueError("bad")

    app = GraphBuilder().add_node("b", boom).add_edge(START, "b").add_edge("b", END).compile()
    with pytest.raises(NodeExecutionError) as info:
        app.invoke_sync()
    assert info.value.__context__ is None or "event loop" not in str(info.value.__context__)
    assert info.value.state is not None
    assert pretty_print_errors(info.value.state.errors).split("] ", 1)[1] == (
        'node(node=b, step=1): ValueError: bad\n     context: {"attempts": 1}'
    )


def test_suppressed_context_is_not_reported() -> None:
    from weavegraph import LadderError

    try:
        try:
            raise KeyError("hidden")
        except KeyError:
            raise RuntimeError("shown") from None
    except RuntimeError as exc:
        ladder = LadderError.from_exception(exc)
    assert [e.message for e in ladder.chain()] == ["RuntimeError: shown"]


async def test_entry_with_nothing_to_run_completes_at_step_zero() -> None:
    b = GraphBuilder().add_node("a", recorder([], "a"))
    b.add_conditional_edges(START, lambda s: [], ["a", END]).add_edge("a", END)
    app = b.compile()
    assert await app.invoke(VersionedState(extra={"k": 1})) == VersionedState(extra={"k": 1})
    _, events = await app.invoke_with_channel()
    assert [e.message.split(" ", 1)[1] for e in events if e.is_stream_end()] == [
        "status=completed step=0"
    ]


async def test_pause_after_then_before_both_pause() -> None:
    log: list[str] = []
    checkpointer = InMemoryCheckpointer()
    runner = AppRunner(
        chain("a", "b", "c", log=log).compile(),
        checkpointer=checkpointer,
        interrupt_after=["a"],
        interrupt_before=["b"],
    )
    sid = await runner.create_session()
    await runner.run_until_complete(sid)
    assert (log, runner.session(sid).paused) == (["a"], "after")
    await runner.run_until_complete(sid)
    assert (log, runner.session(sid).paused) == (["a"], "before")
    latest = await checkpointer.load_latest(sid)
    assert latest is not None
    assert (latest.step, latest.status, latest.frontier) == (1, "interrupted", ("b",))
    await runner.run_until_complete(sid)
    assert log == ["a", "b", "c"]
    assert runner.session(sid).status == "completed"


async def test_a_nodes_own_timeout_error_is_not_relabelled() -> None:
    async def own(snapshot: StateSnapshot, ctx: NodeContext) -> None:
        raise TimeoutError("socket read timed out")

    b = GraphBuilder().add_node("n", own, timeout=5).add_edge(START, "n").add_edge("n", END)
    with pytest.raises(NodeExecutionError) as info:
        await b.compile().invoke()
    assert str(info.value).endswith("TimeoutError: socket read timed out")
    assert info.value.state is not None
    assert info.value.state.errors[0].tags == ()


async def test_predicate_errors_become_recorded_routing_errors() -> None:
    b = GraphBuilder().add_node("a", recorder([], "a")).add_edge(START, "a")
    b.add_conditional_edges("a", lambda s: s.extra["missing"], ["a", END])
    runner = b.compile().runner()
    sid = await runner.create_session()
    with pytest.raises(RoutingError) as info:
        await runner.run_until_complete(sid)
    assert str(info.value) == "routing after node 'a' failed: KeyError: 'missing'"
    assert isinstance(info.value.__cause__, KeyError)
    errors = runner.session(sid).state.errors
    assert [(e.scope.kind, e.error.message) for e in errors] == [
        ("scheduler", "RoutingError: routing after node 'a' failed: KeyError: 'missing'")
    ]


async def test_reducer_errors_become_recorded_reducer_errors() -> None:
    b = GraphBuilder().add_node("a", recorder([], "a", NodePartial(extra={"n": "text"})))
    b.add_edge(START, "a").add_edge("a", END)
    b.with_reducers(ReducerRegistry().replace("extra", sum_keys("n")))
    runner = b.compile().runner()
    sid = await runner.create_session(VersionedState(extra={"n": 1}))
    with pytest.raises(
        ReducerError, match=r"merging the updates of step 1 \(a\) failed: TypeError"
    ):
        await runner.run_until_complete(sid)
    assert runner.session(sid).state.errors[0].scope.to_dict() == {"kind": "scheduler", "step": 1}
    assert runner.session(sid).status == "failed"


async def test_runner_errors_are_recorded_in_the_errors_channel() -> None:
    loop = GraphBuilder().add_node("a", recorder([], "a")).add_edge(START, "a").add_edge("a", "a")
    loop.add_conditional_edges("a", lambda s: [], [END])
    runner = loop.compile().runner(recursion_limit=3)
    sid = await runner.create_session(session_id="s")
    with pytest.raises(RecursionLimitError):
        await runner.run_until_complete(sid)
    assert runner.session(sid).status == "failed"
    assert runner.session(sid).state.errors[-1].scope.to_dict() == {
        "kind": "runner",
        "step": 4,
        "session": "s",
    }

    async def slow(snapshot: StateSnapshot, ctx: NodeContext) -> None:
        await asyncio.Event().wait()

    timed = GraphBuilder().add_node("n", slow).add_edge(START, "n").add_edge("n", END)
    runner = timed.compile().runner()
    sid = await runner.create_session()
    with pytest.raises(RunTimeoutError):
        await runner.run_until_complete(sid, timeout=0.01)
    assert runner.session(sid).state.errors[0].error.message.startswith("RunTimeoutError:")

    class Refusing(InMemoryCheckpointer):
        async def save(self, checkpoint: Checkpoint, **kwargs: object) -> None:
            raise CheckpointError(f"table locked at step {checkpoint.step}")

    runner = AppRunner(chain("a", log=[]).compile(), checkpointer=Refusing(), autosave=False)
    sid = await runner.create_session()
    runner.autosave = True
    with pytest.raises(CheckpointError, match="table locked at step 1"):
        await runner.run_until_complete(sid)
    assert runner.session(sid).state.errors[0].error.message == (
        "CheckpointError: table locked at step 1"
    )


async def test_app_runner_leaves_a_given_bus_running() -> None:
    bus = EventBus()
    runner = chain("a", log=[]).compile().runner(event_bus=bus)
    await runner.aclose()
    assert not bus.closed
    own = chain("a", log=[]).compile().runner()
    await own.aclose()
    assert own.event_bus.closed
    await bus.stop()


async def test_join_into_end_is_not_reported_as_skipped() -> None:
    b = GraphBuilder().add_node("a", recorder([], "a")).add_node("b", recorder([], "b"))
    b.add_edge(START, "a").add_edge("a", "b").add_edge(["a", "b"], END)
    runner = b.compile().runner()
    sid = await runner.create_session()
    first = await runner.run_step(sid)
    second = await runner.run_step(sid)
    assert (first.skipped_nodes, second.skipped_nodes, second.status) == ((), (), "completed")


async def test_compiled_app_keeps_its_own_reducers() -> None:
    registry = ReducerRegistry()
    b = GraphBuilder().add_node("a", recorder([], "a", NodePartial(extra={"n": 2})))
    app = b.add_edge(START, "a").add_edge("a", END).with_reducers(registry).compile()
    registry.replace("extra", sum_keys("n"))
    assert (await app.invoke(VersionedState(extra={"n": 1}))).extra == {"n": 2}


def test_sum_keys_none_deletes_like_map_merge() -> None:
    reduce = sum_keys("n")
    from weavegraph import FrozenDict

    assert reduce(FrozenDict({"n": 3, "m": 1}), {"n": None}) == {"m": 1}
    assert thaw(reduce(FrozenDict({"n": 3}), {"n": 2, "x": [1]})) == {"n": 5, "x": [1]}


async def test_entry_straight_to_end() -> None:
    b = GraphBuilder().add_node("a", recorder([], "a")).add_edge(START, END).add_edge(START, "a")
    app = b.add_edge("a", END).compile()
    runner = app.runner()
    sid = await runner.create_session()
    assert runner.session(sid).frontier == ("a",)
    only_end = GraphBuilder().add_node("a", recorder([], "a"))
    only_end.add_conditional_edges(START, lambda s: END, ["a", END]).add_edge("a", END)
    assert (await only_end.compile().invoke()).versions["messages"] == 1


async def test_pause_before_keeps_the_history_of_the_step_it_follows() -> None:
    store = InMemoryCheckpointer()
    runner = AppRunner(
        chain("a", "b", log=[]).compile(), checkpointer=store, interrupt_before=["b"]
    )
    sid = await runner.create_session()
    await runner.run_until_complete(sid)
    latest = await store.load_latest(sid)
    assert latest is not None
    assert (latest.step, latest.ran_nodes, latest.status, latest.paused) == (
        1,
        ("a",),
        "interrupted",
        "before",
    )
    assert [cp.step for cp in await store.history(sid, ran_node="a")] == [1]


@pytest.mark.parametrize(
    ("options", "expected_log"),
    [({"interrupt_before": ["b"]}, ["a", "b", "c"]), ({"interrupt_after": ["a"]}, ["a", "b", "c"])],
)
async def test_a_pause_restored_in_a_new_runner_is_released_once(
    options: dict[str, list[str]], expected_log: list[str]
) -> None:
    store = InMemoryCheckpointer()
    log: list[str] = []
    app = chain("a", "b", "c", log=log).compile()
    first = AppRunner(app, checkpointer=store, **options)  # type: ignore[arg-type]
    sid = await first.create_session(session_id="p")
    await first.run_until_complete(sid)
    assert log == ["a"]
    second = AppRunner(app, checkpointer=store, **options)  # type: ignore[arg-type]
    await second.resume("p")
    assert log == expected_log
    assert second.session("p").status == "completed"


async def test_failing_reducer_leaves_the_state_untouched_and_keeps_the_cause() -> None:
    from weavegraph import Message

    b = GraphBuilder().add_node(
        "a", recorder([], "a", NodePartial(messages=[Message.user("m")], extra={"n": "text"}))
    )
    b.add_edge(START, "a").add_edge("a", END)
    b.with_reducers(ReducerRegistry().replace("extra", sum_keys("n")))
    runner = b.compile().runner()
    sid = await runner.create_session(VersionedState(extra={"n": 1}))
    with pytest.raises(ReducerError):
        await runner.run_until_complete(sid)
    state = runner.session(sid).state
    assert state.messages == ()
    assert state.versions == {"messages": 1, "extra": 1, "errors": 2}
    chain_ = [e.message for e in state.errors[0].error.chain()]
    assert chain_[1].startswith("TypeError: unsupported operand")


async def test_completion_at_step_zero_is_checkpointed() -> None:
    store = InMemoryCheckpointer()
    b = GraphBuilder().add_node("a", recorder([], "a"))
    b.add_conditional_edges(START, lambda s: [], ["a", END]).add_edge("a", END)
    runner = AppRunner(b.compile(), checkpointer=store)
    sid = await runner.create_session()
    await runner.run_until_complete(sid)
    latest = await store.load_latest(sid)
    assert latest is not None
    assert (latest.step, latest.status) == (0, "completed")


async def test_app_runner_rejects_zero_concurrency() -> None:
    with pytest.raises(ValueError, match="max_concurrency must be at least 1; got 0"):
        chain("a", log=[]).compile().runner(max_concurrency=0)
