"""Stream a run's events as they happen (the pattern a web server uses for SSE).

`invoke_streaming` starts the run in the background and returns its handle and an event
stream that was subscribed before the run started, so no event is missed. The stream ends
after the run's STREAM_END diagnostic; `join()` then gives the final state.

Run: python examples/streaming_events.py
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
    RuntimeConfig,
    StateSnapshot,
    VersionedState,
)


async def think(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
    ctx.emit("thinking", "reading the question")
    await asyncio.sleep(0.01)
    return NodePartial(extra={"topic": "streams"})


async def answer(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
    words = ["Events", "arrive", "while", "the", "run", "works."]
    for word in words:
        ctx.emit_llm_chunk(word + " ")
        await asyncio.sleep(0.005)
    ctx.emit_llm_final(" ".join(words))
    return NodePartial(messages=[Message.assistant(" ".join(words))])


app = (
    GraphBuilder()
    .add_node("think", think)
    .add_node("answer", answer)
    .add_edge(START, "think")
    .add_edge("think", "answer")
    .add_edge("answer", END)
    .compile(RuntimeConfig(lifecycle_events=False))  # only what the nodes say, for brevity
)


async def main() -> None:
    invocation, events = await app.invoke_streaming(VersionedState.with_user_message("How?"))
    async with events:
        async for event in events:
            print(f"#{event.id} {event.kind:<10} {event.scope:<26} {event.message!r}")
    final = await invocation.join()
    print(f"final: {final.messages[-1].content}")


if __name__ == "__main__":
    asyncio.run(main())
