"""A tiny buffer and a flood of events: who drops what, and who loses nothing.

The bus keeps `capacity` events for plain readers; one that falls further behind skips to the
oldest retained event, counts what it skipped in `dropped`, and first receives a GAP
diagnostic naming the missed ids. A lossless reader keeps everything it has not read.

Run: python examples/event_backpressure.py
"""

from __future__ import annotations

import asyncio
import logging

from weavegraph import (
    END,
    GAP_SCOPE,
    START,
    AppRunner,
    EventBus,
    GraphBuilder,
    NodeContext,
    StateSnapshot,
)

FLOOD = 1_000


async def flood(snapshot: StateSnapshot, ctx: NodeContext) -> None:
    for n in range(FLOOD):
        ctx.emit("flood", str(n))  # never yields: readers cannot keep up


app = (
    GraphBuilder()
    .add_node("flood", flood)
    .add_edge(START, "flood")
    .add_edge("flood", END)
    .compile()
)


async def main() -> None:
    # The lag warning ("event stream lagged; dropped events") is expected here.
    logging.getLogger("weavegraph.event_bus").setLevel(logging.ERROR)
    bus = EventBus(capacity=2)
    runner = AppRunner(app, event_bus=bus, lifecycle_events=False)
    sid = await runner.create_session()
    slow = bus.subscribe(kinds="node")
    careful = bus.subscribe(kinds="node", lossless=True)
    await runner.run_until_complete(sid)

    slow_events = [e async for e in slow]
    gap = slow_events[0]
    delivered = [e for e in slow_events if e.scope == "flood"]
    print(f"published: {FLOOD}")
    print(
        f"plain reader: {len(delivered)} delivered + {slow.dropped} dropped = "
        f"{len(delivered) + slow.dropped}"
    )
    print(
        f"gap first: {gap.scope == GAP_SCOPE}, missed ids {gap.metadata['first_missed_id']}"
        f"..{gap.metadata['last_missed_id']} ({gap.metadata['missed']} events)"
    )
    kept = [e async for e in careful if e.scope == "flood"]
    print(f"lossless reader: {len(kept)} delivered, ids {kept[0].id}..{kept[-1].id}")
    print(f"bus total dropped: {bus.metrics().dropped}")
    await runner.aclose()
    await bus.stop()


if __name__ == "__main__":
    asyncio.run(main())
