from __future__ import annotations

import asyncio
import threading
import time

import pytest

from helpers import assert_no_tasks_left, recorder
from weavegraph import (
    END,
    START,
    GraphBuilder,
    NodeContext,
    NodeExecutionError,
    NodePartial,
    RetryPolicy,
    RunTimeoutError,
    StateSnapshot,
    VersionedState,
)


def single(node, **options) -> GraphBuilder:  # type: ignore[no-untyped-def]
    return GraphBuilder().add_node("n", node, **options).add_edge(START, "n").add_edge("n", END)


async def test_node_failure_raises_with_node_step_and_cause() -> None:
    async def boom(snapshot: StateSnapshot, ctx: NodeContext) -> None:
        raise ValueError("bad input")

    b = GraphBuilder().add_node("ok", recorder([], "ok")).add_node("boom", boom)
    b.add_edge(START, "ok").add_edge("ok", "boom").add_edge("boom", END)
    with pytest.raises(NodeExecutionError) as info:
        await b.compile().invoke()
    err = info.value
    assert (err.node, err.step) == ("boom", 2)
    assert isinstance(err.__cause__, ValueError)
    assert str(err) == "node 'boom' failed in step 2 after 1 attempt(s): ValueError: bad input"
    recorded = err.state.errors  # type: ignore[attr-defined]
    assert len(recorded) == 1
    assert recorded[0].scope.to_dict() == {"kind": "node", "node": "boom", "step": 2}
    assert recorded[0].error.message == "ValueError: bad input"
    assert recorded[0].context == {"attempts": 1}
    assert err.state.versions["errors"] == 2  # type: ignore[attr-defined]


