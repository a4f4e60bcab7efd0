"""`Backend`: one checkpointer backend for the conformance suite (see its conftest)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from weavegraph.checkpoint import Checkpointer


@dataclass
class Backend:
    """One storage backend: `open()` gives a checkpointer on the same storage each time
    (a new object, like another process or a restart; the in-memory one is shared)."""

    name: str
    make: Callable[[], Checkpointer]
    opened: list[Checkpointer] = field(default_factory=list)

    async def open(self) -> Checkpointer:
        store = self.make()
        await store.setup()
        self.opened.append(store)
        return store
