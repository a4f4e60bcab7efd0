"""Checkpointers: where a run's state is kept after every step; and the durable event log.

The PostgreSQL backends need the ``postgres`` extra (``pip install 'weavegraph[postgres]'``);
they are imported on first access, so importing this package never needs psycopg.
"""

from typing import TYPE_CHECKING

from ._base import ANY_STEP as ANY_STEP
from ._base import Checkpoint as Checkpoint
from ._base import Checkpointer as Checkpointer
from ._base import RunStatus as RunStatus
from ._eventlog import EventLog as EventLog
from ._eventlog import EventLogError as EventLogError
from ._eventlog import EventLogSink as EventLogSink
from ._memory import InMemoryCheckpointer as InMemoryCheckpointer
from ._sqlite import SQLiteCheckpointer as SQLiteCheckpointer
from ._sqlite_events import SQLiteEventLog as SQLiteEventLog

if TYPE_CHECKING:
    from ._postgres import PostgresCheckpointer as PostgresCheckpointer
    from ._postgres import PostgresEventLog as PostgresEventLog

__all__ = [
    "ANY_STEP",
    "Checkpoint",
    "Checkpointer",
    "EventLog",
    "EventLogError",
    "EventLogSink",
    "InMemoryCheckpointer",
    "PostgresCheckpointer",
    "PostgresEventLog",
    "RunStatus",
    "SQLiteCheckpointer",
    "SQLiteEventLog",
]

_LAZY = frozenset({"PostgresCheckpointer", "PostgresEventLog"})


def __getattr__(name: str) -> object:
    # psycopg is an optional dependency: import the PostgreSQL backends only when asked for.
    if name in _LAZY:
        from . import _postgres

        value: object = getattr(_postgres, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
