"""The graphs the cluster benchmark runs in worker processes.

`app`: ten async nodes in a chain; each emits one event and adds 1 to a counter.
`paced`: one node that emits `extra.events` events `extra.interval` seconds apart, each
carrying its wall-clock emission time in `metadata.sent` (for latency across processes).
"""

from __future__ import annotations

import asyncio
import time

from weavegraph import (
    END,
    START,
    GraphBuilder,
    NodeContext,
    NodePartial,
    ReducerRegistry,
    StateSnapshot,
    sum_keys,
)

NODES = 10


async def step(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
    ctx.emit("step", ctx.node)
    return NodePartial(extra={"count": 1})


def chain() -> GraphBuilder:
    builder = GraphBuilder().with_reducers(ReducerRegistry().replace("extra", sum_keys("count")))
    previous = START
    for index in range(NODES):
        name = f"n{index}"
        builder.add_node(name, step)
        builder.add_edge(previous, name)
        previous = name
    return builder.add_edge(previous, END)


async def emit_paced(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
    count = int(snapshot.extra.get("events", 200))  # type: ignore[arg-type]
    interval = float(snapshot.extra.get("interval", 0.005))  # type: ignore[arg-type]
    for index in range(count):
        ctx.emit("tick", "tick", index=index, sent=time.time())
        await asyncio.sleep(interval)
    return NodePartial(extra={"sent": count})


app = chain().compile()
paced = (
    GraphBuilder()
    .add_node("emit", emit_paced)
    .add_edge(START, "emit")
    .add_edge("emit", END)
    .compile()
)
