"""`AppRunner`: sessions, the superstep loop, checkpoints and the events of a run."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Self, TypeVar

from . import _lifecycle as life
from ._error_event import ErrorScope
from ._errors import (
    CheckpointError,
    NodeExecutionError,
    RecursionLimitError,
    ReducerError,
    RoutingError,
    RunTimeoutError,
    SessionError,
)
from ._event import Event
from ._execute import NodeFailure, StepContext, run_frontier
from ._graph import START, Graph
from ._reducers import apply_updates
from ._session import Session, next_frontier, record_error, successors
from ._state import VersionedState
from .checkpoint import Checkpointer, InMemoryCheckpointer, RunStatus

if TYPE_CHECKING:
    from ._app import App
    from ._bus import EventBus

__all__ = ["AppRunner", "StepReport"]

DEFAULT_RECURSION_LIMIT = 1000
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


class AppRunner:
    """Runs sessions of an `App` step by step, with checkpoints and events.

    Args:
        app: the compiled graph.
        checkpointer: where each step's checkpoint goes (in memory by default).
        event_bus: the bus node events and run diagnostics are published to (a private one
            without sinks by default, stopped by `aclose()`).
        autosave: save a checkpoint after every step.
        start_listener: start the bus (its sink workers) before the first run.
        max_concurrency: most nodes of one step running at once (unbounded by default).
        recursion_limit: most supersteps of one run (1,000 by default).
        interrupt_before: node names; the run pauses before a step that would run one of them.
        interrupt_after: node names; the run pauses after a step that ran one of them.
        lifecycle_events: publish run/step/node start and finish diagnostics.
    """

    def __init__(
        self,
        app: App,
        *,
        checkpointer: Checkpointer | None = None,
        event_bus: EventBus | None = None,
        autosave: bool = True,
        start_listener: bool = True,
        max_concurrency: int | None = None,
        recursion_limit: int = DEFAULT_RECURSION_LIMIT,
        interrupt_before: Iterable[str] = (),
        interrupt_after: Iterable[str] = (),
        lifecycle_events: bool = True,
    ) -> None:
        from ._bus import EventBus

        self.app = app
        self._graph: Graph = app.graph
        self.checkpointer: Checkpointer = checkpointer or InMemoryCheckpointer()
        self._owns_bus = event_bus is None
        self.event_bus: EventBus = event_bus if event_bus is not None else EventBus()
        self.autosave = autosave
        self._start_listener = start_listener
        if max_concurrency is not None and max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1; got {max_concurrency}")
        if recursion_limit < 1:
            raise ValueError(f"recursion_limit must be at least 1; got {recursion_limit}")
        self.max_concurrency = max_concurrency
        self.recursion_limit = recursion_limit
        self.interrupt_before = self._known(interrupt_before, "interrupt_before")
        self.interrupt_after = self._known(interrupt_after, "interrupt_after")
        self.lifecycle_events = lifecycle_events
        self._sessions: dict[str, Session] = {}
        self._graph_hash = self._graph.hash()

    def _known(self, names: Iterable[str], option: str) -> frozenset[str]:
        names = list(names)
        unknown = [n for n in names if n not in self._graph.nodes]
        if unknown:
            raise ValueError(
                f"{option} names unknown node(s) {', '.join(map(repr, unknown))}; "
                f"registered nodes: {', '.join(self._graph.nodes)}"
            )
        return frozenset(names)

    # -- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop (and drain) the event bus if this runner created it. Safe to call twice."""
        if self._owns_bus:
            await self.event_bus.stop()

    # -- sessions -----------------------------------------------------------------------------

    async def create_session(
        self, state: VersionedState | None = None, *, session_id: str | None = None
    ) -> str:
        """Start a session from `state`; returns its id (a new one unless given)."""
        session_id = session_id or uuid.uuid4().hex
        if session_id in self._sessions:
            raise SessionError(f"session {session_id!r} already exists in this runner")
        state = (state or VersionedState()).copy()
        frontier = tuple(await successors(self._graph, START, None, state))
        session = Session(session_id, state, 0, frontier)
        self._sessions[session_id] = session
        if self.autosave:
            await self._save(session)
        return session_id

    def session(self, session_id: str) -> Session:
        """The live record of a session.

        Raises:
            SessionError: no such session in this runner.
        """
        try:
            return self._sessions[session_id]
        except KeyError:
            known = ", ".join(self._sessions) or "none"
            raise SessionError(f"unknown session {session_id!r}; sessions: {known}") from None

    # -- running ------------------------------------------------------------------------------

    async def run_until_complete(
        self, session_id: str, *, timeout: float | None = None
    ) -> VersionedState:
        """Run the session's steps until it completes or pauses at an interrupt.

        Publishes the run's diagnostics and, last, exactly one STREAM_END diagnostic whose
        status is completed, interrupted, error or cancelled. Calling it again on an
        interrupted session resumes the run where it paused.

        Raises:
            NodeExecutionError: a node failed after its retries.
            RecursionLimitError: more than `recursion_limit` steps.
            RunTimeoutError: the run took longer than `timeout` seconds.
            RoutingError, ReducerError, CheckpointError: routing, merging or saving failed.
            SessionError: the session is unknown or already over.
        Each of these but SessionError is also recorded in the state's `errors` channel.
        """
        session = self.session(session_id)
        if session.status in ("completed", "failed", "cancelled"):
            raise SessionError(f"session {session_id!r} is {session.status}; start a new one")
        bus = self.event_bus
        if self._start_listener:
            await bus.start()
        if session.status == "interrupted":
            session.status = "running"
        started = time.perf_counter()
        if self.lifecycle_events:
            bus.publish(life.run_started(session.id, session.step, session.frontier))
        status = "error"
        try:
            async with asyncio.timeout(timeout) as deadline:
                while session.status == "running":
                    await self._step(session)
            status = session.status
            return session.state
        except TimeoutError as exc:
            if not deadline.expired():
                raise
            error = RunTimeoutError(
                f"session {session.id!r} ran longer than its timeout of {timeout:g} s "
                f"(cancelled during step {session.step + 1})"
            )
            record_error(session, error, ErrorScope.in_runner(session.id, session.step + 1))
            raise error from exc
        except asyncio.CancelledError:
            status, session.status = "cancelled", "cancelled"
            raise
        except BaseException:
            session.status = "failed"
            raise
        finally:
            if self.lifecycle_events:
                elapsed = (time.perf_counter() - started) * 1000.0
                bus.publish(life.run_finished(session.id, session.step, status, elapsed))
            bus.publish(life.stream_end(session.id, session.step, status))

    async def run_step(self, session_id: str) -> StepReport:
        """Run the next superstep of a session (or pause at an `interrupt_before`)."""
        session = self.session(session_id)
        if session.status == "interrupted":
            session.status = "running"
        if session.status != "running":
            raise SessionError(f"session {session_id!r} is {session.status}; it cannot step")
        return await self._step(session)

    async def _step(self, session: Session) -> StepReport:
        frontier = session.frontier
        if not frontier:
            session.status = "completed"
            return StepReport(session.step, (), (), (), (), "completed")
        step = session.step + 1
        if step > self.recursion_limit:
            raise self._fail(
                session,
                RecursionLimitError(
                    f"session {session.id!r} reached the recursion limit of "
                    f"{self.recursion_limit} steps; the nodes due next were: "
                    f"{', '.join(frontier)}. If this loop is meant to end, route it to END "
                    "through a conditional edge; otherwise raise recursion_limit",
                    limit=self.recursion_limit,
                    frontier=frontier,
                ),
                ErrorScope.in_runner(session.id, step),
            )
        if session.paused != "before" and not self.interrupt_before.isdisjoint(frontier):
            return await self._pause(session, "before", self.interrupt_before & set(frontier))
        session.paused = None
        bus = self.event_bus
        lifecycle = self.lifecycle_events
        if lifecycle:
            bus.publish(life.step_started(session.id, step, frontier))
            published = bus.metrics().published
        t0 = time.perf_counter()
        nodes = self._graph.nodes
        context = StepContext(
            session.id, step, session.state.snapshot(), bus, lifecycle, self.max_concurrency
        )
        try:
            updates = await run_frontier([nodes[name] for name in frontier], context)
        except NodeFailure as failure:
            raise self._node_failed(session, step, failure) from failure.error
        t1 = time.perf_counter()
        try:
            updated = apply_updates(session.state, updates, self._graph.reducers)
        except Exception as exc:
            error = ReducerError(
                f"merging the updates of step {step} ({', '.join(frontier)}) failed: "
                f"{type(exc).__name__}: {exc}"
            )
            raise self._fail(session, error, ErrorScope.in_scheduler(step)) from exc
        t2 = time.perf_counter()
        try:
            following, skipped = await next_frontier(self._graph, session, frontier, updates)
        except RoutingError as exc:
            raise self._fail(session, exc, ErrorScope.in_scheduler(step))  # noqa: B904
        session.step, session.frontier = step, following
        if not following:
            session.status = "completed"
        elif not self.interrupt_after.isdisjoint(frontier):
            session.status, session.paused = "interrupted", "after"
        if self.autosave:
            await self._save(session, frontier, skipped, updated)
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
                    events=bus.metrics().published - published,
                )
            )
            if session.paused == "after":
                bus.publish(self._interrupt_event(session, "after", frontier))
        return StepReport(step, frontier, skipped, updated, following, session.status)

    # -- helpers ------------------------------------------------------------------------------

    async def _pause(self, session: Session, when: str, nodes: Iterable[str]) -> StepReport:
        session.status, session.paused = "interrupted", "before"
        if self.autosave:
            await self._save(session)
        if self.lifecycle_events:
            self.event_bus.publish(self._interrupt_event(session, when, nodes))
        return StepReport(session.step, (), (), (), session.frontier, "interrupted")

    def _interrupt_event(self, session: Session, when: str, nodes: Iterable[str]) -> Event:
        names = sorted(nodes)
        return Event(
            "diagnostic",
            life.INTERRUPT_SCOPE,
            f"interrupted {when} {', '.join(names)}",
            {"when": when, "nodes": names, "frontier": list(session.frontier)},
            session_id=session.id,
            step=session.step,
        )

    def _fail(self, session: Session, error: _E, scope: ErrorScope) -> _E:
        """Record `error` in the session's errors channel (marking it failed); return it."""
        record_error(session, error, scope)
        return error

    def _node_failed(self, session: Session, step: int, failure: NodeFailure) -> NodeExecutionError:
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

    async def _save(
        self,
        session: Session,
        ran: tuple[str, ...] = (),
        skipped: tuple[str, ...] = (),
        updated: tuple[str, ...] = (),
    ) -> None:
        scope = ErrorScope.in_runner(session.id, session.step)
        try:
            await self.checkpointer.save(
                session.checkpoint(self._graph_hash, ran, skipped, updated)
            )
        except CheckpointError as exc:
            raise self._fail(session, exc, scope)  # noqa: B904 - it is the error itself
        except Exception as exc:
            error = CheckpointError(
                f"saving step {session.step} of session {session.id!r} failed: {exc}"
            )
            raise self._fail(session, error, scope) from exc
