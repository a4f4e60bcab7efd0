"""Run lifecycle diagnostics: what the runtime says about a run without any node code.

Each is an `Event` of kind "diagnostic" with the run's session id and one of these scopes.
Their metadata answers "is it my node or the framework?" for every step.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ._event import STREAM_END_SCOPE, Event
from ._json import JSONValue

__all__ = [
    "INTERRUPT_SCOPE",
    "LIFECYCLE_SCOPES",
    "NODE_FAILED_SCOPE",
    "NODE_FINISHED_SCOPE",
    "NODE_RETRY_SCOPE",
    "NODE_STARTED_SCOPE",
    "RUN_FINISHED_SCOPE",
    "RUN_STARTED_SCOPE",
    "STEP_FINISHED_SCOPE",
    "STEP_STARTED_SCOPE",
    "interrupted",
    "node_failed",
    "node_finished",
    "node_retry",
    "node_started",
    "run_finished",
    "run_started",
    "step_finished",
    "step_started",
    "stream_end",
]

_fast = Event._fast

RUN_STARTED_SCOPE = "__weavegraph_run_started__"
STEP_STARTED_SCOPE = "__weavegraph_step_started__"
NODE_STARTED_SCOPE = "__weavegraph_node_started__"
NODE_FINISHED_SCOPE = "__weavegraph_node_finished__"
NODE_RETRY_SCOPE = "__weavegraph_node_retry__"
NODE_FAILED_SCOPE = "__weavegraph_node_failed__"
STEP_FINISHED_SCOPE = "__weavegraph_step_finished__"
INTERRUPT_SCOPE = "__weavegraph_interrupt__"
RUN_FINISHED_SCOPE = "__weavegraph_run_finished__"

LIFECYCLE_SCOPES = frozenset(
    {
        RUN_STARTED_SCOPE,
        STEP_STARTED_SCOPE,
        NODE_STARTED_SCOPE,
        NODE_FINISHED_SCOPE,
        NODE_RETRY_SCOPE,
        NODE_FAILED_SCOPE,
        STEP_FINISHED_SCOPE,
        INTERRUPT_SCOPE,
        RUN_FINISHED_SCOPE,
    }
)


def _diag(
    scope: str,
    message: str,
    session: str,
    node: str | None,
    step: int | None,
    meta: dict[str, JSONValue],
) -> Event:
    # Four of these per one-node step: built positionally, their metadata as literal dicts.
    return _fast("diagnostic", scope, message, meta, session, node, step)


def _ms(milliseconds: float) -> float:
    """Milliseconds to the microsecond (as `round(x, 3)`, which costs twice as much)."""
    return round(milliseconds * 1000.0) / 1000.0


def run_started(session: str, step: int, frontier: Sequence[str]) -> Event:
    """The run of `session` starts (or resumes) after `step` with `frontier` due next."""
    return _diag(
        RUN_STARTED_SCOPE,
        f"run started: session={session} frontier={','.join(frontier)}",
        session,
        None,
        step,
        {"frontier": list(frontier)},
    )


def step_started(session: str, step: int, frontier: Sequence[str]) -> Event:
    """Superstep `step` starts running `frontier`."""
    return _diag(
        STEP_STARTED_SCOPE,
        f"step {step} started: {', '.join(frontier)}",
        session,
        None,
        step,
        {"frontier": list(frontier)},
    )


def node_started(session: str, step: int, node: str, attempt: int) -> Event:
    """Node `node` starts attempt `attempt` in `step`."""
    return _diag(
        NODE_STARTED_SCOPE, f"node {node} started", session, node, step, {"attempt": attempt}
    )


def node_finished(session: str, step: int, node: str, duration_ms: float) -> Event:
    """Node `node` finished in `duration_ms`."""
    return _diag(
        NODE_FINISHED_SCOPE,
        f"node {node} finished",
        session,
        node,
        step,
        {"duration_ms": _ms(duration_ms)},
    )


def node_retry(session: str, step: int, node: str, attempt: int, delay: float, error: str) -> Event:
    """Node `node` failed attempt `attempt` and will be tried again after `delay` seconds."""
    return _diag(
        NODE_RETRY_SCOPE,
        f"node {node} failed attempt {attempt} ({error}); retrying in {delay:g} s",
        session,
        node,
        step,
        {"attempt": attempt, "delay_s": delay, "error": error},
    )


def node_failed(session: str, step: int, node: str, attempts: int, error: str) -> Event:
    """Node `node` failed for good after `attempts` attempts."""
    return _diag(
        NODE_FAILED_SCOPE,
        f"node {node} failed: {error}",
        session,
        node,
        step,
        {"attempts": attempts, "error": error},
    )


def step_finished(
    session: str,
    step: int,
    ran: Sequence[str],
    updated: Sequence[str],
    *,
    node_ms: float,
    merge_ms: float,
    checkpoint_ms: float,
    events: int,
) -> Event:
    """Superstep `step` finished; where its time went."""
    return _diag(
        STEP_FINISHED_SCOPE,
        f"step {step} finished: ran {', '.join(ran)}",
        session,
        None,
        step,
        {
            "ran": list(ran),
            "updated_channels": list(updated),
            "node_ms": _ms(node_ms),
            "merge_ms": _ms(merge_ms),
            "checkpoint_ms": _ms(checkpoint_ms),
            "events": events,
        },
    )


def interrupted(
    session: str, step: int, when: str, nodes: Iterable[str], frontier: Sequence[str]
) -> Event:
    """The run paused `when` ("before" or "after") a step because of `nodes`."""
    names = sorted(nodes)
    return _diag(
        INTERRUPT_SCOPE,
        f"interrupted {when} {', '.join(names)}",
        session,
        None,
        step,
        {"when": when, "nodes": names, "frontier": list(frontier)},
    )


def run_finished(session: str, step: int, status: str, duration_ms: float) -> Event:
    """The run of `session` stopped with `status` after `step`."""
    return _diag(
        RUN_FINISHED_SCOPE,
        f"run finished: session={session} status={status} step={step}",
        session,
        None,
        step,
        {"status": status, "duration_ms": _ms(duration_ms)},
    )


def stream_end(session: str, step: int, status: str, *, scope: str = STREAM_END_SCOPE) -> Event:
    """The last event of a run (or, with INVOCATION_END_SCOPE, of one invocation of an
    iterative session); always published, whatever the lifecycle settings."""
    return Event(
        "diagnostic",
        scope,
        f"session={session} status={status} step={step}",
        {"status": status},
        session_id=session,
        step=step,
    )
