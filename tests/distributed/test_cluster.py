"""Three workers and two servers over one PostgreSQL database and one Redis server."""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from typing import Any

import httpx
import psycopg
import pytest
from cluster import Cluster
from cluster_graph import EVENTS_PER_NODE, NODES, app
from sse import STREAM_END, follow

from services import RedisServer
from weavegraph import VersionedState
from weavegraph.web._requests import parse_run_request

RUNS = 60


def effects(dsn: str) -> Counter[tuple[str, str]]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT run_id, node FROM effects").fetchall()
    return Counter((run_id, node) for run_id, node in rows)


def assert_complete_stream(events: list[dict[str, Any]], status: str = "completed") -> None:
    ids = [e["id"] for e in events]
    assert ids == list(range(1, len(ids) + 1))
    assert events[-1]["scope"] == STREAM_END
    assert events[-1]["metadata"]["status"] == status
    assert sum(e["scope"] == STREAM_END for e in events) == 1


async def submit(client: httpx.AsyncClient, base: str, body: dict[str, Any]) -> str:
    response = await client.post(f"{base}/runs", json=body)
    assert response.status_code == 201, response.text
    run_id: str = response.json()["session_id"]
    return run_id


async def status_of(client: httpx.AsyncClient, base: str, run_id: str) -> dict[str, Any]:
    response = await client.get(f"{base}/runs/{run_id}")
    assert response.status_code == 200, response.text
    info: dict[str, Any] = response.json()
    return info


async def wait_for(
    client: httpx.AsyncClient, base: str, run_id: str, *states: str
) -> dict[str, Any]:
    for _ in range(600):
        info = await status_of(client, base, run_id)
        if info["status"] in states:
            return info
        await asyncio.sleep(0.05)
    raise AssertionError(f"run {run_id} never reached {states}: {info}")


async def test_sixty_runs_through_two_servers_run_exactly_once(cluster: Cluster) -> None:
    for _ in range(3):
        cluster.start_worker(concurrency=4)
    server_a, server_b = cluster.start_server(), cluster.start_server()
    async with httpx.AsyncClient(timeout=30) as client:
        ids = []
        for index in range(RUNS):
            base = server_a if index % 2 == 0 else server_b
            ids.append(await submit(client, base, {"input": f"run {index}"}))
        # Each run followed on the server it was not submitted to.
        follows = [
            follow(client, server_b if index % 2 == 0 else server_a, run_id)
            for index, run_id in enumerate(ids)
        ]
        streams = await asyncio.gather(*follows)
        for events, _ in streams:
            assert_complete_stream(events)
            work = [e for e in events if e["type"] == "node"]
            assert len(work) == len(NODES) * EVENTS_PER_NODE
        for run_id in ids:
            info = await status_of(client, server_a, run_id)
            assert info["status"] == "succeeded"
            assert [m["content"] for m in info["state"]["messages"]["value"]][1:] == NODES
        health = (await client.get(f"{server_b}/health")).json()
    assert effects(cluster.dsn) == Counter({(r, n): 1 for r in ids for n in NODES})
    assert health["metrics"]["postgres"] is True
    assert health["metrics"]["redis"] is True
    assert health["metrics"]["queue"]["queued"] == 0
    assert len(health["metrics"]["queue"]["workers"]) == 3


