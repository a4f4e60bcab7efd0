from __future__ import annotations

import asyncio

import pytest

from helpers import recorder
from weavegraph import (
    END,
    START,
    Goto,
    GraphBuilder,
    Message,
    NodeContext,
    NodePartial,
    RecursionLimitError,
    RoutingError,
    StateSnapshot,
    VersionedState,
)


async def test_hello_chain_returns_final_state() -> None:
    async def greet(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
        ctx.emit("greeting", "Saying hi!")
        return NodePartial(messages=[Message.assistant("Hello!")])

    app = (
        GraphBuilder()
        .add_node("greet", greet)
        .add_edge(START, "greet")
        .add_edge("greet", END)
        .compile()
    )
    final = await app.invoke(VersionedState.with_user_message("Hi?"))
    assert [m.content for m in final.messages] == ["Hi?", "Hello!"]
    assert final.versions == {"messages": 2, "extra": 1, "errors": 1}


async def test_conditional_single_target() -> None:
    log: list[str] = []

    def route(snapshot: StateSnapshot) -> str:
        return "big" if snapshot.extra["n"] > 10 else "small"

    b = GraphBuilder().add_node("start", recorder(log, "start"))
    b.add_node("big", recorder(log, "big")).add_node("small", recorder(log, "small"))
    b.add_edge(START, "start").add_conditional_edges("start", route, ["big", "small"])
    b.add_edge("big", END).add_edge("small", END)
    app = b.compile()
    await app.invoke(VersionedState(extra={"n": 50}))
    await app.invoke(VersionedState(extra={"n": 5}))
    assert log == ["start", "big", "start", "small"]


async def test_conditional_fan_out_runs_targets_in_one_step() -> None:
    log: list[str] = []
    b = GraphBuilder().add_node("a", recorder(log, "a"))
    for name in ("x", "y", "z"):
        b.add_node(name, recorder(log, name)).add_edge(name, END)
    b.add_edge(START, "a").add_conditional_edges("a", lambda s: ["z", "x"], ["x", "y", "z"])
    runner = b.compile().runner()
    sid = await runner.create_session(VersionedState())
    first = await runner.run_step(sid)
    second = await runner.run_step(sid)
    assert (first.ran_nodes, first.next_frontier) == (("a",), ("z", "x"))
    assert (second.ran_nodes, second.next_frontier, second.status) == (("z", "x"), (), "completed")
    assert log == ["a", "z", "x"]
    await runner.aclose()


async def test_conditional_with_mapping_and_async_predicate() -> None:
    log: list[str] = []

    async def route(snapshot: StateSnapshot) -> str:
        await asyncio.sleep(0)
        return "yes"

    b = GraphBuilder().add_node("a", recorder(log, "a")).add_node("b", recorder(log, "b"))
    b.add_edge(START, "a").add_conditional_edges("a", route, {"yes": "b", "no": END}).add_edge(
        "b", END
    )
    await b.compile().invoke()
    assert log == ["a", "b"]


async def test_conditional_from_start() -> None:
    log: list[str] = []
    b = GraphBuilder().add_node("a", recorder(log, "a")).add_node("b", recorder(log, "b"))
    b.add_conditional_edges(START, lambda s: "b" if s.extra.get("skip") else "a", ["a", "b"])
    b.add_edge("a", END).add_edge("b", END)
    await b.compile().invoke(VersionedState(extra={"skip": True}))
    assert log == ["b"]


async def test_undeclared_unknown_target_is_reported_at_run_time() -> None:
    b = GraphBuilder().add_node("a", recorder([], "a")).add_edge(START, "a")
    b.add_conditional_edges("a", lambda s: "nowhere")
    with pytest.raises(RoutingError) as info:
        await b.compile().invoke()
    assert str(info.value) == (
        "conditional edge from 'a' routed to unknown node 'nowhere'; registered nodes: a"
    )


async def test_declared_targets_enforced_at_run_time() -> None:
    b = GraphBuilder().add_node("a", recorder([], "a")).add_node("b", recorder([], "b"))
    b.add_edge(START, "a").add_conditional_edges("a", lambda s: "c", {"b": "b"}).add_edge("b", END)
    with pytest.raises(
        RoutingError, match=r"returned 'c', which is not one of its declared targets: b"
    ):
        await b.compile().invoke()


async def test_routing_error_is_recorded_in_errors() -> None:
    b = GraphBuilder().add_node("a", recorder([], "a")).add_edge(START, "a")
    b.add_conditional_edges("a", lambda s: "nowhere")
    runner = b.compile().runner()
    sid = await runner.create_session()
    with pytest.raises(RoutingError):
        await runner.run_until_complete(sid)
    errors = runner.session(sid).state.errors
    assert [e.scope.to_dict() for e in errors] == [{"kind": "scheduler", "step": 1}]
    assert runner.session(sid).status == "failed"
    await runner.aclose()


async def test_goto_replace_and_append() -> None:
    log: list[str] = []
    b = GraphBuilder()
    b.add_node("a", recorder(log, "a", NodePartial(goto="c")), destinations=["c"])
    b.add_node("b", recorder(log, "b", NodePartial(goto=Goto.append("d"))), destinations=["d"])
    for name in ("c", "d", "e"):
        b.add_node(name, recorder(log, name)).add_edge(name, END)
    b.add_edge(START, "a").add_edge(START, "b").add_edge("a", "e").add_edge("b", "e")
    runner = b.compile().runner()
    sid = await runner.create_session()
    report = await runner.run_step(sid)
    # a's edge to e is replaced by c; b keeps its edge to e and adds d.
    assert report.next_frontier == ("c", "e", "d")
    await runner.run_until_complete(sid)
    assert log == ["a", "b", "c", "e", "d"]
    await runner.aclose()


async def test_goto_end_stops_the_branch_and_bad_goto_fails() -> None:
    log: list[str] = []
    b = GraphBuilder().add_node("a", recorder(log, "a", NodePartial(goto=[END])))
    b.add_node("b", recorder(log, "b")).add_edge(START, "a").add_edge("a", "b").add_edge("b", END)
    await b.compile().invoke()
    assert log == ["a"]
    bad = GraphBuilder().add_node("a", recorder([], "a", NodePartial(goto=7)))  # type: ignore[arg-type]
    bad.add_edge(START, "a").add_edge("a", END)
    with pytest.raises(RoutingError, match=r"node 'a' returned goto=7"):
        await bad.compile().invoke()
    unknown = GraphBuilder().add_node("a", recorder([], "a", NodePartial(goto=Goto.append("x"))))
    unknown.add_edge(START, "a").add_edge("a", END)
    with pytest.raises(RoutingError, match=r"goto of node 'a' routed to unknown node 'x'"):
        await unknown.compile().invoke()


def diamond(join: bool, log: list[str]) -> GraphBuilder:
    async def slow_b(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
        log.append("b")
        return NodePartial(goto=["b2"])

    b = GraphBuilder().add_node("a", recorder(log, "a")).add_node("b", slow_b)
    b.add_node("b2", recorder(log, "b2")).add_node("c", recorder(log, "c"))
    b.add_node("d", recorder(log, "d"))
    b.add_edge(START, "a").add_edge("a", "b").add_edge("a", "c").add_edge("b", "b2")
    if join:
        b.add_edge(["b2", "c"], "d")
    else:
        b.add_edge("b2", "d").add_edge("c", "d")
    return b.add_edge("d", END)


async def test_diamond_with_join_runs_d_once() -> None:
    log: list[str] = []
    app = diamond(True, log).compile()
    runner = app.runner()
    sid = await runner.create_session()
    reports = [await runner.run_step(sid) for _ in range(4)]
    assert [r.ran_nodes for r in reports] == [("a",), ("b", "c"), ("b2",), ("d",)]
    assert reports[1].skipped_nodes == ("d",)  # the join waits for b2
    assert reports[-1].status == "completed"
    assert log.count("d") == 1
    await runner.aclose()


async def test_diamond_without_join_runs_d_once_per_arriving_step() -> None:
    log: list[str] = []
    await diamond(False, log).compile().invoke()
    assert log == ["a", "b", "c", "b2", "d", "d"]


async def test_same_step_arrivals_are_deduplicated() -> None:
    log: list[str] = []
    b = GraphBuilder()
    for name in ("a", "b", "c", "d"):
        b.add_node(name, recorder(log, name))
    b.add_edge(START, "a").add_edge("a", "b").add_edge("a", "c").add_edge("b", "d").add_edge(
        "c", "d"
    )
    await b.add_edge("d", END).compile().invoke()
    assert log == ["a", "b", "c", "d"]


async def test_join_fires_again_on_the_next_round_of_a_loop() -> None:
    log: list[str] = []

    async def count(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
        log.append("merge")
        return NodePartial(extra={"rounds": snapshot.extra.get("rounds", 0) + 1})

    b = GraphBuilder().add_node("l", recorder(log, "l")).add_node("r", recorder(log, "r"))
    b.add_node("merge", count).add_edge(START, "l").add_edge(START, "r").add_edge(
        ["l", "r"], "merge"
    )
    b.add_conditional_edges("merge", lambda s: END if s.extra["rounds"] == 3 else ["l", "r"])
    final = await b.compile().invoke()
    assert final.extra["rounds"] == 3
    assert log == ["l", "r", "merge"] * 3


async def test_barrier_order_is_frontier_order_whatever_completion_order() -> None:
    gates = {name: asyncio.Event() for name in ("a", "b", "c")}
    finished: list[str] = []

    def node(name: str, release: str | None):  # type: ignore[no-untyped-def]
        async def run(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
            await gates[name].wait()
            finished.append(name)
            if release:
                gates[release].set()
            return NodePartial(messages=[Message.assistant(name)], extra={"last": name})

        return run

    b = GraphBuilder()
    b.add_node("a", node("a", None)).add_node("b", node("b", "a")).add_node("c", node("c", "b"))
    for name in "abc":
        b.add_edge(START, name).add_edge(name, END)
    gates["c"].set()
    final = await b.compile().invoke()
    assert finished == ["c", "b", "a"]
    assert [m.content for m in final.messages] == ["a", "b", "c"]
    assert final.extra == {"last": "c"}
    assert final.versions == {"messages": 2, "extra": 2, "errors": 1}


async def test_versions_bump_once_per_changing_step() -> None:
    b = GraphBuilder()
    b.add_node("a", recorder([], "a", NodePartial(extra={"k": 1})))
    b.add_node("b", recorder([], "b", NodePartial(extra={"k": 1})))
    b.add_node("c", recorder([], "c", NodePartial(messages=[Message.assistant("x")])))
    b.add_edge(START, "a").add_edge("a", "b").add_edge("b", "c").add_edge("c", END)
    final = await b.compile().invoke()
    # a changes extra (1 -> 2); b writes the same value (no change); c changes messages.
    assert final.versions == {"messages": 2, "extra": 2, "errors": 1}


async def test_loop_exits_through_conditional_edge_after_expected_steps() -> None:
    async def inc(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
        return NodePartial(extra={"i": snapshot.extra.get("i", 0) + 1, "step": ctx.step})

    b = GraphBuilder().add_node("inc", inc).add_edge(START, "inc")
    b.add_conditional_edges("inc", lambda s: "inc" if s.extra["i"] < 7 else END, ["inc", END])
    runner = b.compile().runner()
    sid = await runner.create_session()
    final = await runner.run_until_complete(sid)
    assert final.extra == {"i": 7, "step": 7}
    assert runner.session(sid).step == 7
    await runner.aclose()


async def test_runaway_loop_stops_at_recursion_limit() -> None:
    b = GraphBuilder().add_node("a", recorder([], "a")).add_node("b", recorder([], "b"))
    b.add_edge(START, "a").add_edge(START, "b").add_edge("a", "a").add_edge("b", "b")
    b.add_conditional_edges("a", lambda s: [], [END]).add_conditional_edges(
        "b", lambda s: [], [END]
    )
    with pytest.raises(RecursionLimitError) as info:
        await b.compile().invoke(recursion_limit=25)
    assert info.value.limit == 25
    assert info.value.frontier == ("a", "b")
    message = str(info.value)
    assert message.startswith("session '")
    assert "reached the recursion limit of 25 steps; the nodes due next were: a, b." in message


async def test_default_recursion_limit_is_1000() -> None:
    b = GraphBuilder().add_node("a", recorder([], "a")).add_edge(START, "a").add_edge("a", "a")
    b.add_conditional_edges("a", lambda s: [], [END])
    runner = b.compile().runner(lifecycle_events=False)
    sid = await runner.create_session()
    with pytest.raises(RecursionLimitError):
        await runner.run_until_complete(sid)
    assert runner.session(sid).step == 1000
    await runner.aclose()
