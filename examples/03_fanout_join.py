"""Fan-out and join: three workers run concurrently; the join runs once, after all of them.

The workers finish in the opposite order to the one they were declared in (each waits for the
next one to finish), but their updates are merged in frontier (declaration) order, so the
result does not depend on timing.

Run: python examples/03_fanout_join.py
"""

from __future__ import annotations

import asyncio

from weavegraph import (
    END,
    START,
    GraphBuilder,
    Message,
    NodeContext,
    NodePartial,
    StateSnapshot,
)

finished: list[str] = []
done: dict[str, asyncio.Event] = {}


def worker(wait_for: str | None):  # type: ignore[no-untyped-def]
    async def work(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
        if wait_for is not None:
            await done[wait_for].wait()
        finished.append(ctx.node)
        done[ctx.node].set()
        return NodePartial(messages=[Message.assistant(f"{ctx.node} done")])

    return work


async def combine(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
    parts = [m.content for m in snapshot.messages]
    return NodePartial(extra={"combined": parts, "combine_step": ctx.step})


builder = GraphBuilder().add_node("combine", combine).add_edge("combine", END)
for name, wait_for in [("fast_start", "middle"), ("middle", "slow_start"), ("slow_start", None)]:
    builder.add_node(name, worker(wait_for)).add_edge(START, name)
builder.add_edge(["fast_start", "middle", "slow_start"], "combine")
app = builder.compile()


async def main() -> None:
    done.update({name: asyncio.Event() for name in ("fast_start", "middle", "slow_start")})
    final = await app.invoke()
    print(f"finished in order: {', '.join(finished)}")
    print(f"merged in order:   {', '.join(final.extra['combined'])}")
    print(f"combine ran once, in step {final.extra['combine_step']}")


if __name__ == "__main__":
    asyncio.run(main())
