"""The /health JSON: healthy and degraded sinks, counters, for one bus and for the server."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import httpx

from weavegraph import Event, EventBus, MemorySink
from weavegraph.checkpoint import EventLogError
from weavegraph.web import InMemoryEventLog, create_app, health_payload, health_response


class BrokenSink:
    name = "broken"

    def handle(self, event: Event) -> None:
        raise RuntimeError("disk full")


class RefusingLog(InMemoryEventLog):
    """A log whose appends fail, as a full disk would make them."""

    async def append(self, events: Sequence[Event]) -> None:
        raise EventLogError("database is locked")


async def test_a_healthy_bus() -> None:
    bus = EventBus([MemorySink()], capacity=8)
    async with bus:
        for n in range(3):
            bus.publish(Event.node("step", f"m{n}"))
    body = json.loads(health_response(bus).body)
    assert body == {
        "status": "healthy",
        "sinks": [
            {
                "name": "memory",
                "errors": 0,
                "last_error": None,
                "last_error_at": None,
                "handled": 3,
                "abandoned": False,
            }
        ],
        "metrics": {
            "published": 3,
            "dropped": 0,
            "subscribers": 0,
            "sinks": 1,
            "retained": 3,
            "capacity": 8,
        },
    }


async def test_a_failing_sink_makes_the_bus_degraded() -> None:
    bus = EventBus([MemorySink(), BrokenSink()])
    async with bus:
        bus.publish(Event.node("step", "one"))
        bus.publish(Event.node("step", "two"))
    body = json.loads(health_response(bus).body)
    assert body["status"] == "degraded"
    healthy, broken = body["sinks"]
    assert healthy["errors"] == 0
    assert broken["name"] == "broken"
    assert broken["errors"] == 2
    assert broken["last_error"] == "RuntimeError: disk full"
    assert broken["last_error_at"].endswith("Z")


def test_payload_without_sinks_is_healthy() -> None:
    assert health_payload([]) == {"status": "healthy", "sinks": [], "metrics": {}}


async def test_server_health_counts_runs_and_log_failures(serve: Any, kit: Any) -> None:
    base = await serve(create_app(kit.emitter(5), event_log=RefusingLog()))
    async with httpx.AsyncClient(timeout=10) as client:
        before = (await client.get(f"{base}/health")).json()
        run_id = await kit.start_run(client, base)
        info = await kit.wait_status(client, base, run_id)
        after = (await client.get(f"{base}/health")).json()
    assert before == {
        "status": "healthy",
        "sinks": [],
        "metrics": {
            "runs_running": 0,
            "runs_in_memory": 0,
            "runs_started": 0,
            "events_published": 0,
            "events_dropped": 0,
            "sse_clients": 0,
        },
    }
    assert info["status"] == "completed"  # a failing log never fails the run
    assert after["status"] == "degraded"
    (sink,) = after["sinks"]
    assert sink["name"] == "event_log"
    assert sink["errors"] >= 1
    assert "database is locked" in sink["last_error"]
    assert after["metrics"]["runs_started"] == 1
    assert after["metrics"]["events_published"] == info["events"]
