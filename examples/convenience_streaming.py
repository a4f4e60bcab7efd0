"""The two convenience patterns for scripts and CLIs: a channel, and sinks.

- `invoke_with_channel` runs to completion and hands back every event in a receiver.
- `invoke_with_sinks` sends the events to sinks (here a queue and a JSON Lines file) and
  returns only after every sink has handled every event.

Run: python examples/convenience_streaming.py
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path

from weavegraph import (
    END,
    START,
    ChannelSink,
    GraphBuilder,
    JsonLinesSink,
    NodeContext,
    NodePartial,
    StateSnapshot,
)


async def count(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
    for n in range(1, 4):
        ctx.emit("progress", f"{n}/3")
    return NodePartial(extra={"counted": 3})


app = (
    GraphBuilder()
    .add_node("count", count)
    .add_edge(START, "count")
    .add_edge("count", END)
    .compile()
)


async def main() -> None:
    # Pattern 1: one channel holding every event of the run.
    final, receiver = await app.invoke_with_channel()
    progress = [e.message for e in receiver if e.scope == "progress"]
    print(f"channel: {len(receiver)} events, progress {progress}, counted={final.extra['counted']}")

    # Pattern 2: several sinks at once.
    queue: asyncio.Queue = asyncio.Queue()  # type: ignore[type-arg]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "run.jsonl"
        await app.invoke_with_sinks(None, [ChannelSink(queue), JsonLinesSink(path)])
        lines = path.read_text().splitlines()
        first = json.loads(lines[0])
    print(f"queue sink: {queue.qsize()} events")
    print(f"jsonl sink: {len(lines)} lines; first is {first['type']} {first['scope']}")


if __name__ == "__main__":
    asyncio.run(main())
