"""Checkpointers: where a run's state is kept after every step."""

from ._base import ANY_STEP as ANY_STEP
from ._base import Checkpoint as Checkpoint
from ._base import Checkpointer as Checkpointer
from ._base import RunStatus as RunStatus
from ._memory import InMemoryCheckpointer as InMemoryCheckpointer

__all__ = ["ANY_STEP", "Checkpoint", "Checkpointer", "InMemoryCheckpointer", "RunStatus"]
