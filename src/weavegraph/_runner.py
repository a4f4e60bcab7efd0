"""`AppRunner`: sessions (new, resumed, forked, iterative) and the run loop."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from . import _lifecycle as life
from ._bus import EventBus
from ._error_event import ErrorScope
from ._errors import EventBusError, RunTimeoutError, SessionError
from ._event import INVOCATION_END_SCOPE, STREAM_END_SCOPE
from ._graph import START, Graph
from ._message import Message
from ._node import NodePartial
from ._reducers import apply_updates
from ._resource import AsyncResource
from ._session import Session, entry, record_error, successors
from ._session import new_session_id as fresh_id
from ._state import VersionedState
from ._superstep import StepReport, save, superstep
from .checkpoint import Checkpoint, Checkpointer, EventLog, EventLogSink, InMemoryCheckpointer

if TYPE_CHECKING:
    from ._app import App

__all__ = ["AppRunner", "StepReport"]

DEFAULT_RECURSION_LIMIT = 1000
_OVER = ("completed", "failed", "cancelled")


class AppRunner(AsyncResource):
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
        event_log: a durable log every event of the bus is written to (losslessly). A session
            resumed on a fresh bus continues the event ids of its log.
        keep_finished: finished sessions (completed, failed, cancelled) kept in memory for
            `session()`; older ones are dropped (their checkpoints stay in the checkpointer),
            so a long-lived runner does not grow without bound.
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
        event_log: EventLog | None = None,
        keep_finished: int = 1000,
    ) -> None:
        if keep_finished < 0:
            raise ValueError(f"keep_finished must not be negative; got {keep_finished}")
        self.app = app
        self.graph: Graph = app.graph
        self.graph_hash = self.graph.hash()
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
        self._iterative: set[str] = set()
        self._releasing: set[str] = set()
        self.keep_finished = keep_finished
        # Set by `App.invoke_sync` when nothing else lives on the run's loop: a step's only
        # node, if a plain function, then runs in the loop's thread (see _execute).
        self.inline_sync_nodes = False
        self._finished: dict[str, None] = {}  # finished session ids, oldest first
        self.event_log = event_log
        if event_log is not None:
            self.event_bus.add_sink(EventLogSink(event_log))

    def _known(self, names: Iterable[str], option: str) -> frozenset[str]:
        names = list(names)
        unknown = [n for n in names if n not in self.graph.nodes]
        if unknown:
            raise ValueError(
                f"{option} names unknown node(s) {', '.join(map(repr, unknown))}; "
                f"registered nodes: {', '.join(self.graph.nodes)}"
            )
        return frozenset(names)

    # -- lifecycle ----------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Stop (and drain) the event bus if this runner created it. Safe to call twice."""
        if self._owns_bus:
            await self.event_bus.stop()

    # -- sessions -----------------------------------------------------------------------------

    async def create_session(
        self, state: VersionedState | None = None, *, session_id: str | None = None
    ) -> str:
        """Start a session from `state`, or pick up a checkpointed one; returns its id.

        If the checkpointer already holds session `session_id`, the session continues from
        its latest checkpoint (and `state` must be None): nothing completed runs again.

        Raises:
            SessionError: the session is already live in this runner, or `state` was given
                for a session that exists in the checkpointer.
        """
        session_id = session_id or fresh_id()
        if session_id in self._sessions:
            raise SessionError(f"session {session_id!r} already exists in this runner")
        if (checkpoint := await self.checkpointer.load_latest(session_id)) is not None:
            if state is not None:
                raise SessionError(
                    f"session {session_id!r} already has checkpoints (latest step "
                    f"{checkpoint.step}); pass no state to continue it, or use another id"
                )
            await self._continue_events(session_id)
            return self._restore(checkpoint).id
        state = (state or VersionedState()).copy()
        frontier = entry(await successors(self.graph, START, None, state))
        session = Session(session_id, state, 0, frontier)
        self._sessions[session_id] = session
        if self.autosave:
            await save(self, session)
        return session_id

    def session(self, session_id: str) -> Session:
        """The live record of a session.

        Raises:
            SessionError: no such session in this runner.
        """
        try:
            return self._sessions[session_id]
        except KeyError:
            names = list(self._sessions)
            known = ", ".join(names[-10:]) or "none"
            if len(names) > 10:
                known = f"{len(names)} sessions, the latest {known}"
            raise SessionError(f"unknown session {session_id!r}; sessions: {known}") from None

    async def resume(self, session_id: str, *, timeout: float | None = None) -> VersionedState:
        """Continue a session from its latest checkpoint (e.g. after a crash) to its end.

        Raises:
            SessionError: no checkpoint of the session exists, or its run is already over
                (its final state is in the latest checkpoint).
        """
        if session_id not in self._sessions:
            checkpoint = await self.checkpointer.load_latest(session_id)
            if checkpoint is None:
                raise SessionError(f"no checkpoint of session {session_id!r} to resume from")
            await self._continue_events(session_id)
            self._restore(checkpoint)
        session = self.session(session_id)
        if session.status in _OVER:
            raise SessionError(
                f"session {session_id!r} is already {session.status} at step {session.step}; "
                "nothing to resume (its final state is in its latest checkpoint)"
            )
        return await self.run_until_complete(session_id, timeout=timeout)

    async def fork(self, session_id: str, step: int, *, new_session_id: str | None = None) -> str:
        """Start a new session from a saved step of another one (time travel); returns its id.

        The fork continues as the original would have after `step`; its history starts there.
        """
        checkpoint = await self.checkpointer.load(session_id, step)
        if checkpoint is None:
            raise SessionError(f"session {session_id!r} has no checkpoint at step {step}")
        new_id = new_session_id or fresh_id()
        if new_id in self._sessions or await self.checkpointer.load_latest(new_id) is not None:
            raise SessionError(f"session {new_id!r} already exists; choose another id")
        session = Session.from_checkpoint(checkpoint)
        session.id = new_id
        session.status = "running" if session.frontier else "completed"
        session.paused = None
        self._sessions[new_id] = session
        if self.autosave:
            await save(self, session)
        return new_id

    async def _continue_events(self, session_id: str) -> None:
        """Make this bus's next event id follow the session's logged events."""
        if self.event_log is None:
            return
        await self.event_log.setup()
        logged = await self.event_log.last_id(session_id)
        bus = self.event_bus
        if logged <= bus.last_id:
            return
        try:
            bus.continue_ids(logged)
        except EventBusError:
            raise SessionError(
                f"session {session_id!r} has {logged} logged events but this runner's bus "
                "is already in use; resume it with a new runner (or a new EventBus) so that "
                f"its event ids continue after {logged}"
            ) from None

    def _restore(self, checkpoint: Checkpoint) -> Session:
        if checkpoint.graph_hash and checkpoint.graph_hash != self.graph_hash:
            raise SessionError(
                f"session {checkpoint.session_id!r} was saved by a different graph "
                f"(hash {checkpoint.graph_hash}, this graph {self.graph_hash}); resume it "
                "with the graph that made it"
            )
        session = Session.from_checkpoint(checkpoint)
        self._sessions[session.id] = session
        return session

    # -- iterative sessions -------------------------------------------------------------------

    async def create_iterative_session(
        self, state: VersionedState | None = None, *, session_id: str | None = None
    ) -> str:
        """A session that runs the graph once per input (`invoke_next`) until finished.

        Each invocation ends with an INVOCATION_END_SCOPE diagnostic instead of STREAM_END;
        `finish_iterative_session` publishes the STREAM_END that closes the stream.
        """
        session_id = await self.create_session(state, session_id=session_id)
        self._iterative.add(session_id)
        return session_id

    async def invoke_next(
        self,
        session_id: str,
        update: NodePartial | str | None = None,
        *,
        timeout: float | None = None,
    ) -> VersionedState:
        """Merge `update` (a user message if a str) into the state and run the graph again."""
        session = self._iterative_session(session_id)
        if isinstance(update, str):
            update = NodePartial(messages=[Message.user(update)])
        if update is not None:
            apply_updates(session.state, [update], self.graph.reducers)
        if session.status == "completed":
            session.status = "running"
            session.frontier = entry(await successors(self.graph, START, None, session.state))
        # A copy: the session's state goes on changing with the next input.
        return (await self._drive(session, timeout, INVOCATION_END_SCOPE)).copy()

    async def finish_iterative_session(self, session_id: str) -> VersionedState:
        """End an iterative session: publish its STREAM_END and return its final state."""
        session = self._iterative_session(session_id)
        self._iterative.discard(session_id)
        status = "completed" if session.status in ("completed", "running") else session.status
        self.event_bus.publish(life.stream_end(session.id, session.step, status))
        return session.state

    def _iterative_session(self, session_id: str) -> Session:
        if session_id not in self._iterative:
            raise SessionError(f"session {session_id!r} is not an open iterative session")
        return self.session(session_id)

    # -- running ------------------------------------------------------------------------------

    async def run_until_complete(
        self, session_id: str, *, timeout: float | None = None, end_stream: bool = True
    ) -> VersionedState:
        """Run the session's steps until it completes, pauses at an interrupt or is released.

        Publishes the run's diagnostics and, last, exactly one STREAM_END diagnostic whose
        status is completed, interrupted, error or cancelled. Calling it again on an
        interrupted session resumes the run where it paused.

        Args:
            session_id: the session to run.
            timeout: seconds the whole run may take.
            end_stream: publish the STREAM_END. A caller that may retry the run elsewhere
                (a queue worker) passes False and publishes it once the outcome is final.

        Raises:
            NodeExecutionError: a node failed after its retries.
            RecursionLimitError: more than `recursion_limit` steps.
            RunTimeoutError: the run took longer than `timeout` seconds.
            RoutingError, ReducerError, CheckpointError: routing, merging or saving failed.
            SessionError: the session is unknown or already over.
        Each of these but SessionError is also recorded in the state's `errors` channel.
        """
        session = self.session(session_id)
        if session.status in _OVER:
            raise SessionError(f"session {session_id!r} is {session.status}; start a new one")
        end = INVOCATION_END_SCOPE if session_id in self._iterative else STREAM_END_SCOPE
        return await self._drive(session, timeout, end if end_stream else None)

    def release(self, session_id: str) -> None:
        """Stop the session's run after the step in flight, without ending its stream.

        The step is finished and checkpointed as usual; `run_until_complete` then returns with
        the session still ``running`` (see `released`), so another process can continue it
        from its checkpoint. Used by workers that shut down gracefully.
        """
        self.session(session_id)
        self._releasing.add(session_id)

    def released(self, session_id: str) -> bool:
        """True if the session was released and has steps left to run."""
        return session_id in self._releasing and self.session(session_id).status == "running"

    async def _drive(
        self, session: Session, timeout: float | None, end: str | None
    ) -> VersionedState:
        """Step until done or paused, then publish the run's last diagnostics (`end` last)."""
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
                while session.status == "running" and session.id not in self._releasing:
                    await superstep(self, session)
            status = "released" if session.status == "running" else session.status
            return session.state
        except TimeoutError as exc:
            if not deadline.expired():
                raise
            error = RunTimeoutError(
                f"session {session.id!r} ran longer than its timeout of {timeout:g} s "
                f"and was cancelled after {session.step} completed step(s)"
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
            if end is not None and status != "released":
                bus.publish(life.stream_end(session.id, session.step, status, scope=end))
            if session.status in _OVER:
                self._forget_finished(session.id)

    def _forget_finished(self, session_id: str) -> None:
        """Note a finished session; drop the oldest beyond `keep_finished`."""
        finished = self._finished
        finished.pop(session_id, None)
        finished[session_id] = None
        while len(finished) > self.keep_finished:
            oldest = next(iter(finished))
            del finished[oldest]
            session = self._sessions.get(oldest)
            if session is not None and session.status in _OVER:
                del self._sessions[oldest]
                self._releasing.discard(oldest)
                self._iterative.discard(oldest)

    async def run_step(self, session_id: str) -> StepReport:
        """Run the next superstep of a session (or pause at an `interrupt_before`)."""
        session = self.session(session_id)
        if session.status == "interrupted":
            session.status = "running"
        if session.status != "running":
            raise SessionError(f"session {session_id!r} is {session.status}; it cannot step")
        return await superstep(self, session)
