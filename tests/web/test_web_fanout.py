"""200 SSE clients on one run for about 10 s: every event to each, bounded memory, no leaks.

The clients are raw asyncio connections (a minimal HTTP/1.1 chunked reader), so that 200 of
them and the server fit in one process; the frames are the same bytes a browser gets.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from weavegraph import (
    END,
    START,
    App,
    Event,
    GraphBuilder,
    NodeContext,
    NodePartial,
    StateSnapshot,
)
from weavegraph.web import InMemoryEventLog, create_app

CLIENTS = 200
QUITTERS = 20  # leave after a while: the server must clean up after them mid-run
RATE = 50  # events per second
SECONDS = 10.0
PAD = "x" * 2000  # large frames fill a stalled client's buffers quickly


def steady(rate: float, seconds: float) -> App:
    """One node emitting `rate` events a second for `seconds`, on a fixed schedule."""

    async def tick(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
        loop = asyncio.get_running_loop()
        start, count = loop.time(), int(rate * seconds)
        for n in range(1, count + 1):
            await asyncio.sleep(max(0.0, start + n / rate - loop.time()))
            ctx.emit("tick", f"n={n} {PAD}")
        return NodePartial(extra={"ticks": count})

    builder = GraphBuilder().add_node("tick", tick)
    return builder.add_edge(START, "tick").add_edge("tick", END).compile()


@dataclass
class Client:
    """One SSE reader on a raw connection; `stall` seconds without reading after the first."""

    ids: list[int] = field(default_factory=list)
    ticks: int = 0
    ended: bool = False
    stall: asyncio.Event | None = None  # after the first frame, read nothing until it is set
    quit_after: int | None = None

    async def run(self, port: int, path: str) -> None:
        # A stalled reader with a small buffer soon makes the server stop writing to it.
        limit = 4096 if self.stall is not None else 2**16
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=limit)
        try:
            writer.write(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200"), head
            assert b"transfer-encoding: chunked" in head.lower()
            await self._read(reader)
        finally:
            writer.close()
            await writer.wait_closed()

    async def _read(self, reader: asyncio.StreamReader) -> None:
        pending = b""
        while True:
            size = int((await reader.readuntil(b"\r\n"))[:-2], 16)
            if size == 0:
                return
            pending += (await reader.readexactly(size + 2))[:-2]
            *frames, pending = pending.split(b"\n\n")
            for frame in frames:
                self._frame(frame)
            if self.stall is not None and self.ids:
                await self.stall.wait()
                self.stall = None
            if self.ended or (self.quit_after and len(self.ids) >= self.quit_after):
                return

    def _frame(self, frame: bytes) -> None:
        if not frame.startswith(b"event: workflow-event\nid: "):
            return  # the retry line
        event_id = int(frame[26 : frame.index(b"\n", 26)])
        self.ids.append(event_id)
        self.ticks += b'"scope":"tick"' in frame
        self.ended = b'"scope":"__weavegraph_stream_end__"' in frame


class CountingLog(InMemoryEventLog):
    """An in-memory event log that counts the replays it served."""

    replays = 0

    async def events_after(
        self, session_id: str, event_id: int, *, limit: int | None = None
    ) -> list[Event]:
        self.replays += 1
        return await super().events_after(session_id, event_id, limit=limit)


def rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.slow
@pytest.mark.timeout(120)
async def test_200_clients_each_get_every_event(serve: Any, kit: Any) -> None:
    log = CountingLog()
    # Small kernel send buffers (inherited by each connection) let a stalled client fill them.
    app = create_app(steady(RATE, SECONDS), event_log=log, capacity=64)
    base = await serve(app, sndbuf=16384)
    port = int(base.rsplit(":", 1)[1])
    before_tasks = kit.server_tasks()
    before_rss = rss_mb()
    async with httpx.AsyncClient(timeout=10) as http:
        run_id = await kit.start_run(http, base)
        path = f"/runs/{run_id}/events"
        clients = [Client() for _ in range(CLIENTS)]
        # Deliberately slow: reads nothing until the run is over, so however slow the machine,
        # every event is produced while it is stalled and it falls far behind the ring of 64.
        run_over = asyncio.Event()
        clients[0].stall = run_over
        for client in clients[1 : 1 + QUITTERS]:
            client.quit_after = 100
        async with asyncio.TaskGroup() as group:
            for client in clients:
                group.create_task(client.run(port, path))
            await kit.eventually(lambda: all(len(c.ids) >= 100 for c in clients[1 : 1 + QUITTERS]))
            mid = (await http.get(f"{base}/health")).json()["metrics"]
            info = await kit.wait_status(http, base, run_id)
            run_over.set()
        health = (await http.get(f"{base}/health")).json()
    total = info["events"]
    ticks = int(RATE * SECONDS)
    for client in clients[1 + QUITTERS :] + clients[:1]:
        assert client.ids == list(range(1, total + 1))
        assert client.ticks == ticks
        assert client.ended
    for client in clients[1 : 1 + QUITTERS]:
        assert client.ids == list(range(1, len(client.ids) + 1))
    assert mid["sse_clients"] <= CLIENTS
    # The slow client fell past the ring of 64 and was served from the event log instead.
    assert total > 64
    assert log.replays > 0
    assert health["metrics"]["sse_clients"] == 0
    await kit.eventually(lambda: not kit.server_tasks() - before_tasks)
    growth = rss_mb() - before_rss
    assert growth < 100, f"RSS grew by {growth:.0f} MB"
