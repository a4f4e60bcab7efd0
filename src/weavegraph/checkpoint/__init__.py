"""Checkpointers: where a run's state is kept after every step; and the durable event log.

The PostgreSQL backends need the ``postgres`` extra (``pip install 'weavegraph[postgres]'``).
The database backends are imported on first access, so importing this package needs neither
psycopg nor sqlite3 (which keeps `import weavegraph` fast).
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

if TYPE_CHECKING:
    from ._postgres import PostgresCheckpointer as PostgresCheckpointer
    from ._postgres import PostgresEventLog as PostgresEventLog
    from ._sqlite import SQLiteCheckpointer as SQLiteCheckpointer
    from ._sqlite_events import SQLiteEventLog as SQLiteEventLog

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

_LAZY = {
    "PostgresCheckpointer": "_postgres",
    "PostgresEventLog": "_postgres",
    "SQLiteCheckpointer": "_sqlite",
    "SQLiteEventLog": "_sqlite_events",
}


def __getattr__(name: str) -> object:
    # Database backends load only when asked for: psycopg is optional, and sqlite3 and its
    # helpers cost import time that most users of `import weavegraph` never need.
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value: object = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value
