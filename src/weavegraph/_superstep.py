"""One superstep of a session: run the frontier, merge at the barrier, route, checkpoint."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from . import _lifecycle as life
from ._error_event import ErrorScope
from ._errors import (
    CheckpointError,
    NodeExecutionError,
    RecursionLimitError,
    ReducerError,
    RoutingError,
)
from ._execute import NodeFailure, StepContext, run_frontier
from ._reducers import apply_updates
from ._session import Session, next_frontier, record_error
from .checkpoint import RunStatus

if TYPE_CHECKING:
    from ._runner import AppRunner

__all__ = ["StepReport", "fail", "save", "superstep"]

_E = TypeVar("_E", bound=BaseException)


@dataclass(frozen=True, slots=True)
class StepReport:
    """What one call of `run_step` did (nothing ran if it paused before the step)."""

    step: int
    ran_nodes: tuple[str, ...]
    skipped_nodes: tuple[str, ...]
    updated_channels: tuple[str, ...]
    next_frontier: tuple[str, ...]
    status: RunStatus


async def superstep(runner: AppRunner, session: Session) -> StepReport:
    """Run the session's next superstep: nodes, barrier, routing, checkpoint, events."""
    frontier = session.frontier
    if not frontier:
        session.status = "completed"
        if runner.autosave:
            await save(runner, session)
        return StepReport(session.step, (), (), (), (), "completed")
    step = session.step + 1
    if step > runner.recursion_limit:
        raise fail(
            session,
            RecursionLimitError(
                f"session {session.id!r} reached the recursion limit of "
                f"{runner.recursion_limit} steps; the nodes due next were: "
                f"{', '.join(frontier)}. If this loop is meant to end, route it to END "
                "through a conditional edge; otherwise raise recursion_limit",
                limit=runner.recursion_limit,
                frontier=frontier,
            ),
            ErrorScope.in_runner(session.id, step),
        )
    if session.paused != "before" and not runner.interrupt_before.isdisjoint(frontier):
        return await _pause(runner, session, "before", runner.interrupt_before & set(frontier))
    session.paused = None
    bus = runner.event_bus
    lifecycle = runner.lifecycle_events
    if lifecycle:
        bus.publish(life.step_started(session.id, step, frontier))
        published = bus.last_id
    t0 = time.perf_counter()
    nodes = runner.graph.nodes
    context = StepContext(
        session.id,
        step,
        session.state.snapshot(),
        bus,
        lifecycle,
        runner.max_concurrency,
        # Several plain-function nodes of one step run side by side, in worker threads.
        runner.inline_sync_nodes and len(frontier) == 1,
    )
    try:
        updates = await run_frontier([nodes[name] for name in frontier], context)
    except NodeFailure as failure:
        raise _node_failed(session, step, failure) from failure.error
    t1 = time.perf_counter()
    try:
        updated = apply_updates(session.state, updates, runner.graph.reducers)
    except Exception as exc:
        error = ReducerError(
            f"merging the updates of step {step} ({', '.join(frontier)}) failed: "
            f"{type(exc).__name__}: {exc}"
        )
        error.__cause__ = exc  # set before recording, so the record shows the cause
        raise fail(session, error, ErrorScope.in_scheduler(step)) from exc
    t2 = time.perf_counter()
    try:
        following, skipped = await next_frontier(runner.graph, session, frontier, updates)
    except RoutingError as exc:
        raise fail(session, exc, ErrorScope.in_scheduler(step))  # noqa: B904
    session.step, session.frontier = step, following
    session.last = (frontier, skipped, updated)
    if not following:
        session.status = "completed"
    elif not runner.interrupt_after.isdisjoint(frontier):
        session.status, session.paused = "interrupted", "after"
    if runner.autosave:
        await save(runner, session)
    if lifecycle:
        t3 = time.perf_counter()
        bus.publish(
            life.step_finished(
                session.id,
                step,
                frontier,
                updated,
                node_ms=(t1 - t0) * 1000.0,
                merge_ms=(t2 - t1) * 1000.0,
                checkpoint_ms=(t3 - t2) * 1000.0,
                events=bus.last_id - published,
            )
        )
        if session.paused == "after":
            bus.publish(
                life.interrupted(session.id, session.step, "after", frontier, session.frontier)
            )
    return StepReport(step, frontier, skipped, updated, following, session.status)


# -- helpers ------------------------------------------------------------------------------


async def _pause(
    runner: AppRunner, session: Session, when: str, nodes: Iterable[str]
) -> StepReport:
    session.status, session.paused = "interrupted", "before"
    if runner.autosave:
        await save(runner, session)
    if runner.lifecycle_events:
        runner.event_bus.publish(
            life.interrupted(session.id, session.step, when, nodes, session.frontier)
        )
    return StepReport(session.step, (), (), (), session.frontier, "interrupted")


def fail(session: Session, error: _E, scope: ErrorScope) -> _E:
    """Record `error` in the session's errors channel (marking it failed); return it."""
    record_error(session, error, scope)
    return error


def _node_failed(session: Session, step: int, failure: NodeFailure) -> NodeExecutionError:
    record_error(
        session,
        failure.error,
        ErrorScope.in_node(failure.node, step),
        tags=("timeout",) if failure.timed_out else (),
        context={"attempts": failure.attempts},
    )
    return NodeExecutionError(
        f"node {failure.node!r} failed in step {step} after {failure.attempts} "
        f"attempt(s): {type(failure.error).__name__}: {failure.error}",
        node=failure.node,
        step=step,
        state=session.state,
    )


async def save(runner: AppRunner, session: Session) -> None:
    """Checkpoint the session as it is; a failure is recorded and raised as CheckpointError."""
    try:
        await runner.checkpointer.save(session.checkpoint(runner.graph_hash))
    except CheckpointError as exc:
        scope = ErrorScope.in_runner(session.id, session.step)
        raise fail(session, exc, scope)  # noqa: B904 - it is the error itself
    except Exception as exc:
        error = CheckpointError(
            f"saving step {session.step} of session {session.id!r} failed: {exc}"
        )
        error.__cause__ = exc  # set before recording, so the record shows the cause
        raise fail(session, error, ErrorScope.in_runner(session.id, session.step)) from exc
