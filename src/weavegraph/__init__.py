"""weavegraph: concurrent, stateful workflow graphs whose events stream live.

Build a graph with `GraphBuilder`, compile it into an `App`, run it with `App.invoke` (or
stream it with `App.invoke_streaming`), and watch its events through an `EventBus`.
"""

from ._app import App as App
from ._builder import GraphBuilder as GraphBuilder
from ._config import RuntimeConfig as RuntimeConfig
from ._error_event import ErrorEvent as ErrorEvent
from ._error_event import ErrorScope as ErrorScope
from ._error_event import LadderError as LadderError
from ._error_event import pretty_print_errors as pretty_print_errors
from ._errors import CheckpointError as CheckpointError
from ._errors import DeadEndError as DeadEndError
from ._errors import DuplicateEdgeError as DuplicateEdgeError
from ._errors import DuplicateNodeError as DuplicateNodeError
from ._errors import EdgeFromEndError as EdgeFromEndError
from ._errors import EventBusError as EventBusError
from ._errors import EventLogError as EventLogError
from ._errors import GraphCompileError as GraphCompileError
from ._errors import NodeExecutionError as NodeExecutionError
from ._errors import NoEntryError as NoEntryError
from ._errors import RecursionLimitError as RecursionLimitError
from ._errors import ReducerError as ReducerError
from ._errors import RoutingError as RoutingError
from ._errors import RunTimeoutError as RunTimeoutError
from ._errors import SessionError as SessionError
from ._errors import UnknownNodeError as UnknownNodeError
from ._errors import UnreachableNodeError as UnreachableNodeError
from ._errors import WeavegraphError as WeavegraphError
from ._graph import END as END
from ._graph import START as START
from ._invoke import EventReceiver as EventReceiver
from ._invoke import InvocationHandle as InvocationHandle
from ._json import FrozenDict as FrozenDict
from ._json import FrozenList as FrozenList
from ._json import JSONValue as JSONValue
from ._json import thaw as thaw
from ._message import Message as Message
from ._message import Role as Role
from ._node import Goto as Goto
from ._node import NodeContext as NodeContext
from ._node import NodePartial as NodePartial
from ._node import RetryPolicy as RetryPolicy
from ._reducers import ReducerRegistry as ReducerRegistry
from ._reducers import add_errors as add_errors
from ._reducers import add_messages as add_messages
from ._reducers import map_merge as map_merge
from ._reducers import sum_keys as sum_keys
from ._runner import AppRunner as AppRunner
from ._runner import StepReport as StepReport
from ._state import StateSnapshot as StateSnapshot
from ._state import VersionedState as VersionedState
from .checkpoint import Checkpoint as Checkpoint
from .checkpoint import Checkpointer as Checkpointer
from .checkpoint import InMemoryCheckpointer as InMemoryCheckpointer
from .events import DIAGNOSTIC_SCOPE as DIAGNOSTIC_SCOPE
from .events import GAP_SCOPE as GAP_SCOPE
from .events import INVOCATION_END_SCOPE as INVOCATION_END_SCOPE
from .events import LLM_CHUNK_SCOPE as LLM_CHUNK_SCOPE
from .events import LLM_ERROR_SCOPE as LLM_ERROR_SCOPE
from .events import LLM_FINAL_SCOPE as LLM_FINAL_SCOPE
from .events import STREAM_END_SCOPE as STREAM_END_SCOPE
from .events import BusMetrics as BusMetrics
from .events import ChannelSink as ChannelSink
from .events import DiagnosticsConfig as DiagnosticsConfig
from .events import DiagnosticsStream as DiagnosticsStream
from .events import Event as Event
from .events import EventBus as EventBus
from .events import EventBusConfig as EventBusConfig
from .events import EventSink as EventSink
from .events import EventStream as EventStream
from .events import JsonLinesSink as JsonLinesSink
from .events import LoggingSink as LoggingSink
from .events import MemorySink as MemorySink
from .events import SinkDiagnostic as SinkDiagnostic
from .events import SinkHealth as SinkHealth
from .events import StdOutSink as StdOutSink
from .events import StreamClosedError as StreamClosedError

__version__ = "0.1.0"

__all__ = [
    "DIAGNOSTIC_SCOPE",
    "END",
    "GAP_SCOPE",
    "INVOCATION_END_SCOPE",
    "LLM_CHUNK_SCOPE",
    "LLM_ERROR_SCOPE",
    "LLM_FINAL_SCOPE",
    "START",
    "STREAM_END_SCOPE",
    "App",
    "AppRunner",
    "BusMetrics",
    "ChannelSink",
    "Checkpoint",
    "CheckpointError",
    "Checkpointer",
    "DeadEndError",
    "DiagnosticsConfig",
    "DiagnosticsStream",
    "DuplicateEdgeError",
    "DuplicateNodeError",
    "EdgeFromEndError",
    "ErrorEvent",
    "ErrorScope",
    "Event",
    "EventBus",
    "EventBusConfig",
    "EventBusError",
    "EventLogError",
    "EventReceiver",
    "EventSink",
    "EventStream",
    "FrozenDict",
    "FrozenList",
    "Goto",
    "GraphBuilder",
    "GraphCompileError",
    "InMemoryCheckpointer",
    "InvocationHandle",
    "JSONValue",
    "JsonLinesSink",
    "LadderError",
    "LoggingSink",
    "MemorySink",
    "Message",
    "NoEntryError",
    "NodeContext",
    "NodeExecutionError",
    "NodePartial",
    "RecursionLimitError",
    "ReducerError",
    "ReducerRegistry",
    "RetryPolicy",
    "Role",
    "RoutingError",
    "RunTimeoutError",
    "RuntimeConfig",
    "SessionError",
    "SinkDiagnostic",
    "SinkHealth",
    "StateSnapshot",
    "StdOutSink",
    "StepReport",
    "StreamClosedError",
    "UnknownNodeError",
    "UnreachableNodeError",
    "VersionedState",
    "WeavegraphError",
    "add_errors",
    "add_messages",
    "map_merge",
    "pretty_print_errors",
    "sum_keys",
    "thaw",
]
