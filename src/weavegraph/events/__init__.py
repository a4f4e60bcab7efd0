"""Events and their streaming: the Event record, the bus, streams, sinks and diagnostics.

    bus = EventBus([StdOutSink()])
    async with bus:                                  # start() ... stop(): sinks drained at stop
        stream = bus.subscribe(session_id="s1")     # subscribe before publishing: nothing missed
        bus.publish(Event.node("greeting", "hi", session_id="s1"))
        bus.publish(Event.diagnostic(STREAM_END_SCOPE, "status=completed", session_id="s1"))
        async for event in stream:                   # ends after s1's STREAM_END
            print(event.id, event.message)

What the bus promises:

- `publish` gives ids 1, 2, 3 … in publish order, never blocks, and is safe from any thread;
  every reader sees events in id order. `publish_async` also waits while a lossless reader is
  `capacity` events behind (backpressure). Publishing after `stop()` raises EventBusError.
- One ring of `capacity` events serves every reader. A plain stream or sink that falls further
  behind skips ahead and then receives a GAP_SCOPE diagnostic (id 0, local to that reader) with
  `first_missed_id`, `last_missed_id` and `missed`; the warning "event stream lagged; dropped
  events" goes to the `weavegraph.event_bus` logger. Lossless readers never skip.
- Streams end after the STREAM_END diagnostic of their run (`until_stream_end=True`, the
  default) or when the bus stops. Each sink runs in its own worker; a failing or slow sink never
  holds up the others or the run, its failures go to `diagnostics()` and `sink_health()`.
"""

from .._bus import BusMetrics as BusMetrics
from .._bus import DiagnosticsConfig as DiagnosticsConfig
from .._bus import EventBus as EventBus
from .._bus import EventBusConfig as EventBusConfig
from .._bus import SinkDiagnostic as SinkDiagnostic
from .._bus import SinkHealth as SinkHealth
from .._event import DIAGNOSTIC_SCOPE as DIAGNOSTIC_SCOPE
from .._event import GAP_SCOPE as GAP_SCOPE
from .._event import INVOCATION_END_SCOPE as INVOCATION_END_SCOPE
from .._event import LLM_CHUNK_SCOPE as LLM_CHUNK_SCOPE
from .._event import LLM_ERROR_SCOPE as LLM_ERROR_SCOPE
from .._event import LLM_FINAL_SCOPE as LLM_FINAL_SCOPE
from .._event import RESERVED_METADATA_KEYS as RESERVED_METADATA_KEYS
from .._event import STREAM_END_SCOPE as STREAM_END_SCOPE
from .._event import Event as Event
from .._event import EventKind as EventKind
from .._sinks import ChannelSink as ChannelSink
from .._sinks import EventSink as EventSink
from .._sinks import JsonLinesSink as JsonLinesSink
from .._sinks import LoggingSink as LoggingSink
from .._sinks import MemorySink as MemorySink
from .._sinks import StdOutSink as StdOutSink
from .._sinks import render_event as render_event
from .._stream import DiagnosticsStream as DiagnosticsStream
from .._stream import EventStream as EventStream
from .._stream import StreamClosedError as StreamClosedError

__all__ = [
    "DIAGNOSTIC_SCOPE",
    "GAP_SCOPE",
    "INVOCATION_END_SCOPE",
    "LLM_CHUNK_SCOPE",
    "LLM_ERROR_SCOPE",
    "LLM_FINAL_SCOPE",
    "RESERVED_METADATA_KEYS",
    "STREAM_END_SCOPE",
    "BusMetrics",
    "ChannelSink",
    "DiagnosticsConfig",
    "DiagnosticsStream",
    "Event",
    "EventBus",
    "EventBusConfig",
    "EventKind",
    "EventSink",
    "EventStream",
    "JsonLinesSink",
    "LoggingSink",
    "MemorySink",
    "SinkDiagnostic",
    "SinkHealth",
    "StdOutSink",
    "StreamClosedError",
    "render_event",
]
