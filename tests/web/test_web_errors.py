"""Bad requests get exact 4xx JSON errors and never disturb the server or other runs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from weavegraph.web import InMemoryEventLog, create_app

LIMIT = "request body is over the limit of 65536 bytes"
ONE_OF = "send exactly one of 'input' (a user message) or 'state'"


@pytest.fixture
async def client(kit: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app in-process (these responses are all finite)."""
    app = create_app(kit.emitter(3), event_log=InMemoryEventLog())
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client
    await app.state.weavegraph.close()


BAD_BODIES = [
    (b"not json", 400, "request body is not valid JSON: Expecting value: line 1 column 1 (char 0)"),
    (b"", 400, 'request body is empty; send a JSON object such as {"input": "hi"}'),
    (
        b'{"input": "x"',
        400,
        "request body is not valid JSON: Expecting ',' delimiter: line 1 column 14 (char 13)",
    ),
    (
        b'{"input": "\xc3\x28"}',
        400,
        "request body is not valid JSON: 'utf-8' codec can't decode byte 0xc3 "
        "in position 11: invalid continuation byte",
    ),
    (b"[1, 2]", 422, "request body must be a JSON object; got array"),
    (b'"hi"', 422, "request body must be a JSON object; got string"),
    (b"{}", 422, ONE_OF),
    (b'{"input": "a", "state": {}}', 422, ONE_OF),
    (b'{"input": 5}', 422, "'input' must be a string; got number"),
    (b'{"input": null}', 422, "'input' must be a string; got null"),
    (b'{"inptu": "x"}', 422, "unknown field(s): inptu; send 'input' or 'state'"),
    (b'{"graph": "other", "input": "x"}', 404, "unknown graph 'other'; this server runs 'app'"),
    (b'{"graph": 3, "input": "x"}', 404, "unknown graph 3; this server runs 'app'"),
    (b'{"state": []}', 422, "'state' must be a JSON object; got array"),
    (b'{"state": {"messages": "hi"}}', 422, "'state.messages' must be an array; got string"),
    (b'{"state": {"extra": [1]}}', 422, "'state.extra' must be an object; got array"),
    (b'{"state": {"messages": [1]}}', 422, "each message must be an object; got number"),
    (b'{"state": {"msgs": []}}', 422, "unknown state field(s): msgs"),
    (
        b'{"state": {"messages": [{"role": "user"}]}}',
        422,
        "'state' is not a valid state: not a message object (needs 'role' and 'content'): "
        "{'role': 'user'}",
    ),
    (
        b'{"state": {"messages": [{"role": "user", "content": 3}]}}',
        422,
        "'state' is not a valid state: not a message object (needs 'role' and 'content'): "
        "{'role': 'user', 'content': 3}",
    ),
    (
        b'{"state": {"messages": {"version": 1}}}',
        422,
        "'state' is not a valid state: not a state object: 'value'",
    ),
]


@pytest.mark.parametrize(("body", "status", "error"), BAD_BODIES)
async def test_bad_run_requests(
    client: httpx.AsyncClient, body: bytes, status: int, error: str
) -> None:
    response = await client.post("/runs", content=body)
    assert (response.status_code, response.json()) == (status, {"error": error})


async def test_oversized_bodies(client: httpx.AsyncClient) -> None:
    big = b'{"input": "' + b"x" * 70000 + b'"}'
    declared = await client.post("/runs", content=big)
    assert declared.status_code == 413
    assert declared.json() == {
        "error": f"request body of {len(big)} bytes is over the limit of 65536"
    }

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted while read
        for start in range(0, len(big), 8192):
            yield big[start : start + 8192]

    streamed = await client.post("/runs", content=chunks())
    assert (streamed.status_code, streamed.json()) == (413, {"error": LIMIT})


@pytest.mark.parametrize(
    ("method", "path", "status", "error", "allow"),
    [
        ("GET", "/runs", 405, "Method Not Allowed: GET /runs (allowed: POST)", "POST"),
        (
            "DELETE",
            "/runs/abc",
            405,
            "Method Not Allowed: DELETE /runs/abc (allowed: GET, HEAD)",
            "GET, HEAD",
        ),
        (
            "GET",
            "/runs/abc/cancel",
            405,
            "Method Not Allowed: GET /runs/abc/cancel (allowed: POST)",
            "POST",
        ),
        (
            "PUT",
            "/health",
            405,
            "Method Not Allowed: PUT /health (allowed: GET, HEAD)",
            "GET, HEAD",
        ),
        ("GET", "/nope", 404, "Not Found: GET /nope", None),
        ("GET", "/runs/abc", 404, "unknown run 'abc'", None),
        ("GET", "/runs/abc/events", 404, "unknown run 'abc'", None),
        ("POST", "/runs/abc/cancel", 404, "unknown run 'abc'", None),
    ],
)
async def test_wrong_paths_and_methods(
    client: httpx.AsyncClient, method: str, path: str, status: int, error: str, allow: str | None
) -> None:
    response = await client.request(method, path)
    assert (response.status_code, response.json()) == (status, {"error": error})
    assert response.headers.get("allow") == allow


@pytest.mark.parametrize(
    ("headers", "query", "error"),
    [
        (
            {"Last-Event-ID": "abc"},
            "",
            "Last-Event-ID header must be a non-negative integer event id; got 'abc'",
        ),
        (
            {"Last-Event-ID": "-1"},
            "",
            "Last-Event-ID header must be a non-negative integer event id; got '-1'",
        ),
        (
            {"Last-Event-ID": "1.5"},
            "",
            "Last-Event-ID header must be a non-negative integer event id; got '1.5'",
        ),
        (
            {"Last-Event-ID": "9" * 30},
            "",
            f"Last-Event-ID header must be a non-negative integer event id; got '{'9' * 30}'",
        ),
        (
            {},
            "?last_event_id=x",
            "last_event_id parameter must be a non-negative integer event id; got 'x'",
        ),
    ],
)
async def test_malformed_last_event_id(
    client: httpx.AsyncClient, kit: Any, headers: dict[str, str], query: str, error: str
) -> None:
    run_id = (await client.post("/runs", json={"input": "hi"})).json()["session_id"]
    response = await client.get(f"/runs/{run_id}/events{query}", headers=headers)
    assert (response.status_code, response.json()) == (400, {"error": error})


async def test_the_server_keeps_serving_after_bad_requests(client: httpx.AsyncClient) -> None:
    for body, _, _ in BAD_BODIES:
        await client.post("/runs", content=body)
    run_id = (await client.post("/runs", json={"input": "fine"})).json()["session_id"]
    app: Starlette = client._transport.app  # type: ignore[attr-defined]
    run = app.state.weavegraph.registry.get(run_id)
    assert run.task is not None
    await run.task
    response = await client.get(f"/runs/{run_id}")
    assert response.json()["status"] == "completed"
    assert (await client.get("/health")).json()["metrics"]["runs_started"] == 1


async def test_a_broken_app_factory_gives_json_500(kit: Any) -> None:
    app = create_app(lambda: "not an app", event_log=InMemoryEventLog())  # type: ignore[arg-type,return-value]
    transport = httpx.ASGITransport(app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/graph")
    assert (response.status_code, response.json()) == (
        500,
        {"error": "internal server error: TypeError"},
    )


async def test_a_run_request_may_name_the_served_graph(client: httpx.AsyncClient) -> None:
    response = await client.post("/runs", json={"graph": "app", "input": "hi"})
    assert response.status_code == 201
    run_id = response.json()["session_id"]
    events = await client.get(f"/runs/{run_id}/events")
    assert events.text.count("__weavegraph_stream_end__") == 1
