"""Shared by the web tests: a real uvicorn on a loopback port, SSE readers, and test graphs.

SSE through httpx's ASGITransport only works for finite streams, so every streaming test talks
to a uvicorn server started in-process (on the test's event loop, so tasks can be counted)
on a free port of 127.0.0.1, and stopped at the end of the test.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from httpx_sse import aconnect_sse
from starlette.types import ASGIApp

from weavegraph import (
    END,
    START,
    App,
    GraphBuilder,
    Message,
    NodeContext,
    NodePartial,
    StateSnapshot,
)
from weavegraph.web._serve import _Uvicorn


class Servers:
    """`await serve(app)` starts uvicorn for `app` on 127.0.0.1 and returns its base URL;
    `await serve.stop(url)` shuts it down as Ctrl-C would (the rest stop after the test)."""

    def __init__(self) -> None:
        self.running: dict[str, tuple[uvicorn.Server, asyncio.Task[None]]] = {}

    async def __call__(self, app: ASGIApp, *, sndbuf: int | None = None) -> str:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if sndbuf is not None:  # accepted connections inherit it: lets a test fill buffers fast
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        sock.bind(("127.0.0.1", 0))
        config = uvicorn.Config(
            app, log_config=None, log_level="warning", lifespan="on", timeout_graceful_shutdown=5
        )
        server = _Uvicorn(config)
        task = asyncio.get_running_loop().create_task(server._serve(sockets=[sock]))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.running[url] = (server, task)
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        return url

    async def stop(self, url: str) -> None:
        server, task = self.running.pop(url)
        server.should_exit = True
        await task


@pytest.fixture
async def serve() -> AsyncIterator[Servers]:
    """Uvicorn servers for the test (see `Servers`)."""
    servers = Servers()
    yield servers
    for url in list(servers.running):
        await servers.stop(url)


@dataclass
class Frames:
    """What an SSE reader saw."""

    ids: list[int] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    names: set[str] = field(default_factory=set)

    @property
    def last_id(self) -> int:
        return self.ids[-1] if self.ids else 0

    def node_messages(self) -> list[str]:
        return [e["message"] for e in self.events if e["type"] == "node"]

    @property
    def ended(self) -> bool:
        return bool(self.events) and self.events[-1]["scope"] == "__weavegraph_stream_end__"


async def read_sse(
    client: httpx.AsyncClient,
    url: str,
    *,
    last_event_id: int | None = None,
    stop_after_node_events: int | None = None,
    frames: Frames | None = None,
) -> Frames:
    """Read an SSE stream with httpx-sse until it ends (or after N node events)."""
    frames = frames or Frames()
    headers = {} if last_event_id is None else {"Last-Event-ID": str(last_event_id)}
    nodes = 0
    async with aconnect_sse(client, "GET", url, headers=headers) as source:
        assert source.response.status_code == 200
        async for sse in source.aiter_sse():
            if not sse.data:  # httpx-sse yields the lone `retry:` field as an empty event
                continue
            frames.names.add(sse.event)
            data = json.loads(sse.data)
            if sse.id:
                assert int(sse.id) == data["id"]
                frames.ids.append(int(sse.id))
            frames.events.append(data)
            nodes += data["type"] == "node"
            if stop_after_node_events is not None and nodes >= stop_after_node_events:
                break
    return frames


async def start_run(client: httpx.AsyncClient, base: str, text: str = "hi") -> str:
    response = await client.post(f"{base}/runs", json={"input": text})
    assert response.status_code == 201, response.text
    run_id: str = response.json()["session_id"]
    return run_id


async def wait_status(client: httpx.AsyncClient, base: str, run_id: str) -> dict[str, Any]:
    """Poll `GET /runs/{id}` until the run is over (the server offers no push for this)."""
    info: dict[str, Any] = {}

    async def over() -> bool:
        info.update((await client.get(f"{base}/runs/{run_id}")).json())
        return info["status"] != "running"

    await eventually(over, timeout=30)
    return info


def emitter(count: int, *, gate: asyncio.Event | None = None, pause_at: int = 0) -> App:
    """One node emitting `count` node events ``n=1..count``; waits on `gate` at `pause_at`."""

    async def emit(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
        for n in range(1, count + 1):
            if gate is not None and n == pause_at:
                await gate.wait()
            ctx.emit("count", f"n={n}")
            if n % 50 == 0:
                await asyncio.sleep(0)
        return NodePartial(extra={"emitted": count})

    return (
        GraphBuilder()
        .add_node("emit", emit)
        .add_edge(START, "emit")
        .add_edge("emit", END)
        .compile()
    )


def assistant_app(pace: float = 0.01) -> App:
    """A demo-like graph: fan-out, join, an LLM-streaming node and a review loop."""

    async def plan(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
        ctx.emit("plan", "planning two searches")
        await asyncio.sleep(pace)
        return NodePartial(extra={"revisions": 0})

    def search(name: str) -> Callable[[StateSnapshot, NodeContext], Awaitable[NodePartial]]:
        async def node(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
            await asyncio.sleep(pace)
            ctx.emit("search", f"{name} found something")
            return NodePartial(extra={name: f"{name} note."})

        return node

    async def draft(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
        revision = snapshot.extra["revisions"] + 1
        words = f"Draft {revision} says supersteps merge at a barrier.".split()
        for word in words:
            ctx.emit_llm_chunk(word + " ", stream_id=f"draft-{revision}")
            await asyncio.sleep(pace / 4)
        ctx.emit_llm_final(stream_id=f"draft-{revision}")
        return NodePartial(
            messages=[Message.assistant(" ".join(words))], extra={"revisions": revision}
        )

    async def review(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
        ctx.emit("review", f"revision {snapshot.extra['revisions']}")
        return NodePartial()

    def route(snapshot: StateSnapshot) -> str:
        return "done" if snapshot.extra["revisions"] >= 2 else "revise"

    builder = GraphBuilder().add_node("plan", plan).add_edge(START, "plan")
    for name in ("web", "docs"):
        builder.add_node(name, search(name)).add_edge("plan", name)
    builder.add_node("draft", draft).add_edge(["web", "docs"], "draft")
    builder.add_node("review", review).add_edge("draft", "review")
    builder.add_conditional_edges("review", route, {"revise": "draft", "done": END})
    return builder.compile()


async def eventually(check: Callable[[], Any], *, timeout: float = 5.0) -> None:
    """Wait until `check()` (or what it awaits to) is true: for state seen only from outside,
    such as a server's answers, where no event can be awaited."""
    async with asyncio.timeout(timeout):
        while True:
            result = check()
            if inspect.isawaitable(result):
                result = await result
            if result:
                return
            await asyncio.sleep(0.01)


def server_tasks() -> set[asyncio.Task[Any]]:
    """The live tasks of the loop, but the test's own."""
    current = asyncio.current_task()
    return {t for t in asyncio.all_tasks() if t is not current and not t.done()}


class Kit:
    """The helpers above, handed to tests as the `kit` fixture (conftest is not importable)."""

    Frames = Frames
    read_sse = staticmethod(read_sse)
    start_run = staticmethod(start_run)
    wait_status = staticmethod(wait_status)
    emitter = staticmethod(emitter)
    assistant_app = staticmethod(assistant_app)
    server_tasks = staticmethod(server_tasks)
    eventually = staticmethod(eventually)


@pytest.fixture
def kit() -> Kit:
    """Helpers for reading SSE, starting runs and building test graphs."""
    return Kit()
