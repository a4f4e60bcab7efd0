"""What ``weavegraph worker`` and ``weavegraph serve --postgres --redis`` run."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from typing import TYPE_CHECKING, TextIO

from ..checkpoint import PostgresCheckpointer, PostgresEventLog
from ._queue import RunQueue
from ._worker import Worker

if TYPE_CHECKING:
    from .._app import App

__all__ = ["run_worker", "serve_cluster"]


async def run_worker(
    app: App,
    *,
    graph: str,
    postgres: str,
    redis: str,
    concurrency: int = 4,
    lease: float = 30.0,
    poll: float = 5.0,
    out: TextIO | None = None,
) -> Worker:
    """Run a worker until SIGTERM or SIGINT: the first finishes each run's step in flight and
    hands the run back to the queue; a second one stops at once. Returns the worker."""
    from ._redis_sink import connect

    out = out or sys.stdout
    client = connect(redis)[0]
    try:
        async with (
            RunQueue(postgres) as queue,
            PostgresCheckpointer(postgres) as checkpointer,
            PostgresEventLog(postgres) as log,
        ):
            worker = Worker(
                app,
                graph=graph,
                queue=queue,
                checkpointer=checkpointer,
                event_log=log,
                redis=client,
                concurrency=concurrency,
                lease=lease,
                poll=poll,
            )
            loop = asyncio.get_running_loop()
            for number in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(number, worker.stop)
            out.write(
                f"worker {worker.owner} runs graph {graph!r} "
                f"({concurrency} at once, lease {lease:g} s)\n"
            )
            out.flush()
            try:
                await worker.run()
            finally:
                for number in (signal.SIGTERM, signal.SIGINT):
                    loop.remove_signal_handler(number)
            counts = worker.counts
            out.write(
                f"worker {worker.owner} stopped: {counts.succeeded} succeeded, "
                f"{counts.failed} failed, {counts.retried} retried, {counts.cancelled} "
                f"cancelled, {counts.released} handed back\n"
            )
            out.flush()
            return worker
    finally:
        await client.aclose()


def serve_cluster(app: App, *, graph: str, postgres: str, redis: str, host: str, port: int) -> None:
    """Serve the cluster's routes under uvicorn until Ctrl-C or SIGTERM."""
    from ..web._serve import serve
    from ._server import create_cluster_app

    web = create_cluster_app(app, graph_name=graph, postgres=postgres, redis=redis)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(web, host=host, port=port))
