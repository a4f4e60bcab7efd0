"""`create_app`: a Starlette app that runs a compiled graph for HTTP clients and streams its runs.

Routes::

    POST /runs                   {"input": "..."} or {"state": {...}}, optional "graph"
                                 -> 201 {"session_id"}
    GET  /runs/{id}              status, step, final state, error
    GET  /runs/{id}/events       SSE, resumable with Last-Event-ID (during and after the run)
    POST /runs/{id}/cancel       -> 202; the stream ends with status=cancelled
    GET  /health                 sink health and counters
    GET  /graph, /graph.svg      Mermaid text, server-rendered SVG
    GET  /                       the live run page (static files under /static)
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from importlib import resources
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from .._app import App
from ..checkpoint import Checkpointer, EventLog, SQLiteEventLog
from ._backend import RunBackend, RunConflictError, RunLimitError
from ._graph_svg import graph_svg
from ._requests import (
    ApiError,
    api_error,
    error_response,
    http_error,
    parse_run_request,
    read_json,
    server_error,
)
from ._runs import RunRegistry
from ._sse import EventStreamResponse, last_event_id

__all__ = ["backend_app", "create_app"]

AppFactory = App | Callable[[], App]


class _Server:
    """What the handlers share: the backend (made on first use) and the graph's drawing."""

    def __init__(
        self, make_backend: Callable[[], RunBackend], *, ping: float | None, max_body: int
    ) -> None:
        self.make_backend = make_backend
        self.ping = ping
        self.max_body = max_body
        self._backend: RunBackend | None = None
        self.svg: str | None = None

    @property
    def backend(self) -> RunBackend:
        # Without a lifespan (e.g. httpx's ASGITransport) the backend is made on first use.
        if self._backend is None:
            self._backend = self.make_backend()
        return self._backend

    @property
    def registry(self) -> RunBackend:
        """The backend (the name of the single-process one)."""
        return self.backend

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        """Make and open the backend at startup; stop its runs and close it at shutdown."""
        await self.backend.setup()
        try:
            yield
        finally:
            await self.close()

    async def close(self) -> None:
        """Stop the backend's runs and close it (safe to call twice)."""
        if self._backend is not None:
            await self._backend.aclose()


def _server(request: Request) -> _Server:
    server: _Server = request.app.state.weavegraph
    return server


async def start_run(request: Request) -> Response:
    server = _server(request)
    body = await read_json(request, server.max_body)
    backend = server.backend
    if isinstance(body, dict) and "graph" in body:
        body = dict(body)
        name = body.pop("graph")
        if name != backend.graph_name:
            return error_response(
                404, f"unknown graph {name!r}; this server runs {backend.graph_name!r}"
            )
    state = parse_run_request(body)
    try:
        run_id = await backend.submit(state)
    except RunLimitError as exc:
        return error_response(429, str(exc))
    location = f"/runs/{run_id}"
    payload = {"session_id": run_id, "events": f"{location}/events", "status": location}
    return JSONResponse(payload, status_code=201, headers={"Location": location})


async def get_run(request: Request) -> Response:
    run_id = request.path_params["run_id"]
    info = await _server(request).backend.describe(run_id)
    if info is None:
        return _unknown(run_id)
    return JSONResponse(info)


async def run_events(request: Request) -> Response:
    server = _server(request)
    run_id = request.path_params["run_id"]
    try:
        after = last_event_id(request)
    except ValueError as exc:
        return error_response(400, str(exc))
    backend = server.backend
    try:
        feed = await backend.feed(run_id, after)
    except LookupError:
        return _unknown(run_id)
    if feed is None:  # the run is over and the client has every event: 204 stops EventSource
        return Response(status_code=204)
    backend.clients += 1

    def closed() -> None:
        backend.clients -= 1

    return EventStreamResponse(feed, ping=server.ping, retry=1000, on_close=closed)


async def cancel_run(request: Request) -> Response:
    run_id = request.path_params["run_id"]
    try:
        await _server(request).backend.cancel(run_id)
    except LookupError:
        return _unknown(run_id)
    except RunConflictError as exc:
        return error_response(409, str(exc))
    return JSONResponse({"session_id": run_id, "status": "cancelling"}, status_code=202)


