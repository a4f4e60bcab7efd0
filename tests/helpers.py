"""Helpers shared by the tests (importable as `helpers`: tests/ is on pytest's pythonpath)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from weavegraph import NodeContext, NodePartial, StateSnapshot

NodeFn = Callable[[StateSnapshot, NodeContext], Awaitable[NodePartial | None]]


def recorder(log: list[str], name: str, partial: NodePartial | None = None) -> NodeFn:
    """An async node that appends its name to `log` and returns `partial`."""

    async def node(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial | None:
        log.append(name)
        return partial

    node.__name__ = name
    return node


async def assert_no_tasks_left() -> None:
    """Fail if any task other than the current one is still alive on the loop."""
    await asyncio.sleep(0)
    current = asyncio.current_task()
    alive = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    assert alive == [], f"tasks left running: {alive}"