async def test_a_killed_worker_s_run_is_finished_by_another(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    workers = [cluster.start_worker(concurrency=1) for _ in range(2)]
    server = cluster.start_server()
    pace = 0.25
    async with httpx.AsyncClient(timeout=30) as client:
        run_id = await submit(
            client,
            server,
            {"state": {"messages": [{"role": "user", "content": "go"}], "extra": {"pace": pace}}},
        )
        info = await wait_for(client, server, run_id, "running")
        for _ in range(200):  # let a few steps complete
            info = await status_of(client, server, run_id)
            if info["step"] >= 3:
                break
            await asyncio.sleep(0.05)
        owner_pid = int(info["worker"].split(":")[1])
        victim = next(w for w in workers if w.pid == owner_pid)
        completed_steps = (await status_of(client, server, run_id))["step"]
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        events, _ = await follow(client, server, run_id)
        final = await wait_for(client, server, run_id, "succeeded", "failed")
    assert final["status"] == "succeeded"
    assert final["attempt"] == 2
    assert_complete_stream(events)
    resumed = [e for e in events if e["scope"] == "__weavegraph_worker__"]
    assert len(resumed) == 1
    assert "resumed" in resumed[0]["message"]
    counts = effects(cluster.dsn)
    monkeypatch.setenv("WEAVEGRAPH_EFFECTS_DSN", cluster.dsn)
    expected = await app.invoke(VersionedState.from_dict(_input_state(pace)))
    assert final["state"] == expected.to_dict()
    for node in NODES[:completed_steps]:
        assert counts[(run_id, node)] == 1  # completed steps never ran twice
    assert sum(n for (r, _), n in counts.items() if r == run_id) <= len(NODES) + 1
    assert all(counts[(run_id, node)] >= 1 for node in NODES)


def _short_state(pace: float) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": "go"}], "extra": {"pace": pace}}


def _input_state(pace: float) -> dict[str, Any]:
    return parse_run_request({"state": _short_state(pace)}).to_dict()


async def test_cancel_through_one_server_stops_a_run_submitted_to_the_other(
    cluster: Cluster,
) -> None:
    cluster.start_worker(concurrency=2)
    server_a, server_b = cluster.start_server(), cluster.start_server()
    async with httpx.AsyncClient(timeout=30) as client:
        run_id = await submit(client, server_a, {"state": _short_state(0.3)})
        following = asyncio.create_task(follow(client, server_a, run_id))
        await wait_for(client, server_a, run_id, "running")
        response = await client.post(f"{server_b}/runs/{run_id}/cancel")
        assert (response.status_code, response.json()) == (
            202,
            {"session_id": run_id, "status": "cancelling"},
        )
        events, _ = await following
        final = await wait_for(client, server_b, run_id, "cancelled")
        again = await client.post(f"{server_b}/runs/{run_id}/cancel")
    assert_complete_stream(events, "cancelled")
    assert final["step"] < len(NODES)
    assert again.status_code == 409
    assert again.json() == {"error": f"run {run_id!r} is already cancelled; nothing to cancel"}


async def test_a_queued_run_cancelled_before_any_worker_took_it(cluster: Cluster) -> None:
    server = cluster.start_server()  # no worker: the run stays queued
    async with httpx.AsyncClient(timeout=30) as client:
        run_id = await submit(client, server, {"input": "never runs"})
        assert (await status_of(client, server, run_id))["status"] == "queued"
        await asyncio.sleep(0.1)
        health = (await client.get(f"{server}/health")).json()
        assert (await client.post(f"{server}/runs/{run_id}/cancel")).status_code == 202
        events, _ = await follow(client, server, run_id)
        info = await status_of(client, server, run_id)
    assert_complete_stream(events, "cancelled")
    assert len(events) == 1
    queue = health["metrics"]["queue"]
    assert (health["status"], queue["queued"], queue["running"], queue["workers"]) == (
        "healthy",
        1,
        0,
        [],
    )
    assert queue["oldest_queued_age"] >= 0.1
    assert (info["status"], info["attempt"], info["step"]) == ("cancelled", 0, 0)


async def test_bad_requests_and_a_poisoned_run(cluster: Cluster) -> None:
    cluster.start_worker(concurrency=2)
    server = cluster.start_server()
    async with httpx.AsyncClient(timeout=30) as client:
        unknown = await client.post(f"{server}/runs", json={"graph": "nope", "input": "x"})
        malformed = await client.post(f"{server}/runs", content=b"{not json")
        wrong = await client.post(f"{server}/runs", json={"input": 3})
        missing = [
            await client.get(f"{server}/runs/nope"),
            await client.get(f"{server}/runs/nope/events"),
            await client.post(f"{server}/runs/nope/cancel"),
        ]
        poisoned = await submit(client, server, {"state": {"extra": {"poison": True}}})
        healthy = await submit(client, server, {"input": "fine"})
        poison_events, _ = await follow(client, server, poisoned)
        healthy_events, _ = await follow(client, server, healthy)
        poison_info = await wait_for(client, server, poisoned, "failed")
        healthy_info = await wait_for(client, server, healthy, "succeeded")
    assert (unknown.status_code, unknown.json()) == (
        404,
        {"error": "unknown graph 'nope'; this server runs 'cluster-test'"},
    )
    assert malformed.status_code == 400
    assert (wrong.status_code, wrong.json()) == (
        422,
        {"error": "'input' must be a string; got number"},
    )
    assert [r.status_code for r in missing] == [404, 404, 404]
    assert (poison_info["attempt"], poison_info["error"]) == (
        3,
        "node 'n0' failed in step 1 after 1 attempt(s): RuntimeError: poisoned input",
    )
    assert_complete_stream(poison_events, "error")
    worker = [e["message"] for e in poison_events if e["scope"] == "__weavegraph_worker__"]
    assert [m.split(" failed:")[0] for m in worker if "goes back" in m] == [
        "attempt 1 of 3",
        "attempt 2 of 3",
    ]
    assert [m.endswith(f"from step 0 (attempt {n})") for n, m in enumerate(worker[1::2], 2)] == [
        True,
        True,
    ]
    assert_complete_stream(healthy_events)
    assert healthy_info["step"] == len(NODES)


async def test_clients_get_every_event_once_across_a_redis_restart(
    cluster_own_redis: tuple[Cluster, RedisServer],
) -> None:
    cluster, redis = cluster_own_redis
    cluster.start_worker(concurrency=4)
    cluster.start_worker(concurrency=4)
    server_a, server_b = cluster.start_server(), cluster.start_server()
    async with httpx.AsyncClient(timeout=30) as client:
        ids = [await submit(client, server_a, {"state": _short_state(0.15)}) for _ in range(4)]
        outage = asyncio.Event()
        # Per run: a client on each server that stays connected, and one that drops its
        # connection when Redis goes down and reconnects with Last-Event-ID.
        follows = [
            asyncio.create_task(follow(client, base, run_id, drop=drop))
            for run_id in ids
            for base in (server_a, server_b)
            for drop in (None, outage)
        ]
        for run_id in ids:
            await wait_for(client, server_a, run_id, "running", "succeeded")
        await asyncio.sleep(0.4)
        await asyncio.to_thread(redis.stop)
        outage.set()
        health = (await client.get(f"{server_b}/health")).json()
        await asyncio.sleep(0.5)
        await asyncio.to_thread(redis.start)
        streams = await asyncio.gather(*follows)
        finals = [await wait_for(client, server_b, run_id, "succeeded") for run_id in ids]
    for events, _ in streams:
        assert_complete_stream(events)
        assert sum(e["type"] == "node" for e in events) == len(NODES) * EVENTS_PER_NODE
    assert [reconnects for _, reconnects in streams] == [0, 1] * (len(streams) // 2)
    assert (health["status"], health["metrics"]["redis"], health["metrics"]["postgres"]) == (
        "degraded",
        False,
        True,
    )
    assert all(info["step"] == len(NODES) for info in finals)


async def test_sigterm_finishes_the_step_hands_the_run_back_and_exits_0(cluster: Cluster) -> None:
    first = cluster.start_worker(concurrency=1)
    server = cluster.start_server()
    async with httpx.AsyncClient(timeout=30) as client:
        run_id = await submit(client, server, {"state": _short_state(0.3)})
        following = asyncio.create_task(follow(client, server, run_id))
        for _ in range(200):
            info = await status_of(client, server, run_id)
            if info["step"] >= 2:
                break
            await asyncio.sleep(0.05)
        first.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(first.wait, 20)
        handed_back = await status_of(client, server, run_id)
        cluster.start_worker(concurrency=1)
        events, _ = await following
        final = await wait_for(client, server, run_id, "succeeded")
    assert code == 0
    assert "1 handed back" in cluster.log("worker", 0)
    assert (handed_back["status"], handed_back["worker"]) == ("queued", None)
    assert final["attempt"] == 1  # a hand-back is not a failed attempt
    assert_complete_stream(events)
    # The step in flight was finished, not abandoned: every node ran exactly once.
    assert effects(cluster.dsn) == Counter({(run_id, n): 1 for n in NODES})
