"""Running the nodes of one superstep: attempts, retries, timeouts and concurrency."""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from . import _lifecycle as life
from ._error_event import ErrorEvent
from ._json import freeze
from ._message import Message
from ._node import NodeContext, NodePartial, NodeSpec, Publisher
from ._state import StateSnapshot

__all__ = ["NodeFailure", "StepContext", "run_frontier"]


class NodeFailure(Exception):
    """A node failed after all its attempts; `__cause__` is its last error."""

    def __init__(self, node: str, attempts: int, error: BaseException, timed_out: bool) -> None:
        super().__init__(node)
        self.node = node
        self.attempts = attempts
        self.error = error
        self.timed_out = timed_out


@dataclass(slots=True)
class StepContext:
    """What every node of one step shares."""

    session_id: str
    step: int
    snapshot: StateSnapshot
    bus: Publisher
    lifecycle: bool
    max_concurrency: int | None
    inline: bool = False  # the step's one node, if a plain function, runs in the loop's thread


async def run_frontier(specs: Sequence[NodeSpec], step: StepContext) -> list[NodePartial | None]:
    """Run the frontier's nodes on one snapshot; results come back in frontier order.

    A single node runs directly (no task group to pay for). Several run concurrently in a
    task group; the first failure cancels the others and is raised as `NodeFailure` (the
    earliest in frontier order if several failed together).
    """
    if len(specs) == 1:
        return [await run_node(specs[0], step)]
    limit = step.max_concurrency
    gate = asyncio.Semaphore(limit) if limit is not None and limit < len(specs) else None
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(_gated(spec, step, gate)) for spec in specs]
    except BaseExceptionGroup as group_error:
        failures = [e for e in group_error.exceptions if isinstance(e, NodeFailure)]
        if not failures:
            raise
        order = {spec.name: index for index, spec in enumerate(specs)}
        raise min(failures, key=lambda f: order[f.node]) from None
    return [task.result() for task in tasks]


async def _gated(
    spec: NodeSpec, step: StepContext, gate: asyncio.Semaphore | None
) -> NodePartial | None:
    if gate is None:
        return await run_node(spec, step)
    async with gate:
        return await run_node(spec, step)


async def run_node(spec: NodeSpec, step: StepContext) -> NodePartial | None:
    """Run one node with its retry policy and timeout; raise NodeFailure when it gives up."""
    attempt = 1
    bus = step.bus
    while True:
        ctx = NodeContext(spec.name, step.step, step.session_id, bus, attempt)
        if step.lifecycle:
            bus.publish(life.node_started(step.session_id, step.step, spec.name, attempt))
        started = time.perf_counter()
        timed_out = False
        try:
            if spec.timeout is None:
                if spec.is_async:  # the common case, without the extra coroutine of _call
                    result = await spec.fn(step.snapshot, ctx)  # type: ignore[misc]
                else:
                    result = await _call(spec, step.snapshot, ctx, step.inline)
            else:
                try:
                    async with asyncio.timeout(spec.timeout) as deadline:
                        result = await _call(spec, step.snapshot, ctx, False)
                except TimeoutError:
                    if not deadline.expired():
                        raise  # the node's own TimeoutError, not our deadline
                    timed_out = True
                    raise TimeoutError(
                        f"node {spec.name!r} timed out after {spec.timeout:g} s"
                    ) from None
            partial = _checked(spec.name, result)
        except Exception as exc:
            policy = spec.retry
            error = f"{type(exc).__name__}: {exc}"
            if (
                policy is not None
                and attempt < policy.max_attempts
                and isinstance(exc, policy.retry_on)
            ):
                delay = policy.delay(attempt)
                if step.lifecycle:
                    bus.publish(
                        life.node_retry(
                            step.session_id, step.step, spec.name, attempt, delay, error
                        )
                    )
                if delay > 0:
                    await asyncio.sleep(delay)
                attempt += 1
                continue
            if step.lifecycle:
                bus.publish(life.node_failed(step.session_id, step.step, spec.name, attempt, error))
            raise NodeFailure(spec.name, attempt, exc, timed_out) from exc
        if step.lifecycle:
            elapsed = (time.perf_counter() - started) * 1000.0
            bus.publish(life.node_finished(step.session_id, step.step, spec.name, elapsed))
        return partial


async def _call(spec: NodeSpec, snapshot: StateSnapshot, ctx: NodeContext, inline: bool) -> object:
    if spec.is_async:
        return await spec.fn(snapshot, ctx)  # type: ignore[misc]
    if inline:
        result = _call_inline(spec, snapshot, ctx)
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            await asyncio.sleep(0)  # a Ctrl-C during the node: stop now, as after a thread hop
    else:
        # A plain function may block, so it runs in a worker thread, never on the loop.
        result = await asyncio.to_thread(spec.fn, snapshot, ctx)
    if inspect.isawaitable(result):  # e.g. a lambda returning a coroutine
        return await result
    return result


def _call_inline(spec: NodeSpec, snapshot: StateSnapshot, ctx: NodeContext) -> object:
    """Run a plain-function node in the thread of the loop, as `asyncio.to_thread` would.

    Only for `invoke_sync` runs whose loop serves nothing else (see
    `AppRunner.inline_sync_nodes`), where a thread hop per node (about 8 times the cost of the
    step) would protect nobody: the caller waits for the run anyway. As in a worker thread, the
    node sees no running loop (so it may call `asyncio.run` itself) and a copy of the context.
    Without a timeout there is nothing to interrupt it: nodes with a timeout, and runs with
    one, still go to a worker thread.
    """
    loop = asyncio.get_running_loop()
    asyncio._set_running_loop(None)
    try:
        return contextvars.copy_context().run(spec.fn, snapshot, ctx)
    finally:
        asyncio._set_running_loop(loop)


def _checked(node: str, result: object) -> NodePartial | None:
    """Accept None or a well-formed NodePartial (extra frozen), else raise TypeError."""
    if result is None:
        return None
    if not isinstance(result, NodePartial):
        raise TypeError(
            f"node {node!r} returned {type(result).__name__}; return a NodePartial or None"
        )
    if result.messages and not all(isinstance(m, Message) for m in result.messages):
        raise TypeError(f"node {node!r} returned messages that are not Message objects")
    if result.errors and not all(isinstance(e, ErrorEvent) for e in result.errors):
        raise TypeError(f"node {node!r} returned errors that are not ErrorEvent objects")
    if result.extra:
        if not isinstance(result.extra, Mapping):
            raise TypeError(f"node {node!r} returned extra that is not a mapping")
        result.extra = freeze(result.extra)
    return result
