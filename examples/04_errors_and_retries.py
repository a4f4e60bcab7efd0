"""Errors and retries: a flaky node recovers, a slow one times out, and the error is recorded.

Run: python examples/04_errors_and_retries.py
"""

from __future__ import annotations

import asyncio

from weavegraph import (
    END,
    START,
    GraphBuilder,
    NodeContext,
    NodeExecutionError,
    NodePartial,
    RetryPolicy,
    StateSnapshot,
    pretty_print_errors,
)


async def flaky(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
    if ctx.attempt < 3:
        raise ConnectionError(f"service unavailable (attempt {ctx.attempt})")
    return NodePartial(extra={"fetched_on_attempt": ctx.attempt})


async def slow(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
    await asyncio.sleep(10)
    return NodePartial(extra={"never": True})


app = (
    GraphBuilder()
    .add_node("fetch", flaky, retry=RetryPolicy(max_attempts=3, backoff=0.01))
    .add_node("summarize", slow, timeout=0.05, retry=RetryPolicy(max_attempts=2))
    .add_edge(START, "fetch")
    .add_edge("fetch", "summarize")
    .add_edge("summarize", END)
    .compile()
)


async def main() -> None:
    try:
        await app.invoke()
    except NodeExecutionError as error:
        print(f"failed node: {error.node} (step {error.step})")
        print(f"cause: {type(error.__cause__).__name__}: {error.__cause__}")
        state = error.state
        print(f"fetch succeeded on attempt {state.extra['fetched_on_attempt']}")
        report = pretty_print_errors(state.errors)
        # Drop the timestamp so the output is the same on every run.
        print(report.split("] ", 1)[1])


if __name__ == "__main__":
    asyncio.run(main())
