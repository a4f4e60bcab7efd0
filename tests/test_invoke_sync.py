"""`App.invoke_sync`: where plain-function nodes run, and what stays the same wherever they do."""

from __future__ import annotations

import asyncio
import contextvars
import signal
import threading

import pytest

from weavegraph import (
    END,
    START,
    App,
    EventBusConfig,
    GraphBuilder,
    InMemoryCheckpointer,
    MemorySink,
    NodeContext,
    NodeExecutionError,
    NodePartial,
    RuntimeConfig,
    StateSnapshot,
    VersionedState,
)

MARK: contextvars.ContextVar[str] = contextvars.ContextVar("mark", default="unset")


def where(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
    """Record the node's thread, and whether it sees a running event loop."""
    ctx.emit("where", "here")
    return NodePartial(
        extra={
            f"{ctx.node}_main": threading.current_thread() is threading.main_thread(),
            f"{ctx.node}_loop": asyncio._get_running_loop() is not None,
        }
    )


async def where_async(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
    return where(snapshot, ctx)


def chain(*nodes: tuple[str, object], timeout: float | None = None) -> GraphBuilder:
    builder = GraphBuilder()
    previous = START
    for name, node in nodes:
        builder.add_node(name, node, timeout=timeout)  # type: ignore[arg-type]
        builder.add_edge(previous, name)
        previous = name
    return builder.add_edge(previous, END)


def ran_inline(final: VersionedState, *names: str) -> list[bool]:
    return [final.extra[f"{name}_main"] for name in names]


def test_a_graph_of_plain_functions_runs_in_the_calling_thread() -> None:
    final = chain(("a", where), ("b", where)).compile().invoke_sync()
    assert ran_inline(final, "a", "b") == [True, True]
    # As in a worker thread, the node sees no running loop.
    assert [final.extra["a_loop"], final.extra["b_loop"]] == [False, False]


@pytest.mark.parametrize(
    "case", ["node timeout", "run timeout", "async node", "sink", "checkpointer"]
)
def test_plain_functions_use_a_worker_thread_when_something_else_needs_the_loop(
    case: str,
) -> None:
    nodes: list[tuple[str, object]] = [("a", where), ("b", where)]
    if case == "async node":
        nodes.append(("c", where_async))
    builder = chain(*nodes, timeout=5.0 if case == "node timeout" else None)
    config = RuntimeConfig(
        event_bus=EventBusConfig(sinks=(MemorySink(),) if case == "sink" else ()),
        checkpointer=InMemoryCheckpointer() if case == "checkpointer" else None,
    )
    app = App(builder.compile().graph, config)
    final = app.invoke_sync(timeout=5.0) if case == "run timeout" else app.invoke_sync()
    assert ran_inline(final, "a", "b") == [False, False]


def test_a_step_of_several_plain_functions_runs_them_in_worker_threads() -> None:
    builder = GraphBuilder().add_node("a", where).add_node("b", where).add_node("c", where)
    builder.add_edge(START, "a").add_edge(START, "b").add_edge(["a", "b"], "c")
    app = builder.add_edge("c", END).compile()
    final = app.invoke_sync()
    assert ran_inline(final, "a", "b", "c") == [False, False, True]


def test_a_node_in_the_calling_thread_may_run_its_own_event_loop() -> None:
    def nested(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
        async def inner() -> int:
            await asyncio.sleep(0)
            return 7

        return NodePartial(extra={"inner": asyncio.run(inner())})

    assert chain(("n", nested)).compile().invoke_sync().extra == {"inner": 7}


def test_a_node_in_the_calling_thread_gets_a_copy_of_the_context() -> None:
    def mark(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
        seen = MARK.get()
        MARK.set(ctx.node)
        return NodePartial(extra={ctx.node: seen})

    final = chain(("a", mark), ("b", mark)).compile().invoke_sync()
    assert final.extra == {"a": "unset", "b": "unset"}
    assert MARK.get() == "unset"


def test_failures_of_nodes_in_the_calling_thread_are_reported_as_usual() -> None:
    def boom(snapshot: StateSnapshot, ctx: NodeContext) -> None:
        raise ValueError("bad")

    with pytest.raises(NodeExecutionError) as info:
        chain(("a", where), ("b", boom)).compile().invoke_sync()
    assert (info.value.node, info.value.step) == ("b", 2)
    assert isinstance(info.value.__cause__, ValueError)


@pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread()
    or signal.getsignal(signal.SIGINT) is not signal.default_int_handler,
    reason="needs asyncio.run's own Ctrl-C handling",
)
def test_ctrl_c_during_a_node_stops_the_run_after_that_node() -> None:
    ran: list[str] = []

    def node(snapshot: StateSnapshot, ctx: NodeContext) -> None:
        ran.append(ctx.node)
        if ctx.node == "b":
            signal.raise_signal(signal.SIGINT)

    app = chain(("a", node), ("b", node), ("c", node), ("d", node)).compile()
    with pytest.raises(KeyboardInterrupt):
        app.invoke_sync()
    assert ran == ["a", "b"]
