"""Following a run's SSE stream like a browser does: reconnect with Last-Event-ID until the end."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import httpx
from httpx_sse import aconnect_sse

STREAM_END = "__weavegraph_stream_end__"


async def _read(client: httpx.AsyncClient, url: str, events: list[dict[str, Any]]) -> bool:
    """Append events from one connection; True once the STREAM_END (or a 204) came."""
    last = max((e["id"] for e in events if e["id"]), default=None)
    headers = {} if last is None else {"Last-Event-ID": str(last)}
    async with aconnect_sse(client, "GET", url, headers=headers) as source:
        if source.response.status_code == 204:
            return True
        assert source.response.status_code == 200, source.response.status_code
        async for sse in source.aiter_sse():
            if not sse.data:
                continue
            event = json.loads(sse.data)
            events.append(event)
            if event["scope"] == STREAM_END:
                return True
    return False


async def follow(
    client: httpx.AsyncClient,
    base: str,
    run_id: str,
    *,
    timeout: float = 60.0,
    drop: asyncio.Event | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """Every event of the run up to its STREAM_END, and how many times it reconnected.

    When `drop` is set the open connection is closed at once (once), as a client that lost
    its network would; the next connection resumes with Last-Event-ID.
    """
    events: list[dict[str, Any]] = []
    reconnects = -1
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    url = f"{base}/runs/{run_id}/events"
    while loop.time() < deadline:
        reconnects += 1
        reading = asyncio.ensure_future(_read(client, url, events))
        waits: set[asyncio.Future[Any]] = {reading}
        if drop is not None:
            waits.add(asyncio.ensure_future(drop.wait()))
        done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for future in pending:
            future.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await future
        if reading in done:
            with contextlib.suppress(httpx.HTTPError, ConnectionError):
                if reading.result():
                    return events, reconnects
        else:
            drop = None  # dropped once; follow to the end from here
        await asyncio.sleep(0.1)
    raise TimeoutError(f"run {run_id} did not end within {timeout} s; got {len(events)} events")
