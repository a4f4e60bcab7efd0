"""The graph the cluster tests run in worker processes.

Ten nodes in a chain; each emits a few events, waits `extra.pace` seconds, records its side
effect as a row (run, node) in the PostgreSQL table `effects` of `WEAVEGRAPH_EFFECTS_DSN`,
and appends its name to the messages. `extra.poison` makes the first node fail every time.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable

import psycopg

from weavegraph import END, START, GraphBuilder, Message, NodeContext, NodePartial, StateSnapshot

NODES = [f"n{i}" for i in range(10)]
EVENTS_PER_NODE = 3
NodeFn = Callable[[StateSnapshot, NodeContext], Awaitable[NodePartial]]


async def record_effect(run_id: str, node: str) -> None:
    """One row per execution: the test counts them."""
    dsn = os.environ["WEAVEGRAPH_EFFECTS_DSN"]
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        await conn.execute("INSERT INTO effects (run_id, node) VALUES (%s, %s)", (run_id, node))


def _node(name: str) -> NodeFn:
    async def node(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
        extra = snapshot.extra
        if extra.get("poison") and name == NODES[0]:
            raise RuntimeError("poisoned input")
        for index in range(EVENTS_PER_NODE):
            ctx.emit("work", f"{name} event {index}", index=index)
        pace = extra.get("pace", 0)
        if isinstance(pace, int | float) and pace > 0:
            await asyncio.sleep(pace)
        await record_effect(ctx.session_id, name)
        return NodePartial(messages=[Message.assistant(name)])

    return node


def build() -> GraphBuilder:
    """The chain START → n0 → … → n9 → END."""
    builder = GraphBuilder()
    previous = START
    for name in NODES:
        builder.add_node(name, _node(name))
        builder.add_edge(previous, name)
        previous = name
    return builder.add_edge(previous, END)


app = build().compile()