async def test_retry_attempts_are_observed() -> None:
    attempts: list[int] = []

    async def flaky(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
        attempts.append(ctx.attempt)
        if ctx.attempt < 3:
            raise ConnectionError("try again")
        return NodePartial(extra={"done_on": ctx.attempt})

    final = await single(flaky, retry=RetryPolicy(max_attempts=4, backoff=0.001)).compile().invoke()
    assert attempts == [1, 2, 3]
    assert final.extra == {"done_on": 3}


async def test_retry_gives_up_after_max_attempts() -> None:
    attempts: list[int] = []

    async def always(snapshot: StateSnapshot, ctx: NodeContext) -> None:
        attempts.append(ctx.attempt)
        raise ConnectionError("down")

    with pytest.raises(NodeExecutionError, match=r"after 3 attempt\(s\): ConnectionError: down"):
        await single(always, retry=RetryPolicy(max_attempts=3)).compile().invoke()
    assert attempts == [1, 2, 3]


async def test_retry_only_on_listed_exceptions() -> None:
    attempts: list[int] = []

    async def wrong(snapshot: StateSnapshot, ctx: NodeContext) -> None:
        attempts.append(ctx.attempt)
        raise KeyError("not retried")

    policy = RetryPolicy(max_attempts=5, retry_on=(ConnectionError,))
    with pytest.raises(NodeExecutionError):
        await single(wrong, retry=policy).compile().invoke()
    assert attempts == [1]


def test_retry_policy_delays_and_validation() -> None:
    policy = RetryPolicy(max_attempts=5, backoff=0.5, multiplier=3, max_backoff=2)
    assert [policy.delay(n) for n in (1, 2, 3)] == [0.5, 1.5, 2.0]
    with pytest.raises(ValueError, match="max_attempts must be at least 1"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="multiplier >= 1"):
        RetryPolicy(multiplier=0.5)


async def test_node_timeout_is_an_error_with_a_timeout_tag() -> None:
    async def slow(snapshot: StateSnapshot, ctx: NodeContext) -> None:
        await asyncio.Event().wait()

    with pytest.raises(NodeExecutionError) as info:
        await single(slow, timeout=0.01).compile().invoke()
    assert str(info.value) == (
        "node 'n' failed in step 1 after 1 attempt(s): "
        "TimeoutError: node 'n' timed out after 0.01 s"
    )
    assert info.value.state.errors[0].tags == ("timeout",)  # type: ignore[attr-defined]
    await assert_no_tasks_left()


async def test_timeout_then_retry_succeeds() -> None:
    async def slow_once(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
        if ctx.attempt == 1:
            await asyncio.Event().wait()
        return NodePartial(extra={"attempt": ctx.attempt})

    app = single(slow_once, timeout=0.01, retry=RetryPolicy(max_attempts=2)).compile()
    assert (await app.invoke()).extra == {"attempt": 2}


async def test_failure_cancels_siblings_and_leaves_no_task() -> None:
    sibling_cancelled = asyncio.Event()
    sibling_started = asyncio.Event()

    async def sibling(snapshot: StateSnapshot, ctx: NodeContext) -> None:
        sibling_started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            sibling_cancelled.set()
            raise

    async def failing(snapshot: StateSnapshot, ctx: NodeContext) -> None:
        await sibling_started.wait()
        raise RuntimeError("fail fast")

    b = GraphBuilder().add_node("sibling", sibling).add_node("failing", failing)
    b.add_edge(START, "sibling").add_edge(START, "failing")
    b.add_edge("sibling", END).add_edge("failing", END)
    with pytest.raises(NodeExecutionError) as info:
        await b.compile().invoke()
    assert info.value.node == "failing"
    assert sibling_cancelled.is_set()
    await assert_no_tasks_left()


async def test_first_failure_in_frontier_order_is_raised() -> None:
    both_started = asyncio.Barrier(2)

    def failing(message: str):  # type: ignore[no-untyped-def]
        async def run(snapshot: StateSnapshot, ctx: NodeContext) -> None:
            await both_started.wait()
            raise RuntimeError(message)

        return run

    b = GraphBuilder().add_node("x", failing("x")).add_node("y", failing("y"))
    b.add_edge(START, "x").add_edge(START, "y").add_edge("x", END).add_edge("y", END)
    with pytest.raises(NodeExecutionError) as info:
        await b.compile().invoke()
    assert info.value.node == "x"


async def test_whole_run_timeout_cancels_cleanly() -> None:
    cancelled = asyncio.Event()

    async def forever(snapshot: StateSnapshot, ctx: NodeContext) -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    with pytest.raises(RunTimeoutError) as info:
        await single(forever).compile().invoke(timeout=0.02)
    assert "ran longer than its timeout of 0.02 s and was cancelled after 0 completed step(s)" in (
        str(info.value)
    )
    assert cancelled.is_set()
    await assert_no_tasks_left()


async def test_cancelling_the_caller_cancels_the_run() -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def forever(snapshot: StateSnapshot, ctx: NodeContext) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    task = asyncio.create_task(single(forever).compile().invoke())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cancelled.is_set()
    await assert_no_tasks_left()


async def test_bad_return_values_fail_the_node() -> None:
    async def returns_int(snapshot: StateSnapshot, ctx: NodeContext) -> int:
        return 3

    with pytest.raises(NodeExecutionError, match="returned int; return a NodePartial or None"):
        await single(returns_int).compile().invoke()

    async def bad_messages(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
        return NodePartial(messages=["not a message"])  # type: ignore[list-item]

    with pytest.raises(NodeExecutionError, match="messages that are not Message objects"):
        await single(bad_messages).compile().invoke()

    async def bad_extra(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
        return NodePartial(extra={"when": object()})

    with pytest.raises(NodeExecutionError, match="state values must be JSON values"):
        await single(bad_extra).compile().invoke()

    async def bad_errors(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
        return NodePartial(errors=["oops"])  # type: ignore[list-item]

    with pytest.raises(NodeExecutionError, match="errors that are not ErrorEvent objects"):
        await single(bad_errors).compile().invoke()

    async def bad_extra_type(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
        return NodePartial(extra=["x"])  # type: ignore[arg-type]

    with pytest.raises(NodeExecutionError, match="extra that is not a mapping"):
        await single(bad_extra_type).compile().invoke()


async def test_sync_nodes_run_off_the_event_loop() -> None:
    loop_thread = threading.get_ident()
    seen: list[int] = []

    def blocking(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
        seen.append(threading.get_ident())
        time.sleep(0.01)
        return NodePartial(extra={"sync": True})

    ticks = 0

    async def ticker(snapshot: StateSnapshot, ctx: NodeContext) -> None:
        nonlocal ticks
        for _ in range(3):
            await asyncio.sleep(0)
            ticks += 1

    b = GraphBuilder().add_node("blocking", blocking).add_node("ticker", ticker)
    b.add_edge(START, "blocking").add_edge(START, "ticker")
    b.add_edge("blocking", END).add_edge("ticker", END)
    final = await b.compile().invoke()
    assert final.extra == {"sync": True}
    assert len(seen) == 1
    assert seen[0] != loop_thread
    assert ticks == 3


async def test_object_nodes_with_sync_or_async_run() -> None:
    class Doubler:
        async def run(self, snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
            return NodePartial(extra={"n": snapshot.extra["n"] * 2})

    class Incrementer:
        def run(self, snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
            return NodePartial(extra={"n": snapshot.extra["n"] + 1})

    b = GraphBuilder().add_node("double", Doubler()).add_node("inc", Incrementer())
    b.add_edge(START, "double").add_edge("double", "inc").add_edge("inc", END)
    final = await b.compile().invoke(VersionedState(extra={"n": 5}))
    assert final.extra == {"n": 11}


async def test_sync_callable_returning_a_coroutine_is_awaited() -> None:
    async def real(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
        return NodePartial(extra={"ok": 1})

    final = await single(lambda s, c: real(s, c)).compile().invoke()
    assert final.extra == {"ok": 1}


async def test_max_concurrency_bounds_parallel_nodes() -> None:
    running = 0
    peak = 0

    async def work(snapshot: StateSnapshot, ctx: NodeContext) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        for _ in range(3):
            await asyncio.sleep(0)
        running -= 1

    b = GraphBuilder()
    for index in range(8):
        b.add_node(f"w{index}", work).add_edge(START, f"w{index}").add_edge(f"w{index}", END)
    runner = b.compile().runner(max_concurrency=3)
    sid = await runner.create_session()
    await runner.run_until_complete(sid)
    assert peak == 3
    await runner.aclose()


def test_invoke_sync_and_its_guard() -> None:
    app = single(recorder([], "n", NodePartial(extra={"x": 1}))).compile()
    assert app.invoke_sync(VersionedState()).extra == {"x": 1}

    async def inside() -> None:
        with pytest.raises(RuntimeError, match="cannot run inside an event loop"):
            app.invoke_sync()

    asyncio.run(inside())
