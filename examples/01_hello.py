"""Hello, weavegraph: one node, one message, one event.

Run: python examples/01_hello.py
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
    VersionedState,
)


async def greet(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
    ctx.emit("greeting", "Saying hi!")
    question = snapshot.messages[-1].content
    return NodePartial(messages=[Message.assistant(f"Hello! You asked: {question}")])


app = (
    GraphBuilder()
    .add_node("greet", greet)
    .add_edge(START, "greet")
    .add_edge("greet", END)
    .compile()
)


async def main() -> None:
    final, events = await app.invoke_with_channel(VersionedState.with_user_message("Hi?"))
    for event in events:
        if event.kind == "node":
            print(f"event: [{event.node_id}] {event.scope}: {event.message}")
    for message in final.messages:
        print(f"{message.role}: {message.content}")
    print(f"versions: {final.versions}")


if __name__ == "__main__":
    asyncio.run(main())
