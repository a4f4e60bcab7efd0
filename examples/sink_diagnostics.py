"""A failing sink does not hurt the run or the other sinks; its failures are reported.

Run: python examples/sink_diagnostics.py
"""

from __future__ import annotations

import asyncio
import json
import logging

from weavegraph import (
    END,
    START,
    AppRunner,
    Event,
    EventBus,
    GraphBuilder,
    MemorySink,
    NodeContext,
    StateSnapshot,
)


class FlakyDatabaseSink:
    """Pretends to write events to a database that rejects every other one."""

    name = "postgres_events_sink"

    def __init__(self) -> None:
        self.written = 0

    def handle(self, event: Event) -> None:
        if event.id % 2 == 0:
            raise ConnectionError(f"insert of event {event.id} refused")
        self.written += 1


async def work(snapshot: StateSnapshot, ctx: NodeContext) -> None:
    for n in range(5):
        ctx.emit("work", f"item {n}")


app = GraphBuilder().add_node("work", work).add_edge(START, "work").add_edge("work", END).compile()


async def main() -> None:
    # Each failure is also logged on "weavegraph.event_bus"; this example prints them itself.
    logging.getLogger("weavegraph.event_bus").setLevel(logging.CRITICAL)
    flaky, memory = FlakyDatabaseSink(), MemorySink()
    bus = EventBus([flaky, memory])
    diagnostics = bus.diagnostics()
    runner = AppRunner(app, event_bus=bus, lifecycle_events=False)
    sid = await runner.create_session()
    await runner.run_until_complete(sid)
    await bus.stop()  # drains: every sink has seen every event

    print(f"memory sink got {len(memory.snapshot())} events; flaky sink wrote {flaky.written}")
    async for diagnostic in diagnostics:
        print(f"sink {diagnostic.sink!r} error #{diagnostic.occurrence}: {diagnostic.error}")
    health = bus.sink_health()
    status = "degraded" if any(h.error_count for h in health) else "healthy"
    sinks = [{"name": h.sink, "errors": h.error_count, "last_error": h.last_error} for h in health]
    report = {"status": status, "sinks": sinks}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