async def health(request: Request) -> Response:
    return JSONResponse(await _server(request).backend.health())


async def mermaid(request: Request) -> Response:
    return PlainTextResponse(_server(request).backend.app.to_mermaid())


async def svg(request: Request) -> Response:
    server = _server(request)
    if server.svg is None:
        server.svg = graph_svg(server.backend.app.graph)
    return Response(server.svg, media_type="image/svg+xml")


async def page(request: Request) -> Response:
    html = resources.files(__package__).joinpath("static/index.html").read_text("utf-8")
    return HTMLResponse(html, headers={"Cache-Control": "no-cache"})


def _unknown(run_id: str) -> Response:
    return error_response(404, f"unknown run {run_id!r}")


def backend_app(
    make_backend: Callable[[], RunBackend],
    *,
    ping: float | None = 15.0,
    max_body_bytes: int = 65536,
) -> Starlette:
    """The run server's Starlette app over any `RunBackend` (made once, at startup)."""
    server = _Server(make_backend, ping=ping, max_body=max_body_bytes)
    handlers = {ApiError: api_error, HTTPException: http_error, Exception: server_error}
    app = Starlette(routes=_routes(), lifespan=server.lifespan, exception_handlers=handlers)
    app.state.weavegraph = server
    return app


def create_app(
    app_factory: AppFactory,
    *,
    event_log: EventLog | None = None,
    checkpointer: Checkpointer | None = None,
    capacity: int = 1024,
    max_body_bytes: int = 65536,
    max_finished_runs: int = 100,
    max_running_runs: int = 64,
    ping: float | None = 15.0,
    data_dir: str | Path = ".weavegraph",
    graph_name: str = "app",
) -> Starlette:
    """A Starlette app (FastAPI can mount it) that runs `app_factory`'s graph per request.

    Args:
        app_factory: a compiled `App`, or a function returning one (called once, at startup).
        event_log: where every run's events are kept for replay and resume. By default an
            `SQLiteEventLog` at ``<data_dir>/events.db``, opened and closed by the app; a log
            you pass is yours to close. `InMemoryEventLog` keeps nothing across restarts.
        checkpointer: shared by every run (so `GET /runs/{id}` can show the final state of
            runs no longer in memory); by default each run checkpoints in memory.
        capacity: the ring size of each run's bus; clients further behind are served from
            the event log.
        max_body_bytes: larger request bodies get 413.
        max_finished_runs: finished runs kept in memory; older ones are read from the log.
        max_running_runs: more concurrent runs get 429.
        ping: seconds between keep-alive comments on idle SSE streams (None: never).
        data_dir: the folder of the default event log.
        graph_name: the name a ``POST /runs`` body may give in ``"graph"`` (another name
            gets 404).
    """
    data = Path(data_dir)

    def make() -> RunRegistry:
        app = app_factory if isinstance(app_factory, App) else app_factory()
        if not isinstance(app, App):
            raise TypeError(f"app_factory must return a compiled App; got {type(app).__name__}")
        log = event_log if event_log is not None else SQLiteEventLog(data / "events.db")
        return RunRegistry(
            app,
            log,
            graph_name=graph_name,
            owns_log=event_log is None,
            checkpointer=checkpointer,
            capacity=capacity,
            max_finished=max_finished_runs,
            max_running=max_running_runs,
        )

    return backend_app(make, ping=ping, max_body_bytes=max_body_bytes)


def _routes() -> list[BaseRoute]:
    static = StaticFiles(packages=[(__package__ or "weavegraph.web", "static")])
    return [
        Route("/", page, methods=["GET"]),
        Route("/runs", start_run, methods=["POST"]),
        Route("/runs/{run_id}", get_run, methods=["GET"]),
        Route("/runs/{run_id}/events", run_events, methods=["GET"]),
        Route("/runs/{run_id}/cancel", cancel_run, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
        Route("/graph", mermaid, methods=["GET"]),
        Route("/graph.svg", svg, methods=["GET"]),
        Mount("/static", app=static, name="static"),
    ]
