"""`serve`: run the web app under uvicorn (what ``weavegraph serve module:app`` calls)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from typing import Any

import uvicorn
from starlette.applications import Starlette

from .._app import App
from ._server import create_app

__all__ = ["serve", "serve_sync"]


class _Uvicorn(uvicorn.Server):
    """Cancels the app's runs before uvicorn waits for open connections to finish.

    Otherwise the event streams of running runs would keep uvicorn's graceful shutdown
    waiting until the runs end on their own; cancelled, each stream ends with its STREAM_END.
    """

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        app = self.config.app
        server = getattr(getattr(app, "state", None), "weavegraph", None)
        if server is not None:
            await server.close()
        await super().shutdown(sockets)


def _web_app(app: App | Callable[[], App] | Starlette, options: dict[str, Any]) -> Starlette:
    if isinstance(app, Starlette):
        if options:
            raise TypeError(f"options {sorted(options)} apply only when serving an App")
        return app
    return create_app(app, **options)


async def serve(
    app: App | Callable[[], App] | Starlette,
    *,
    host: str = "127.0.0.1",
    port: int = 3000,
    log_level: str = "info",
    access_log: bool = False,
    graceful_timeout: int = 5,
    sockets: list[socket.socket] | None = None,
    **options: Any,
) -> None:
    """Serve `app` over HTTP until interrupted (Ctrl-C or SIGTERM).

    Args:
        app: a compiled `App` (or a function returning one), served by `create_app(app,
            **options)`; or a Starlette app made by `create_app` already.
        host, port: where to listen (loopback by default; port 0 picks a free one).
        log_level, access_log: uvicorn's logging.
        graceful_timeout: seconds open connections get to finish when the server stops,
            after the runs were cancelled.
        sockets: already bound sockets to serve on instead of `host` and `port`.
        options: keyword arguments of `create_app` (event_log, capacity, ...).
    """
    config = uvicorn.Config(
        _web_app(app, options),
        host=host,
        port=port,
        log_level=log_level,
        access_log=access_log,
        lifespan="on",
        timeout_graceful_shutdown=graceful_timeout,
    )
    await _Uvicorn(config).serve(sockets=sockets)


def serve_sync(app: App | Callable[[], App] | Starlette, **options: Any) -> None:
    """`serve` for the command line: blocks until Ctrl-C, then returns normally."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(app, **options))
