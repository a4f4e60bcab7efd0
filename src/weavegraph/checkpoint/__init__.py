"""Checkpointers: where a run's state is kept after every step."""

from ._base import Checkpoint as Checkpoint
from ._base import Checkpointer as Checkpointer
from ._base import RunStatus as RunStatus
from ._memory import InMemoryCheckpointer as InMemoryCheckpointer

__all__ = ["Checkpoint", "Checkpointer", "InMemoryCheckpointer", "RunStatus"]
