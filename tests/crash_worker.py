"""A 20-step workflow that test_store_crash runs in child processes, kills, and resumes.

Usage: python crash_worker.py BACKEND LOCATION SESSION MODE SIDE_EFFECTS [BLOCK_AT READY]

BACKEND is sqlite (LOCATION a file) or postgres (LOCATION a DSN); MODE is run or resume. Each
node appends its name to SIDE_EFFECTS once it has done its work, so the test can count how often
each step really ran. With BLOCK_AT, that node writes READY and then hangs, so the test can kill
the process in the middle of that step. The final state is printed as JSON.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from weavegraph import (
    END,
    START,
    App,
    AppRunner,
    GraphBuilder,
    Message,
    NodeContext,
    NodePartial,
    StateSnapshot,
    VersionedState,
)
from weavegraph.checkpoint import Checkpointer

STEPS = 20


def build(side_effects: Path | None, block_at: str | None = None, ready: Path | None = None) -> App:
    """The chain s0 → s1 → … → s19; each step counts and says its name."""

    async def step(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
        if ctx.node == block_at and ready is not None:
            ready.write_text("ready")  # noqa: ASYNC240 - must be on disk before we hang
            await asyncio.sleep(3600)  # the test kills the process here, mid-step
        if side_effects is not None:
            # Synchronous on purpose: the side effect is on disk before the step can complete.
            with side_effects.open("a") as log:
                log.write(f"{ctx.node}\n")
                log.flush()
                os.fsync(log.fileno())
        count = snapshot.extra.get("count", 0) + 1
        return NodePartial(messages=[Message.assistant(ctx.node)], extra={"count": count})

    builder = GraphBuilder()
    previous = START
    for index in range(STEPS):
        builder.add_node(f"s{index}", step).add_edge(previous, f"s{index}")
        previous = f"s{index}"
    return builder.add_edge(previous, END).compile()


def checkpointer(backend: str, location: str) -> Checkpointer:
    """The checkpointer of the given backend."""
    if backend == "sqlite":
        from weavegraph.checkpoint import SQLiteCheckpointer

        return SQLiteCheckpointer(location)
    from weavegraph.checkpoint import PostgresCheckpointer

    return PostgresCheckpointer(location)


async def main(argv: list[str]) -> None:
    backend, location, session, mode, side_effects = argv[:5]
    block_at, ready = (argv[5], Path(argv[6])) if len(argv) > 6 else (None, None)
    app = build(Path(side_effects), block_at, ready)
    async with (
        checkpointer(backend, location) as store,
        AppRunner(app, checkpointer=store) as runner,
    ):
        if mode == "run":
            start = VersionedState.with_user_message("go")
            await runner.create_session(start, session_id=session)
            final = await runner.run_until_complete(session)
        else:
            final = await runner.resume(session)
    print(final.to_json())


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
