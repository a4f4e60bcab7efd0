"""Conditional routing: a triage node sends each request to the right handler.

Run: python examples/02_conditional_routing.py
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


async def triage(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
    text = snapshot.messages[-1].content.lower()
    kind = "refund" if "refund" in text else "bug" if "error" in text else "other"
    return NodePartial(extra={"kind": kind})


def handler(reply: str):  # type: ignore[no-untyped-def]
    async def handle(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
        return NodePartial(messages=[Message.assistant(reply)], extra={"handled_by": ctx.node})

    return handle


def route(snapshot: StateSnapshot) -> str:
    """Return a label; the mapping given to add_conditional_edges turns it into a node."""
    return snapshot.extra["kind"]


app = (
    GraphBuilder()
    .add_node("triage", triage)
    .add_node("refunds", handler("A refund form is on its way."))
    .add_node("engineering", handler("Engineering will look at the error."))
    .add_node("frontdesk", handler("Thanks, we will get back to you."))
    .add_edge(START, "triage")
    .add_conditional_edges(
        "triage", route, {"refund": "refunds", "bug": "engineering", "other": "frontdesk"}
    )
    .add_edge("refunds", END)
    .add_edge("engineering", END)
    .add_edge("frontdesk", END)
    .compile()
)


async def main() -> None:
    for text in ["I want a refund", "The app shows an error", "Hello there"]:
        final = await app.invoke(VersionedState.with_user_message(text))
        print(f"{text!r} -> {final.extra['handled_by']}: {final.messages[-1].content}")
    print(app.to_mermaid(), end="")


if __name__ == "__main__":
    asyncio.run(main())
