"""The run server: starting runs, their status, cancelling, failures, shutdown, bounded memory."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from weavegraph import (
    END,
    START,
    GraphBuilder,
    NodeContext,
    NodePartial,
    StateSnapshot,
    VersionedState,
)
from weavegraph.checkpoint import SQLiteCheckpointer
from weavegraph.web import InMemoryEventLog, create_app


def gated_app(gate: asyncio.Event, started: asyncio.Event | None = None) -> Any:
    """One node that says hello, then waits for `gate` (fails if the input says so)."""

    async def work(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
        ctx.emit("work", "waiting")
        if started is not None:
            started.set()
        if snapshot.messages and snapshot.messages[-1].content == "fail":
            raise RuntimeError("asked to fail")
        await gate.wait()
        return NodePartial(extra={"done": True})

    return (
        GraphBuilder()
        .add_node("work", work)
        .add_edge(START, "work")
        .add_edge("work", END)
        .compile()
    )


async def test_a_run_from_input_to_final_state(serve: Any, kit: Any) -> None:
    base = await serve(create_app(kit.assistant_app(), event_log=InMemoryEventLog()))
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(f"{base}/runs", json={"input": "What is a superstep?"})
        assert response.status_code == 201
        run_id = response.json()["session_id"]
        assert response.json() == {
            "session_id": run_id,
            "events": f"/runs/{run_id}/events",
            "status": f"/runs/{run_id}",
        }
        assert response.headers["location"] == f"/runs/{run_id}"
        frames = await kit.read_sse(client, f"{base}/runs/{run_id}/events")
        info = await kit.wait_status(client, base, run_id)
    assert info["status"] == "completed"
    assert info["error"] is None
    assert info["step"] == 6  # plan, searches, draft, review, draft, review
    assert info["events"] == frames.last_id
    messages = info["state"]["messages"]["value"]
    assert messages[0] == {"role": "user", "content": "What is a superstep?"}
    assert messages[-1]["content"] == "Draft 2 says supersteps merge at a barrier."
    assert info["finished_at"] >= info["created_at"]
    chunks = [e["message"] for e in frames.events if e["type"] == "llm" and e["scope"] == "chunk"]
    text = "Draft 1 says supersteps merge at a barrier. Draft 2 says supersteps merge at a barrier."
    assert "".join(chunks).split() == text.split()


async def test_a_run_from_a_state(serve: Any, kit: Any) -> None:
    base = await serve(create_app(kit.emitter(2), event_log=InMemoryEventLog()))
    short = {"messages": [{"role": "system", "content": "be brief"}], "extra": {"k": [1, 2]}}
    full = VersionedState.with_user_message("hi").to_dict()
    async with httpx.AsyncClient(timeout=10) as client:
        finals = []
        for state in (short, full):
            response = await client.post(f"{base}/runs", json={"state": state})
            assert response.status_code == 201
            run_id = response.json()["session_id"]
            finals.append((await kit.wait_status(client, base, run_id))["state"])
    assert finals[0]["messages"]["value"] == [{"role": "system", "content": "be brief"}]
    assert finals[0]["extra"]["value"] == {"k": [1, 2], "emitted": 2}
    assert finals[1]["messages"]["value"] == [{"role": "user", "content": "hi"}]


async def test_a_failing_run_leaves_the_others_alone(serve: Any, kit: Any) -> None:
    gate = asyncio.Event()
    base = await serve(create_app(gated_app(gate), event_log=InMemoryEventLog()))
    async with httpx.AsyncClient(timeout=10) as client:
        good = await kit.start_run(client, base, "ok")
        bad = await kit.start_run(client, base, "fail")
        failed = await kit.read_sse(client, f"{base}/runs/{bad}/events")
        bad_info = await kit.wait_status(client, base, bad)
        assert (await client.get(f"{base}/runs/{good}")).json()["status"] == "running"
        gate.set()
        good_info = await kit.wait_status(client, base, good)
        health = (await client.get(f"{base}/health")).json()
    assert failed.events[-1]["metadata"]["status"] == "error"
    assert bad_info["status"] == "error"
    assert "asked to fail" in bad_info["error"]
    assert bad_info["state"]["errors"]["value"][0]["error"]["message"].endswith("asked to fail")
    assert good_info["status"] == "completed"
    assert health["status"] == "healthy"
    assert health["metrics"]["runs_running"] == 0


async def test_cancel_ends_the_stream_with_cancelled(serve: Any, kit: Any) -> None:
    gate, started = asyncio.Event(), asyncio.Event()
    base = await serve(create_app(gated_app(gate, started), event_log=InMemoryEventLog()))
    async with httpx.AsyncClient(timeout=10) as client:
        run_id = await kit.start_run(client, base)
        reader = asyncio.create_task(kit.read_sse(client, f"{base}/runs/{run_id}/events"))
        await started.wait()
        response = await client.post(f"{base}/runs/{run_id}/cancel")
        assert response.status_code == 202
        assert response.json() == {"session_id": run_id, "status": "cancelling"}
        frames = await reader
        info = await kit.wait_status(client, base, run_id)
        again = await client.post(f"{base}/runs/{run_id}/cancel")
    assert frames.events[-1]["scope"] == "__weavegraph_stream_end__"
    assert frames.events[-1]["metadata"]["status"] == "cancelled"
    assert info["status"] == "cancelled"
    assert again.status_code == 409
    assert again.json() == {"error": f"run {run_id!r} is already cancelled; nothing to cancel"}


async def test_cancel_before_the_run_task_starts() -> None:
    log = InMemoryEventLog()
    app = create_app(gated_app(asyncio.Event()), event_log=log)
    registry = app.state.weavegraph.registry
    run = registry.start(VersionedState())
    registry.stop(run.id)  # the task has not run a single step yet
    assert run.task is not None
    await run.task
    events = await log.events_after(run.id, 0)
    assert [(e.scope, e.metadata.get("status")) for e in events] == [
        ("__weavegraph_stream_end__", "cancelled")
    ]
    assert run.status == "cancelled"
    await app.state.weavegraph.close()


async def test_server_shutdown_cancels_running_runs(serve: Any, kit: Any) -> None:
    gate, started = asyncio.Event(), asyncio.Event()
    log = InMemoryEventLog()
    base = await serve(create_app(gated_app(gate, started), event_log=log))
    before = kit.server_tasks()
    async with httpx.AsyncClient(timeout=10) as client:
        run_id = await kit.start_run(client, base)
        reader = asyncio.create_task(kit.read_sse(client, f"{base}/runs/{run_id}/events"))
        await started.wait()
        await serve.stop(base)  # as on Ctrl-C: runs cancelled first, then connections closed
        frames = await reader
    assert frames.events[-1]["metadata"]["status"] == "cancelled"
    assert (await log.events_after(run_id, 0))[-1].is_stream_end()
    assert not kit.server_tasks() - before


async def test_memory_keeps_only_recent_runs_the_log_keeps_all(
    serve: Any, kit: Any, tmp_path: Path
) -> None:
    checkpointer = SQLiteCheckpointer(tmp_path / "checkpoints.db")
    log = InMemoryEventLog()
    app = create_app(kit.emitter(3), event_log=log, checkpointer=checkpointer, max_finished_runs=2)
    base = await serve(app)
    async with httpx.AsyncClient(timeout=10) as client:
        ids = []
        for n in range(5):
            ids.append(await kit.start_run(client, base, f"run {n}"))
            await kit.wait_status(client, base, ids[-1])
        health = (await client.get(f"{base}/health")).json()
        oldest = (await client.get(f"{base}/runs/{ids[0]}")).json()
        replay = await kit.read_sse(client, f"{base}/runs/{ids[0]}/events")
    registry = app.state.weavegraph.registry
    assert [run_id for run_id in ids if registry.get(run_id) is not None] == ids[-2:]
    assert health["metrics"]["runs_in_memory"] == 2
    assert health["metrics"]["runs_started"] == 5
    assert oldest["status"] == "completed"
    assert oldest["step"] == 1
    assert oldest["state"]["messages"]["value"] == [{"role": "user", "content": "run 0"}]
    assert oldest["events"] == replay.last_id
    assert replay.node_messages() == ["n=1", "n=2", "n=3"]
    assert replay.ended
    await checkpointer.aclose()


async def test_too_many_running_runs_are_refused(serve: Any, kit: Any) -> None:
    gate = asyncio.Event()
    app = create_app(gated_app(gate), event_log=InMemoryEventLog(), max_running_runs=2)
    base = await serve(app)
    async with httpx.AsyncClient(timeout=10) as client:
        first = [await kit.start_run(client, base) for _ in range(2)]
        refused = await client.post(f"{base}/runs", json={"input": "third"})
        gate.set()
        for run_id in first:
            await kit.wait_status(client, base, run_id)
        accepted = await client.post(f"{base}/runs", json={"input": "fourth"})
    assert refused.status_code == 429
    assert refused.json() == {
        "error": "2 runs are running, the most this server allows; try again when one has finished"
    }
    assert accepted.status_code == 201


async def test_graph_page_and_static_files(serve: Any, kit: Any) -> None:
    graph = kit.assistant_app()
    base = await serve(create_app(lambda: graph, event_log=InMemoryEventLog()))
    async with httpx.AsyncClient(timeout=10) as client:
        mermaid = await client.get(f"{base}/graph")
        svg = await client.get(f"{base}/graph.svg")
        page = await client.get(f"{base}/")
        script = await client.get(f"{base}/static/app.js")
        style = await client.get(f"{base}/static/app.css")
        missing = await client.get(f"{base}/static/nope.js")
    assert mermaid.text == graph.to_mermaid()
    assert mermaid.headers["content-type"] == "text/plain; charset=utf-8"
    assert svg.headers["content-type"] == "image/svg+xml"
    assert svg.text.startswith("<svg ")
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert '<script src="/static/app.js"' in page.text
    assert "new EventSource(" in script.text
    assert script.headers["content-type"].startswith("text/javascript")
    assert style.headers["content-type"].startswith("text/css")
    assert missing.status_code == 404
    assert missing.json() == {"error": "Not Found: GET /static/nope.js"}


def test_the_package_ships_its_page_and_exports_sorted_names() -> None:
    import importlib.resources

    import weavegraph.web as web

    static = importlib.resources.files("weavegraph.web") / "static"
    assert all((static / name).is_file() for name in ("index.html", "app.js", "app.css"))
    assert web.__all__ == sorted(web.__all__, key=lambda n: (not n.isupper(), n))
    assert all(hasattr(web, name) for name in web.__all__)
