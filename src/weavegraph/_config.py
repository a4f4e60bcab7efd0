"""`RuntimeConfig`: how `App.invoke*` run a graph."""

from __future__ import annotations

from dataclasses import dataclass, field

from ._bus import EventBusConfig
from .checkpoint import Checkpointer

__all__ = ["RuntimeConfig"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RuntimeConfig:
    """Settings for the runs an `App` starts itself.

    Args:
        event_bus: capacity, sinks and diagnostics of the bus each run gets.
        checkpointer: where checkpoints go; None keeps them in memory for the run.
        recursion_limit: most supersteps of one run.
        max_concurrency: most nodes of one step running at once; None for no limit.
        lifecycle_events: publish run/step/node start and finish diagnostics.
    """

    event_bus: EventBusConfig = field(default_factory=EventBusConfig)
    checkpointer: Checkpointer | None = None
    recursion_limit: int = 1000
    max_concurrency: int | None = None
    lifecycle_events: bool = True
