"""The runs a server owns: each a task with its own bus and runner, logged to the event log.

A run's bus feeds its SSE clients while it runs and an `EventLogSink` losslessly, so the log
holds every event. Once a run is over its bus is stopped (which drains the sink), the bus and
runner are dropped, and the run keeps only its outcome; at most `max_finished` such records
stay in memory, older runs are known from the event log (and the checkpointer) alone.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .._errors import SessionError
from .._json import JSONValue
from .._lifecycle import stream_end
from .._time import format_timestamp, utc_now
from ..checkpoint import Checkpointer, EventLog, EventLogSink
from ..events import EventBus, SinkHealth
from ._backend import RunConflictError, RunLimitError
from ._feed import Feed, LogFeed, StreamFeed
from ._health import health_payload

if TYPE_CHECKING:
    from .._app import App
    from .._runner import AppRunner
    from .._state import VersionedState

__all__ = ["Run", "RunRegistry"]


@dataclass(slots=True, eq=False)
class Run:
    """One run and what is known of it; `bus` and `runner` are dropped once it is over."""

    id: str
    created_at: datetime
    bus: EventBus | None
    runner: AppRunner | None
    status: str = "running"
    step: int = 0
    state: dict[str, JSONValue] | None = None
    error: str | None = None
    finished_at: datetime | None = None
    events: int = 0
    started: bool = False  # the task has begun (a task cancelled before that never runs)
    entered: bool = False  # run_until_complete was called: it publishes the STREAM_END
    cancelling: bool = False
    task: asyncio.Task[None] | None = None

    def to_json(self) -> dict[str, JSONValue]:
        """The run as `GET /runs/{id}` shows it."""
        step, events = self.step, self.events
        if self.runner is not None and self.bus is not None:
            try:
                step = self.runner.session(self.id).step
            except SessionError:  # not created yet
                step = 0
            events = self.bus.last_id
        finished = self.finished_at
        return {
            "session_id": self.id,
            "status": self.status,
            "step": step,
            "events": events,
            "state": self.state,
            "error": self.error,
            "created_at": format_timestamp(self.created_at),
            "finished_at": None if finished is None else format_timestamp(finished),
        }


class RunRegistry:
    """Starts, tracks, cancels and forgets runs in this process (a `RunBackend`); see the
    module docstring. It closes `log` in `aclose()` only if `owns_log`."""

    def __init__(
        self,
        app: App,
        log: EventLog,
        *,
        graph_name: str = "app",
        owns_log: bool = False,
        checkpointer: Checkpointer | None = None,
        capacity: int = 1024,
        max_finished: int = 100,
        max_running: int = 64,
    ) -> None:
        self._app = app
        self.graph_name = graph_name
        self.log = log
        self.owns_log = owns_log
        self.checkpointer = checkpointer
        self.capacity = capacity
        self.max_finished = max_finished
        self.max_running = max_running
        self.clients = 0  # open SSE responses
        self._running: dict[str, Run] = {}
        self._finished: OrderedDict[str, Run] = OrderedDict()
        self._sinks: dict[str, SinkHealth] = {}  # failures of the sinks of finished runs
        self._totals = {"runs_started": 0, "events_published": 0, "events_dropped": 0}
        self._closed = False

    @property
    def app(self) -> App:
        """The compiled graph every run uses."""
        return self._app

    async def setup(self) -> None:
        """Open the event log."""
        await self.log.setup()

    async def submit(self, state: VersionedState) -> str:
        """`start`, as the routes call it; returns the run's id."""
        return self.start(state).id

    async def health(self) -> dict[str, JSONValue]:
        """The `/health` document: every sink and the counters."""
        sinks, counters = self.counters()
        return health_payload(sinks, counters)

    # -- starting and stopping ------------------------------------------------------------

    def start(self, state: VersionedState) -> Run:
        """Start a run of `state` in the background; returns its record at once.

        Raises:
            RunLimitError: `max_running` runs are running, or the registry is closed.
        """
        if self._closed:
            raise RunLimitError("the server is shutting down; no new runs")
        if len(self._running) >= self.max_running:
            raise RunLimitError(
                f"{len(self._running)} runs are running, the most this server allows; "
                "try again when one has finished"
            )
        bus = EventBus([EventLogSink(self.log)], capacity=self.capacity)
        options: dict[str, Any] = {"event_bus": bus}
        if self.checkpointer is not None:
            options["checkpointer"] = self.checkpointer
        run = Run(uuid.uuid4().hex, utc_now(), bus, self.app.runner(**options))
        self._running[run.id] = run
        self._totals["runs_started"] += 1
        run.task = asyncio.get_running_loop().create_task(
            self._execute(run, state), name=f"weavegraph-run-{run.id[:8]}"
        )
        return run

    async def cancel(self, run_id: str) -> None:
        """`stop`, as the routes call it."""
        self.stop(run_id)

    def stop(self, run_id: str) -> Run:
        """Ask a running run to stop; its stream ends with ``status=cancelled``.

        Raises:
            LookupError: no such run in memory. RunConflictError: the run is already over.
        """
        run = self._running.get(run_id)
        if run is None:
            over = self._finished.get(run_id)
            if over is None:
                raise LookupError(run_id)
            raise RunConflictError(f"run {run_id!r} is already {over.status}; nothing to cancel")
        if not run.cancelling:
            run.cancelling = True
            # A task cancelled before its first step never runs its own cleanup: let it
            # start and see the flag instead.
            if run.started and run.task is not None:
                run.task.cancel()
        return run

    async def aclose(self) -> None:
        """Refuse new runs, cancel the running ones and wait until each has settled; close
        the log if this registry owns it. Safe to call twice."""
        self._closed = True
        for run_id in list(self._running):
            self.stop(run_id)
        tasks = [run.task for run in self._running.values() if run.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self.owns_log:
            await self.log.aclose()

    async def _execute(self, run: Run, state: VersionedState) -> None:
        run.started = True
        runner = run.runner
        assert runner is not None
        assert run.bus is not None
        try:
            if run.cancelling:
                raise asyncio.CancelledError
            await runner.create_session(state, session_id=run.id)
            run.entered = True
            await runner.run_until_complete(run.id)
        except asyncio.CancelledError:
            # The run is this registry's own task: its cancellation ends here, recorded.
            run.status = "cancelled"
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
        except Exception as exc:
            run.status, run.error = "error", str(exc) or type(exc).__name__
        else:
            status = runner.session(run.id).status  # completed, or interrupted at a pause
            run.status = _STATUS.get(status, status)
        finally:
            if not run.entered:  # the runner never got to say it: the stream still ends
                run.bus.publish(stream_end(run.id, 0, run.status))
            await self._settle(run)

    async def _settle(self, run: Run) -> None:
        assert run.bus is not None
        assert run.runner is not None
        run.finished_at = utc_now()  # with the status, before anything is awaited
        try:
            session = run.runner.session(run.id)
            run.step, run.state = session.step, session.state.to_dict()
        except SessionError:
            pass
        bus = run.bus
        try:
            await bus.stop()  # drains the log sink: from now on the log has every event
        finally:
            self._absorb(bus)
            run.events = bus.last_id
            run.bus = run.runner = None
            run.task = None
            self._running.pop(run.id, None)
            self._finished[run.id] = run
            while len(self._finished) > self.max_finished:
                self._finished.popitem(last=False)

    def _absorb(self, bus: EventBus) -> None:
        metrics = bus.metrics()
        self._totals["events_published"] += metrics.published
        self._totals["events_dropped"] += metrics.dropped
        for health in bus.sink_health():
            self._sinks[health.sink] = _add(self._sinks.get(health.sink), health)

    # -- reading --------------------------------------------------------------------------

    def get(self, run_id: str) -> Run | None:
        """The run's record, if it is still in memory."""
        return self._running.get(run_id) or self._finished.get(run_id)

    async def describe(self, run_id: str) -> dict[str, JSONValue] | None:
        """The run as JSON, from memory or else from the event log; None if unknown."""
        run = self.get(run_id)
        if run is not None:
            return run.to_json()
        last = await self.log.last_id(run_id)
        if last == 0:
            return None
        tail = await self.log.events_after(run_id, last - 1, limit=1)
        end = tail[0] if tail and tail[0].is_stream_end() else None
        info: dict[str, JSONValue] = {
            "session_id": run_id,
            "status": str(end.metadata.get("status", "unknown")) if end else "unknown",
            "step": (end.step or 0) if end else 0,
            "events": last,
            "state": None,
            "error": None,
            "created_at": None,
            "finished_at": format_timestamp(end.timestamp) if end else None,
        }
        if self.checkpointer is not None:
            checkpoint = await self.checkpointer.load_latest(run_id)
            if checkpoint is not None:
                info["state"] = checkpoint.state.to_dict()
                errors = checkpoint.state.errors
                if errors and info["status"] == "error":
                    info["error"] = errors[-1].error.message
        return info

    async def feed(self, run_id: str, after: int | None) -> Feed | None:
        """Where the events of `run_id` after `after` come from; None if the run is over and
        the client has them all.

        Raises:
            LookupError: no such run, in memory or in the log.
        """
        run = self.get(run_id)
        if run is not None and run.bus is not None:
            stream = run.bus.subscribe(after=after or 0)
            return StreamFeed(stream, after=after or 0, log=self.log, session_id=run_id)
        last = await self.log.last_id(run_id)
        if run is None and last == 0:
            raise LookupError(run_id)
        if after is not None and after >= last:
            return None
        return LogFeed(self.log, run_id, after=after or 0)

    def counters(self) -> tuple[list[SinkHealth], dict[str, JSONValue]]:
        """Every sink (finished runs' failures added up per sink name) and the counters."""
        sinks = dict(self._sinks)
        published, dropped = self._totals["events_published"], self._totals["events_dropped"]
        for run in self._running.values():
            if run.bus is None:
                continue
            metrics = run.bus.metrics()
            published += metrics.published
            dropped += metrics.dropped
            for health in run.bus.sink_health():
                sinks[health.sink] = _add(sinks.get(health.sink), health)
        counters: dict[str, JSONValue] = {
            "runs_running": len(self._running),
            "runs_in_memory": len(self._running) + len(self._finished),
            "runs_started": self._totals["runs_started"],
            "events_published": published,
            "events_dropped": dropped,
            "sse_clients": self.clients,
        }
        return list(sinks.values()), counters


_STATUS = {"failed": "error", "running": "completed"}


def _add(total: SinkHealth | None, health: SinkHealth) -> SinkHealth:
    if total is None:
        return health
    newer = health.last_error_at is not None and (
        total.last_error_at is None or health.last_error_at >= total.last_error_at
    )
    return replace(
        total,
        error_count=total.error_count + health.error_count,
        handled=total.handled + health.handled,
        abandoned=total.abandoned or health.abandoned,
        last_error=health.last_error if newer else total.last_error,
        last_error_at=health.last_error_at if newer else total.last_error_at,
    )
