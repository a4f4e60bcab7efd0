"""`create_cluster_app`: the run server's routes over the PostgreSQL queue and Redis streams.

``POST /runs`` enqueues a run for the workers; ``GET /runs/{id}/events`` streams it from Redis
(one reader per run in this process, whatever the number of clients), filling from the
PostgreSQL event log what Redis no longer holds; ``POST /runs/{id}/cancel`` reaches the worker
running it through the queue. Any number of these servers can serve the same runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._json import JSONValue
from .._time import format_timestamp
from ..checkpoint import PostgresCheckpointer, PostgresEventLog
from ..web._backend import RunConflictError
from ..web._feed import Feed, LogFeed
from ..web._health import health_payload
from ..web._server import backend_app
from ._queue import RunQueue
from ._queue_records import stamp
from ._redis_feed import RedisEventSource
from ._redis_sink import connect
from ._run_stream import close_stream

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from starlette.applications import Starlette

    from .._app import App
    from .._state import VersionedState

__all__ = ["ClusterBackend", "create_cluster_app"]


class ClusterBackend:
    """A `RunBackend` whose runs are executed by workers (see the module docstring).

    Args:
        app: the compiled graph (its drawing is served; workers run their own copy).
        graph_name: the name runs are queued under; workers of this graph take them.
        postgres: the DSN of the database holding the queue, checkpoints and event log.
        redis: the ``redis://`` URL of the server carrying the event streams.
        max_attempts: claims a run gets before it counts as failed (the queue's default if None).
    """

    def __init__(
        self,
        app: App,
        *,
        graph_name: str,
        postgres: str,
        redis: str,
        max_attempts: int | None = None,
    ) -> None:
        self._app = app
        self.graph_name = graph_name
        self.clients = 0
        self.max_attempts = max_attempts
        self.queue = RunQueue(postgres)
        self.checkpointer = PostgresCheckpointer(postgres)
        self.event_log = PostgresEventLog(postgres)
        self.redis: Redis = connect(redis)[0]
        self.source = RedisEventSource(self.redis, log=self.event_log)
        self._closed = False

    @property
    def app(self) -> App:
        """The compiled graph."""
        return self._app

    async def setup(self) -> None:
        """Open the PostgreSQL stores (migrating them if needed) and the Redis reader."""
        await self.queue.setup()
        await self.checkpointer.setup()
        await self.event_log.setup()
        await self.source.setup()

    async def aclose(self) -> None:
        """Close every connection (runs go on in the workers). Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        await self.source.aclose()
        await self.redis.aclose()
        await self.event_log.aclose()
        await self.checkpointer.aclose()
        await self.queue.aclose()

    async def submit(self, state: VersionedState) -> str:
        """Queue a run of `state`; returns its id (its session id)."""
        run = await self.queue.enqueue(
            self.graph_name, state.to_dict(), max_attempts=self.max_attempts
        )
        return run.id

    async def describe(self, run_id: str) -> dict[str, JSONValue] | None:
        """The run's queue record, its latest checkpointed state and its event count."""
        run = await self.queue.get(run_id)
        if run is None:
            return None
        checkpoint = await self.checkpointer.load_latest(run_id)
        info: dict[str, JSONValue] = {
            "session_id": run.id,
            "graph": run.graph,
            "status": run.status,
            "step": checkpoint.step if checkpoint else 0,
            "events": await self.event_log.last_id(run_id),
            "state": checkpoint.state.to_dict() if checkpoint else None,
            "error": run.error,
            "attempt": run.attempt,
            "worker": run.lease_owner,
            "created_at": format_timestamp(run.created_at),
            "started_at": stamp(run.started_at),
            "finished_at": stamp(run.finished_at),
        }
        return info

    async def feed(self, run_id: str, after: int | None) -> Feed | None:
        """Live from Redis while the run may still publish; from the log once it is over."""
        run = await self.queue.get(run_id)
        if run is None:
            raise LookupError(run_id)
        if run.finished:  # its worker drained every event into the log before saying so
            last = await self.event_log.last_id(run_id)
            if after is not None and after >= last:
                return None
            return LogFeed(self.event_log, run_id, after=after or 0)
        return self.source.feed(run_id, after or 0)

    async def cancel(self, run_id: str) -> None:
        """Cancel a queued run at once, or ask the worker running it to stop."""
        before = await self.queue.get(run_id)
        if before is None:
            raise LookupError(run_id)
        if before.finished:
            raise RunConflictError(f"run {run_id!r} is already {before.status}; nothing to cancel")
        after = await self.queue.cancel(run_id)
        if after.status == "cancelled" and before.status == "queued":
            await close_stream(self.event_log, self.redis, run_id, "cancelled")

    async def health(self) -> dict[str, JSONValue]:
        """Queue depth, oldest queued age, workers seen, and whether both engines answer."""
        postgres = await self.queue.ping()
        redis = await self.source.ping()
        metrics: dict[str, JSONValue] = {
            "postgres": postgres,
            "redis": redis,
            "sse_clients": self.clients,
            "redis_readers": self.source.readers,
        }
        if postgres:
            metrics["queue"] = (await self.queue.stats(self.graph_name)).to_json()
        payload = health_payload([], metrics)
        if not (postgres and redis):
            payload["status"] = "degraded"
        return payload


def create_cluster_app(
    app: App,
    *,
    graph_name: str,
    postgres: str,
    redis: str,
    max_attempts: int | None = None,
    ping: float | None = 15.0,
    max_body_bytes: int = 65536,
) -> Starlette:
    """The run server (same routes as `weavegraph.web.create_app`) over the cluster's engines.

    Args:
        app: the compiled graph the workers run.
        graph_name: the queue name of the graph (workers started with the same name take it).
        postgres: DSN of the PostgreSQL database (queue, checkpoints, event log).
        redis: URL of the Redis server (live event streams).
        max_attempts: claims a run gets before it counts as failed.
        ping, max_body_bytes: as in `create_app`.
    """

    def make() -> ClusterBackend:
        return ClusterBackend(
            app, graph_name=graph_name, postgres=postgres, redis=redis, max_attempts=max_attempts
        )

    return backend_app(make, ping=ping, max_body_bytes=max_body_bytes)
