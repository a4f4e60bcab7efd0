"""SSE frames over a real uvicorn: names, ids, the end of the stream, pings, gaps, disconnects."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from weavegraph import STREAM_END_SCOPE, Event, EventBus
from weavegraph.web import InMemoryEventLog, create_app, encode_frame, last_event_id, sse_response


def bus_app(bus: EventBus, closed: asyncio.Queue[bool] | None = None, **options: Any) -> Starlette:
    """An app with one endpoint streaming `bus`, as a user would write it."""

    async def events(request: Request) -> Response:
        after = last_event_id(request)
        on_close = None if closed is None else (lambda: closed.put_nowait(True))
        stream = bus.subscribe(after=after)
        return sse_response(stream, after=after, on_close=on_close, **options)

    return Starlette(routes=[Route("/events", events)])


def end(session: str = "s") -> Event:
    return Event.diagnostic(STREAM_END_SCOPE, "status=completed", metadata={"status": "completed"})


async def test_run_stream_frames_are_named_numbered_and_end(serve: Any, kit: Any) -> None:
    base = await serve(create_app(kit.emitter(20), event_log=InMemoryEventLog()))
    async with httpx.AsyncClient(timeout=10) as client:
        run_id = await kit.start_run(client, base)
        frames = await kit.read_sse(client, f"{base}/runs/{run_id}/events")
    assert frames.names == {"workflow-event"}
    assert frames.ids == list(range(1, len(frames.ids) + 1))
    assert frames.ended
    assert frames.events[-1]["metadata"]["status"] == "completed"
    assert frames.node_messages() == [f"n={n}" for n in range(1, 21)]
    assert {e["metadata"]["session_id"] for e in frames.events} == {run_id}


async def test_frame_bytes() -> None:
    event = Event.node("greeting", "hi", node_id="greet")
    event.id = 7
    frame = encode_frame(event)
    assert frame == b"event: workflow-event\nid: 7\ndata: " + event.to_json().encode() + b"\n\n"
    assert encode_frame(event) is frame  # encoded once, shared by every client
    assert encode_frame(event, "custom").startswith(b"event: custom\nid: 7\n")
    gap = Event.diagnostic("__weavegraph_gap__", "missed", metadata={"missed": 1})
    assert b"id:" not in encode_frame(gap)  # the browser keeps its last real id


async def test_user_endpoint_with_sse_response(serve: Any) -> None:
    bus = EventBus()
    base = await serve(bus_app(bus, event="run", retry=500))
    async with (
        httpx.AsyncClient(timeout=10) as client,
        client.stream("GET", f"{base}/events") as response,
    ):
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert response.headers["cache-control"] == "no-store"
        for n in range(3):
            bus.publish(Event.node("step", f"m{n}"))
        bus.publish(end())
        body = (await response.aread()).decode()
    assert body.startswith("retry: 500\n\n")
    blocks = body.strip().split("\n\n")[1:]
    assert [b.splitlines()[:2] for b in blocks] == [["event: run", f"id: {n}"] for n in range(1, 5)]
    assert json.loads(blocks[0].splitlines()[2].removeprefix("data: "))["message"] == "m0"
    await bus.stop()


async def test_idle_stream_sends_pings(serve: Any) -> None:
    bus = EventBus()
    base = await serve(bus_app(bus, ping=0.05))
    async with (
        httpx.AsyncClient(timeout=10) as client,
        client.stream("GET", f"{base}/events") as response,
    ):
        lines = response.aiter_lines()
        seen = [await anext(lines) for _ in range(4)]
        bus.publish(end())
        rest = [line async for line in lines]
    assert seen == [": ping", "", ": ping", ""]
    assert "event: workflow-event" in rest
    await bus.stop()


async def test_gap_without_a_log_is_reported_with_exact_counts(serve: Any) -> None:
    bus = EventBus(capacity=10)
    for n in range(1, 51):
        bus.publish(Event.node("step", f"m{n}"))
    bus.publish(end())
    base = await serve(bus_app(bus))
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(f"{base}/events", headers={"Last-Event-ID": "0"})
    blocks = response.text.strip().split("\n\n")
    gap = json.loads(blocks[0].split("data: ", 1)[1])
    assert gap["scope"] == "__weavegraph_gap__"
    assert gap["metadata"] == {"first_missed_id": 1, "last_missed_id": 41, "missed": 41}
    assert "id:" not in blocks[0]
    ids = [int(b.split("id: ")[1].split("\n")[0]) for b in blocks[1:]]
    assert ids == list(range(42, 52))
    assert gap["metadata"]["missed"] + len(ids) == bus.last_id
    await bus.stop()


async def test_resume_from_a_newer_id_sends_nothing_twice(serve: Any) -> None:
    bus = EventBus()
    for n in range(1, 6):
        bus.publish(Event.node("step", f"m{n}"))
    base = await serve(bus_app(bus))
    async with (
        httpx.AsyncClient(timeout=10) as client,
        client.stream("GET", f"{base}/events", headers={"Last-Event-ID": "3"}) as response,
    ):
        bus.publish(end())
        body = (await response.aread()).decode()
    assert [line for line in body.splitlines() if line.startswith("id: ")] == [
        "id: 4",
        "id: 5",
        "id: 6",
    ]
    await bus.stop()


async def test_client_disconnect_closes_the_stream_and_leaves_no_task(serve: Any, kit: Any) -> None:
    bus = EventBus()
    closed: asyncio.Queue[bool] = asyncio.Queue()
    base = await serve(bus_app(bus, closed))
    before = kit.server_tasks()
    async with httpx.AsyncClient(timeout=10) as client:
        for round_ in range(3):
            async with client.stream("GET", f"{base}/events") as response:
                lines = response.aiter_lines()
                bus.publish(Event.node("step", f"round {round_}"))
                assert await anext(lines) == "event: workflow-event"
                assert bus.metrics().subscribers == 1
    async with asyncio.timeout(5):  # each response closed its stream, then said so
        assert [await closed.get() for _ in range(3)] == [True, True, True]
    assert bus.metrics().subscribers == 0
    # The connection tasks of uvicorn end with the connections; nothing of ours is left.
    await kit.eventually(lambda: not kit.server_tasks() - before)
    await bus.stop()


async def test_head_request_gets_headers_only(serve: Any) -> None:
    bus = EventBus()
    base = await serve(bus_app(bus))
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.head(f"{base}/events")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.content == b""
    assert bus.metrics().subscribers == 0
    await bus.stop()


async def test_a_stalled_client_without_a_log_is_told_exactly_what_it_missed(serve: Any) -> None:
    bus = EventBus(capacity=16)
    base = await serve(bus_app(bus), sndbuf=16384)
    async with (
        httpx.AsyncClient(timeout=10) as client,
        client.stream("GET", f"{base}/events") as response,
    ):
        lines = response.aiter_lines()
        bus.publish(Event.node("step", "first"))
        while await anext(lines) != "id: 1":
            pass
        # The client reads nothing while 300 large events go out: the server blocks on the
        # full socket and its stream falls more than 16 events behind.
        for n in range(300):
            bus.publish(Event.node("step", f"m{n} " + "x" * 2000))
            await asyncio.sleep(0)
        bus.publish(end())
        rest = [line async for line in lines]
    ids = [1] + [int(line[4:]) for line in rest if line.startswith("id: ")]
    gaps = [json.loads(line[6:]) for line in rest if '"scope":"__weavegraph_gap__"' in line]
    missed = sum(gap["metadata"]["missed"] for gap in gaps)
    assert gaps, "the client never fell behind: the test did not stall it"
    assert ids == sorted(ids)
    assert ids[-1] == bus.last_id  # the STREAM_END arrived
    assert len(ids) + missed == bus.last_id
    await bus.stop()
