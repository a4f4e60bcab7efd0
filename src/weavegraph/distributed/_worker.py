"""`Worker`: takes queued runs of one graph and runs them, streaming their events to Redis.

Each run gets a bus of its own with two lossless sinks: the durable event log in PostgreSQL
and the run's Redis stream (which web servers read). Its steps are checkpointed in
PostgreSQL, so a run taken over from a worker that died resumes after its last completed step
and its event ids continue after the last id either store holds.

The worker holds each run under a lease it renews every `lease / 3` seconds. It wakes on
PostgreSQL notifications (new work, a cancel request) and claims again at least every `poll`
seconds, which is how it finds runs whose worker died. `stop()` (SIGTERM in the command)
finishes the step in flight of each run, saves it, hands the run back to the queue and
returns; a second `stop()` cancels at once and leaves the runs to expire.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .._errors import QueueError, SessionError
from .._lifecycle import stream_end
from .._state import VersionedState
from ..events import EventBus
from ._run_stream import close_stream, next_event_id, run_bus, worker_event

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from .._app import App
    from .._runner import AppRunner
    from ..checkpoint import PostgresCheckpointer, PostgresEventLog
    from ._queue import QueuedRun, RunQueue

__all__ = ["Worker"]


logger = logging.getLogger("weavegraph.worker")


@dataclass(slots=True, eq=False)
class _Active:
    run: QueuedRun
    task: asyncio.Task[None] | None = None
    runner: AppRunner | None = None
    lost: bool = False  # another worker holds the lease now: leave the run alone
    cancelled: bool = False  # cancel requested through the queue
    release: bool = False  # hand back after the step in flight
    settling: bool = False  # the outcome is being recorded: no more cancelling
    started: bool = False  # the task has begun (one cancelled before that never runs)


@dataclass(slots=True)
class _Counts:
    succeeded: int = 0
    failed: int = 0
    retried: int = 0
    cancelled: int = 0
    released: int = 0
    lost: int = 0
    claimed: int = 0
    closed: list[str] = field(default_factory=list)  # abandoned runs whose streams we ended


class Worker:
    """Runs queued runs of `graph` with `app`, at most `concurrency` at once.

    Args:
        app: the compiled graph.
        graph: the graph's name in the queue (runs enqueued under another name are not taken).
        queue, checkpointer, event_log: PostgreSQL stores, opened by the caller.
        redis: the client of the Redis server that carries the event streams.
        concurrency: most runs at once.
        lease: seconds a claim holds without a heartbeat; a dead worker's runs are taken over
            this long after its last heartbeat.
        poll: most seconds between claims when no notification arrives.
        owner: this worker's name in the queue (host, pid and a random suffix by default).
        capacity: ring size of each run's bus.
    """

    def __init__(
        self,
        app: App,
        *,
        graph: str,
        queue: RunQueue,
        checkpointer: PostgresCheckpointer,
        event_log: PostgresEventLog,
        redis: Redis,
        concurrency: int = 4,
        lease: float = 30.0,
        poll: float = 5.0,
        owner: str | None = None,
        capacity: int = 1024,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1; got {concurrency}")
        if lease <= 0 or poll <= 0:
            raise ValueError(f"lease and poll must be positive; got {lease} and {poll}")
        self.app = app
        self.graph = graph
        self.queue = queue
        self.checkpointer = checkpointer
        self.event_log = event_log
        self.redis = redis
        self.concurrency = concurrency
        self.lease = lease
        self.poll = poll
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.capacity = capacity
        self.counts = _Counts()
        self._active: dict[str, _Active] = {}
        self._wake = asyncio.Event()
        self._stopping = False
        self._early_cancels: dict[str, float] = {}  # cancel notices of runs not (yet) ours

    @property
    def active(self) -> list[str]:
        """Ids of the runs this worker is running now."""
        return list(self._active)

    def stop(self) -> None:
        """Stop gracefully: no new claims; each run finishes its step and goes back to the
        queue. Called again, cancel the runs at once (their leases expire, others resume)."""
        if self._stopping:
            for active in self._active.values():
                if active.task is not None and not active.settling:
                    active.lost = True
                    if active.started:
                        active.task.cancel()
        self._stopping = True
        for active in self._active.values():
            active.release = True
            if active.runner is not None:
                with contextlib.suppress(SessionError):  # its session is not made yet
                    active.runner.release(active.run.id)
        self._wake.set()

    async def run(self) -> None:
        """Claim and run until `stop()`; returns once every run was handed back or done."""
        listener = self.queue.listen()
        await listener.setup()
        beats = asyncio.create_task(self._heartbeats(), name="weavegraph-worker-heartbeat")
        notices = asyncio.create_task(self._notices(listener), name="weavegraph-worker-listen")
        try:
            await self.queue.heartbeat(self.owner, [], lease=self.lease, graph=self.graph)
            while not self._stopping:
                self._wake.clear()
                await self._claim_some()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.poll)
            tasks = [a.task for a in self._active.values() if a.task is not None]
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            for task in (beats, notices):
                task.cancel()
            await asyncio.gather(beats, notices, return_exceptions=True)
            await listener.aclose()
            with contextlib.suppress(QueueError):
                await self.queue.forget_worker(self.owner)

    # -- claiming -------------------------------------------------------------------------

    async def _claim_some(self) -> None:
        while len(self._active) < self.concurrency and not self._stopping:
            try:
                run = await self.queue.claim(self.graph, self.owner, lease=self.lease)
            except QueueError as exc:
                logger.warning("claiming failed: %s", exc)
                return
            if run is not None and self._stopping:  # stop() came while the claim was out
                with contextlib.suppress(QueueError):  # else its lease expires
                    await self.queue.release(run.id, self.owner)
                run = None
            if run is not None:  # registered before any await: a cancel notice finds it
                self.counts.claimed += 1
                active = _Active(run)
                self._active[run.id] = active
                active.task = asyncio.create_task(self._execute(active), name=f"run-{run.id[:8]}")
                if self._early_cancels.pop(run.id, None) is not None:
                    self._cancel(active)
            for abandoned in self.queue.take_abandoned():
                try:
                    await self._close_abandoned(abandoned)
                except Exception:  # the queue has it as over already; only its stream is open
                    logger.exception("run %s: its stream could not be closed", abandoned.id)
            if run is None:
                return

    async def _close_abandoned(self, run: QueuedRun) -> None:
        """End the stream of a run the queue gave up on (worker lost too often, cancelled)."""
        if run.status == "cancelled":
            await close_stream(self.event_log, self.redis, run.id, "cancelled")
        else:
            message = f"run failed: {run.error or 'the run was abandoned'}"
            why = worker_event(run.id, message, attempt=run.attempt)
            await close_stream(self.event_log, self.redis, run.id, "error", why=why)
        self.counts.closed.append(run.id)

    # -- running --------------------------------------------------------------------------

    async def _execute(self, active: _Active) -> None:
        active.started = True
        run = active.run
        bus = run_bus(self.event_log, self.redis, capacity=self.capacity)
        try:
            await self._run(active, bus)
        except Exception:  # never lose the worker to one run: the run was recorded as failed
            logger.exception("run %s: unexpected failure in the worker", run.id)
        finally:
            self._active.pop(run.id, None)
            self._wake.set()

    async def _run(self, active: _Active, bus: EventBus) -> None:
        run = active.run
        runner: AppRunner | None = None
        outcome, error, step = "error", "", 0
        try:
            if active.cancelled or active.lost:  # asked before the task began
                raise asyncio.CancelledError
            bus.continue_ids(await next_event_id(self.event_log, self.redis, run.id) - 1)
            runner = self.app.runner(checkpointer=self.checkpointer, event_bus=bus)
            active.runner = runner
            resumed = await self.checkpointer.load_latest(run.id)
            state = None if resumed is not None else _initial_state(run)
            await runner.create_session(state, session_id=run.id)
            if resumed is not None:
                await bus.start()
                bus.publish(
                    worker_event(
                        run.id,
                        f"run resumed by {self.owner} from step {resumed.step} "
                        f"(attempt {run.attempt})",
                        attempt=run.attempt,
                        step=resumed.step,
                    )
                )
            if active.release:
                runner.release(run.id)
            await runner.run_until_complete(run.id, end_stream=False)
            session = runner.session(run.id)
            step = session.step
            if runner.released(run.id):
                outcome = "released"
            else:
                outcome = "interrupted" if session.status == "interrupted" else "completed"
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            outcome = "lost" if active.lost else "cancelled"
            step = _step(runner, run.id)
        except _BadInput as exc:  # the same on every attempt: fail now
            error, outcome = str(exc), "error"
        except Exception as exc:
            error = str(exc) or type(exc).__name__
            step = _step(runner, run.id)
            if active.cancelled:  # a library turned our cancellation into its own error
                outcome = "cancelled"
            else:
                outcome = "error" if run.attempt >= run.max_attempts else "retry"
        if active.lost:  # whatever came of it (a library may even swallow the cancellation):
            outcome = "lost"  # the run is no longer ours to record
        await self._settle(active, bus, outcome, step, error)

    async def _settle(
        self, active: _Active, bus: EventBus, outcome: str, step: int, error: str
    ) -> None:
        """Publish the run's end (if final), drain its bus, then record it in the queue."""
        run = active.run
        active.settling = True
        if outcome == "retry":
            bus.publish(
                worker_event(
                    run.id,
                    f"attempt {run.attempt} of {run.max_attempts} failed: {error}; "
                    "the run goes back to the queue",
                    attempt=run.attempt,
                    step=step,
                )
            )
        elif outcome in ("completed", "interrupted", "error", "cancelled"):
            bus.publish(stream_end(run.id, step, outcome))
        try:
            await bus.stop()  # every event reached PostgreSQL and Redis before the queue says so
        except Exception as exc:
            logger.error("run %s: events not stored: %s", run.id, exc)
        if outcome == "lost":
            self.counts.lost += 1
            return
        try:
            if outcome == "released":
                await self.queue.release(run.id, self.owner)
                self.counts.released += 1
            elif outcome == "retry":
                await self.queue.fail_attempt(run.id, self.owner, error)
                self.counts.retried += 1
            elif outcome == "cancelled":
                await self.queue.finish(run.id, self.owner, "cancelled")
                self.counts.cancelled += 1
            elif outcome == "error":
                await self.queue.finish(run.id, self.owner, "failed", error=error)
                self.counts.failed += 1
            else:
                await self.queue.finish(run.id, self.owner, "succeeded")
                self.counts.succeeded += 1
        except QueueError as exc:  # the lease expires and another worker takes the run over
            logger.error("run %s: the queue did not record its outcome: %s", run.id, exc)

    # -- heartbeats and notifications -----------------------------------------------------

    async def _heartbeats(self) -> None:
        interval = self.lease / 3
        while True:
            await asyncio.sleep(interval)
            ids = [run_id for run_id, a in self._active.items() if not a.lost]
            started = time.monotonic()
            try:
                held = await self.queue.heartbeat(
                    self.owner, ids, lease=self.lease, graph=self.graph
                )
            except QueueError as exc:
                logger.warning("heartbeat failed (%.1f s): %s", time.monotonic() - started, exc)
                continue
            for run_id in ids:
                active = self._active.get(run_id)
                if active is None:
                    continue
                if run_id not in held:
                    if active.task is not None and not active.settling:
                        logger.warning("run %s: lease lost to another worker; stopping it", run_id)
                        active.lost = True
                        if active.started:
                            active.task.cancel()
                elif held[run_id]:
                    self._cancel(active)

    async def _notices(self, listener: object) -> None:
        from ._listener import Listener

        assert isinstance(listener, Listener)
        while True:
            try:
                notices = await listener.wait(self.poll)
            except QueueError as exc:
                logger.warning("notifications failed: %s", exc)
                await asyncio.sleep(min(self.poll, 1.0))
                continue
            for notice in notices:
                if notice.channel == "runs" and notice.payload == self.graph:
                    self._wake.set()
                elif notice.channel == "cancel":
                    active = self._active.get(notice.payload)
                    if active is not None:
                        self._cancel(active)
                    else:  # maybe a run whose claim is still on its way back to us
                        self._remember_cancel(notice.payload)

    def _remember_cancel(self, run_id: str) -> None:
        now = time.monotonic()
        early = self._early_cancels
        for old in [key for key, seen in early.items() if now - seen > 60.0]:
            del early[old]
        early[run_id] = now

    def _cancel(self, active: _Active) -> None:
        if active.cancelled:
            return
        active.cancelled = True
        # A task cancelled before it began would never run its cleanup: it checks the flag.
        if active.task is not None and active.started and not active.settling:
            active.task.cancel()


class _BadInput(Exception):
    """The run's input is not a state: no attempt can succeed."""


def _initial_state(run: QueuedRun) -> VersionedState:
    try:
        return VersionedState.from_dict(run.input)
    except (ValueError, TypeError, KeyError) as exc:
        raise _BadInput(f"the run's input is not a valid state: {exc}") from None


def _step(runner: AppRunner | None, run_id: str) -> int:
    if runner is None:
        return 0
    try:
        return runner.session(run_id).step
    except SessionError:
        return 0
