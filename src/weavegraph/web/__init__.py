"""Streaming runs to people: SSE and health helpers for Starlette/FastAPI, and a run server.

Needs the ``web`` extra (``pip install 'weavegraph[web]'``: starlette, sse-starlette, uvicorn).

    from weavegraph.web import create_app, serve_sync
    serve_sync(app, port=3000)               # POST /runs, GET /runs/{id}/events, the live page

    async def events(request):               # or your own endpoint, in Starlette or FastAPI
        after = last_event_id(request)       # ValueError on a malformed Last-Event-ID
        return sse_response(bus.subscribe(after=after), after=after)

See docs/web.md.
"""

from ._graph_svg import graph_svg as graph_svg
from ._health import health_payload as health_payload
from ._health import health_response as health_response
from ._memlog import InMemoryEventLog as InMemoryEventLog
from ._serve import serve as serve
from ._serve import serve_sync as serve_sync
from ._server import create_app as create_app
from ._sse import DEFAULT_EVENT as DEFAULT_EVENT
from ._sse import EventStreamResponse as EventStreamResponse
from ._sse import encode_frame as encode_frame
from ._sse import last_event_id as last_event_id
from ._sse import sse_response as sse_response

__all__ = [
    "DEFAULT_EVENT",
    "EventStreamResponse",
    "InMemoryEventLog",
    "create_app",
    "encode_frame",
    "graph_svg",
    "health_payload",
    "health_response",
    "last_event_id",
    "serve",
    "serve_sync",
    "sse_response",
]
