"""Many workers and web servers over PostgreSQL and Redis Streams.

PostgreSQL holds the run queue (`RunQueue`), the checkpoints and the durable event log; Redis
Streams carries each run's events from the `Worker` running it to every web server
(`RedisEventSink` writes, `RedisEventSource` reads, one reader per run per process), so any
server streams any run and resumes a client from its ``Last-Event-ID``. Needs the
``postgres`` and ``redis`` extras. See docs/deployment.md.
"""

from ._commands import run_worker as run_worker
from ._commands import serve_cluster as serve_cluster
from ._queue import Notice as Notice
from ._queue import QueuedRun as QueuedRun
from ._queue import QueueStats as QueueStats
from ._queue import RunQueue as RunQueue
from ._redis_feed import RedisEventSource as RedisEventSource
from ._redis_sink import RedisEventSink as RedisEventSink
from ._redis_sink import stream_key as stream_key
from ._run_stream import WORKER_SCOPE as WORKER_SCOPE
from ._server import ClusterBackend as ClusterBackend
from ._server import create_cluster_app as create_cluster_app
from ._worker import Worker as Worker

__all__ = [
    "WORKER_SCOPE",
    "ClusterBackend",
    "Notice",
    "QueueStats",
    "QueuedRun",
    "RedisEventSink",
    "RedisEventSource",
    "RunQueue",
    "Worker",
    "create_cluster_app",
    "run_worker",
    "serve_cluster",
    "stream_key",
]
