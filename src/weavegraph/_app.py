"""`App`: a compiled graph, and the ways to run it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ._bus import EventBus
from ._config import RuntimeConfig
from ._graph import Graph
from ._invoke import EventReceiver, InvocationHandle
from ._render import to_dot, to_mermaid
from ._runner import AppRunner
from ._session import new_session_id
from ._state import VersionedState

if TYPE_CHECKING:
    from ._event import Event
    from ._sinks import EventSink
    from ._stream import EventStream

__all__ = ["App"]


class App:
    """A validated graph, ready to run. Made by `GraphBuilder.compile()`.

    Each `invoke*` call is an isolated run with its own runner and event bus, so one App can
    serve many concurrent requests.
    """

    __slots__ = ("config", "graph")

    def __init__(self, graph: Graph, config: RuntimeConfig | None = None) -> None:
        self.graph = graph
        self.config = config or RuntimeConfig()

    # -- drawing ------------------------------------------------------------------------------

    def to_mermaid(self) -> str:
        """The graph as a Mermaid flowchart."""
        return to_mermaid(self.graph)

    def to_dot(self) -> str:
        """The graph in Graphviz DOT."""
        return to_dot(self.graph)

    # -- running ------------------------------------------------------------------------------

    def runner(
        self,
        *,
        event_bus: EventBus | None = None,
        recursion_limit: int | None = None,
        lifecycle_events: bool | None = None,
        max_concurrency: int | None = None,
        **options: Any,
    ) -> AppRunner:
        """An `AppRunner` set up from this app's config; keyword arguments override it.

        Without `event_bus`, the runner gets a new bus built from `config.event_bus`, which
        `runner.aclose()` stops. Other keyword arguments go to `AppRunner` as they are.
        """
        cfg = self.config
        owns_bus = event_bus is None
        if event_bus is None:
            event_bus = EventBus.from_config(cfg.event_bus)
        options.setdefault("checkpointer", cfg.checkpointer)
        runner = AppRunner(
            self,
            event_bus=event_bus,
            recursion_limit=cfg.recursion_limit if recursion_limit is None else recursion_limit,
            lifecycle_events=cfg.lifecycle_events if lifecycle_events is None else lifecycle_events,
            max_concurrency=cfg.max_concurrency if max_concurrency is None else max_concurrency,
            **options,
        )
        runner._owns_bus = owns_bus  # a bus made here is stopped by runner.aclose()
        return runner

    async def invoke(
        self,
        state: VersionedState | None = None,
        *,
        timeout: float | None = None,
        session_id: str | None = None,
        recursion_limit: int | None = None,
    ) -> VersionedState:
        """Run the graph to completion and return the final state.

        Events go to the sinks of `config.event_bus` (none by default); to watch a run use
        `invoke_streaming`, `invoke_with_channel`, `invoke_with_sinks` or an `AppRunner`.

        Raises:
            NodeExecutionError, RecursionLimitError, RunTimeoutError, RoutingError,
            ReducerError, CheckpointError: see `AppRunner.run_until_complete`.
        """
        return await self._invoke(state, timeout, session_id, recursion_limit, inline=False)

    async def _invoke(
        self,
        state: VersionedState | None,
        timeout: float | None,
        session_id: str | None,
        recursion_limit: int | None,
        *,
        inline: bool,
    ) -> VersionedState:
        # Without sinks nobody can ever read this run's private bus, so its lifecycle
        # diagnostics would be built for nothing. Node events are still published.
        lifecycle = None if self.config.event_bus.sinks else False
        async with self.runner(
            recursion_limit=recursion_limit, lifecycle_events=lifecycle
        ) as runner:
            runner.inline_sync_nodes = inline
            sid = await runner.create_session(state, session_id=session_id)
            return await runner.run_until_complete(sid, timeout=timeout)

    def invoke_sync(
        self, state: VersionedState | None = None, **options: float | str | None
    ) -> VersionedState:
        """`invoke` for scripts without an event loop.

        The run has an event loop of its own. When the graph is all plain functions and
        nothing else lives on that loop (no sinks in `config.event_bus`, no
        `config.checkpointer`, no `timeout`), a step's only node runs in the calling thread
        instead of a worker thread, unless it has a timeout: it could block nobody, and the
        hop would cost more than the step. Steps of several nodes still run them in threads.

        Raises:
            RuntimeError: called from inside a running event loop (await `invoke` there).
        """
        if asyncio._get_running_loop() is not None:
            raise RuntimeError(
                "invoke_sync() cannot run inside an event loop; use await app.invoke()"
            )
        cfg = self.config
        inline = (
            options.get("timeout") is None
            and not cfg.event_bus.sinks
            and cfg.checkpointer is None
            and not any(spec.is_async for spec in self.graph.nodes.values())
        )
        arguments = {"timeout": None, "session_id": None, "recursion_limit": None, **options}
        return asyncio.run(self._invoke(state, **arguments, inline=inline))  # type: ignore[arg-type]

    async def invoke_with_channel(
        self, state: VersionedState | None = None, *, timeout: float | None = None
    ) -> tuple[VersionedState, EventReceiver]:
        """Run to completion; return the final state and a receiver holding every event."""
        async with self.runner() as runner:
            stream = runner.event_bus.subscribe(lossless=True)
            sid = await runner.create_session(state)
            try:
                final = await runner.run_until_complete(sid, timeout=timeout)
            finally:
                events = _drain(stream)
        return final, EventReceiver(events)

    async def invoke_with_sinks(
        self,
        state: VersionedState | None,
        sinks: Iterable[EventSink],
        *,
        timeout: float | None = None,
    ) -> VersionedState:
        """Run to completion with extra sinks; returns after every sink handled every event."""
        async with self.runner() as runner:
            for sink in sinks:
                runner.event_bus.add_sink(sink)
            sid = await runner.create_session(state)
            return await runner.run_until_complete(sid, timeout=timeout)

    async def invoke_streaming(
        self, state: VersionedState | None = None, *, timeout: float | None = None
    ) -> tuple[InvocationHandle, EventStream]:
        """Start a run in the background; return its handle and its event stream.

        The stream is subscribed before the run starts, so it misses nothing, and it ends
        after the run's STREAM_END diagnostic.
        """
        runner = self.runner()
        session_id = new_session_id()
        # The bus is this run's own: no filter is needed to keep other runs out.
        stream = runner.event_bus.subscribe()
        return InvocationHandle(runner, state, session_id, timeout), stream


def _drain(stream: EventStream) -> list[Event]:
    """Everything the stream holds now (the run is over, so nothing more will come)."""
    events: list[Event] = []
    while (event := stream.try_recv()) is not None:
        events.append(event)
    return events
