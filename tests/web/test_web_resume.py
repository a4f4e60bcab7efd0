"""Resuming with Last-Event-ID: from the ring, from the durable log, and after the run ended."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from weavegraph.checkpoint import SQLiteEventLog
from weavegraph.web import InMemoryEventLog, create_app

N = 1000


def check_union(first: Any, second: Any) -> None:
    """The two connections together saw every node event once, in order, and the end."""
    ids = first.ids + second.ids
    assert ids == sorted(set(ids)), "duplicates or disorder across the reconnection"
    assert ids == list(range(1, len(ids) + 1)), "an id is missing"
    assert first.node_messages() + second.node_messages() == [f"n={n}" for n in range(1, N + 1)]
    assert second.ended
    assert not first.ended


@pytest.mark.parametrize("capacity", [4096, 16], ids=["ring", "log"])
async def test_reconnect_mid_run_gets_the_rest_exactly_once(
    serve: Any, kit: Any, capacity: int
) -> None:
    gate = asyncio.Event()
    log = InMemoryEventLog()
    app = create_app(kit.emitter(N, gate=gate, pause_at=600), event_log=log, capacity=capacity)
    base = await serve(app)
    async with httpx.AsyncClient(timeout=10) as client:
        run_id = await kit.start_run(client, base)
        url = f"{base}/runs/{run_id}/events"
        first = await kit.read_sse(client, url, stop_after_node_events=100)

        # The run goes on to event ~600 while nobody listens: with a ring of 16 the
        # reconnection's replay can only come from the log.
        async def progressed() -> bool:
            return bool((await client.get(f"{base}/runs/{run_id}")).json()["events"] >= 600)

        await kit.eventually(progressed)
        second = kit.Frames()
        reader = asyncio.create_task(
            kit.read_sse(client, url, last_event_id=first.last_id, frames=second)
        )
        await kit.eventually(lambda: len(second.ids) >= 100)  # replay under way
        gate.set()
        await reader
        info = await kit.wait_status(client, base, run_id)
        health = (await client.get(f"{base}/health")).json()
    check_union(first, second)
    assert not any(e["scope"] == "__weavegraph_gap__" for e in second.events)
    assert info["status"] == "completed"
    # With the small ring the server's stream skipped ahead: the log filled the hole.
    assert (health["metrics"]["events_dropped"] > 0) == (capacity == 16)


async def test_reconnect_after_the_run_replays_from_the_log(
    serve: Any, kit: Any, tmp_path: Path
) -> None:
    log = SQLiteEventLog(tmp_path / "events.db")
    base = await serve(create_app(kit.emitter(N), event_log=log, capacity=8))
    async with httpx.AsyncClient(timeout=10) as client:
        run_id = await kit.start_run(client, base)
        url = f"{base}/runs/{run_id}/events"
        first = await kit.read_sse(client, url, stop_after_node_events=100)
        await kit.wait_status(client, base, run_id)
        second = await kit.read_sse(client, url, last_event_id=first.last_id)
        # Everything again, from the start, after the end: still ends with STREAM_END.
        full = await kit.read_sse(client, url)
        # A client that has everything is told there is nothing more (EventSource stops).
        done = await client.get(url, headers={"Last-Event-ID": str(second.last_id)})
    check_union(first, second)
    assert full.ids == first.ids + second.ids
    assert done.status_code == 204
    await log.aclose()


async def test_query_parameter_resumes_like_the_header(serve: Any, kit: Any) -> None:
    base = await serve(create_app(kit.emitter(10), event_log=InMemoryEventLog()))
    async with httpx.AsyncClient(timeout=10) as client:
        run_id = await kit.start_run(client, base)
        await kit.wait_status(client, base, run_id)
        url = f"{base}/runs/{run_id}/events"
        by_query = await kit.read_sse(client, f"{url}?last_event_id=5")
        # The header wins: it is what EventSource sends on its own reconnections.
        both = await kit.read_sse(client, f"{url}?last_event_id=5", last_event_id=8)
    assert by_query.ids[0] == 6
    assert both.ids[0] == 9
    assert by_query.ended
    assert both.ended
