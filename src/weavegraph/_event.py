"""The `Event` record and its one JSON wire shape.

Wire shape (JSON Lines, SSE ``data:``, logs)::

    {"id": 7, "type": "node", "scope": "greeting", "message": "Saying hi!",
     "timestamp": "2026-01-02T03:04:05.000006Z",
     "metadata": {"session_id": "s1", "node_id": "greet", "step": 1, ...user keys...}}

The structural fields (`session_id`, `node_id`, `step`, `stream_id`, `is_final`) travel inside
`metadata` under reserved keys; user metadata may not use those keys.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from ._json import JSONValue
from ._time import format_timestamp, parse_timestamp

__all__ = [
    "DIAGNOSTIC_SCOPE",
    "GAP_SCOPE",
    "INVOCATION_END_SCOPE",
    "LLM_CHUNK_SCOPE",
    "LLM_ERROR_SCOPE",
    "LLM_FINAL_SCOPE",
    "RESERVED_METADATA_KEYS",
    "STREAM_END_SCOPE",
    "Event",
    "EventKind",
]

EventKind = Literal["node", "diagnostic", "llm"]

STREAM_END_SCOPE = "__weavegraph_stream_end__"
"""Scope of the last event of a run: its message says ``session=… status=… step=N``."""
INVOCATION_END_SCOPE = "__weavegraph_invocation_end__"
"""Scope of the event that ends one invocation of an iterative session (the stream stays open)."""
DIAGNOSTIC_SCOPE = "__weavegraph_diagnostic__"
"""Scope of diagnostics the framework emits about itself (sink failures fed back as events)."""
GAP_SCOPE = "__weavegraph_gap__"
"""Scope of the diagnostic telling a subscriber which event ids it missed."""
LLM_CHUNK_SCOPE = "chunk"
LLM_FINAL_SCOPE = "final"
LLM_ERROR_SCOPE = "error"

RESERVED_METADATA_KEYS = frozenset({"session_id", "node_id", "step", "stream_id", "is_final"})
_KINDS = ("node", "diagnostic", "llm")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_EMPTY: dict[str, Any] = {}
_new = object.__new__
_time_ns = time.time_ns


class Event:
    """One event of a run: a node's message, a diagnostic, or an LLM stream chunk.

    `id` is 0 until a bus publishes the event, then 1, 2, 3 … per bus. The timestamp is taken
    when the event is created (its emission), in microseconds since the epoch (`ts_us`); the
    `timestamp` property gives it as an aware UTC datetime. Treat events as read-only: every
    subscriber receives the same object.
    """

    __slots__ = (
        "_ts_ns",
        "id",
        "is_final",
        "kind",
        "message",
        "metadata",
        "node_id",
        "scope",
        "session_id",
        "step",
        "stream_id",
    )

    def __init__(
        self,
        kind: EventKind,
        scope: str,
        message: str,
        metadata: Mapping[str, JSONValue] | None = None,
        *,
        session_id: str | None = None,
        node_id: str | None = None,
        step: int | None = None,
        stream_id: str | None = None,
        is_final: bool = False,
        ts_us: int | None = None,
        id: int = 0,
    ) -> None:
        self.kind: EventKind = kind
        self.scope = scope
        self.message = message
        self.metadata: Mapping[str, JSONValue] = metadata if metadata is not None else _EMPTY
        self.session_id = session_id
        self.node_id = node_id
        self.step = step
        self.stream_id = stream_id
        self.is_final = is_final
        # Kept in nanoseconds as the clock gives them: the division waits until someone reads it.
        self._ts_ns = _time_ns() if ts_us is None else ts_us * 1000
        self.id = id

    # -- constructors -------------------------------------------------------------------------

    @classmethod
    def node(
        cls,
        scope: str,
        message: str,
        *,
        node_id: str | None = None,
        step: int | None = None,
        session_id: str | None = None,
        metadata: Mapping[str, JSONValue] | None = None,
    ) -> Event:
        """An event emitted by (or on behalf of) a node."""
        return cls(
            "node", scope, message, metadata, session_id=session_id, node_id=node_id, step=step
        )

    @classmethod
    def diagnostic(
        cls,
        scope: str,
        message: str,
        *,
        session_id: str | None = None,
        metadata: Mapping[str, JSONValue] | None = None,
    ) -> Event:
        """A diagnostic: something the framework (or a node) says about the run itself."""
        return cls("diagnostic", scope, message, metadata, session_id=session_id)

    @classmethod
    def llm(
        cls,
        chunk: str,
        *,
        stream_id: str | None = None,
        is_final: bool = False,
        scope: str | None = None,
        node_id: str | None = None,
        step: int | None = None,
        session_id: str | None = None,
        metadata: Mapping[str, JSONValue] | None = None,
    ) -> Event:
        """A piece of streamed model output; `chunk` is the text, carried as the message."""
        if scope is None:
            scope = LLM_FINAL_SCOPE if is_final else LLM_CHUNK_SCOPE
        return cls(
            "llm",
            scope,
            chunk,
            metadata,
            session_id=session_id,
            node_id=node_id,
            step=step,
            stream_id=stream_id,
            is_final=is_final,
        )

    @classmethod
    def _fast(
        cls,
        kind: EventKind,
        scope: str,
        message: str,
        metadata: Mapping[str, JSONValue],
        session_id: str | None,
        node_id: str | None,
        step: int | None,
    ) -> Event:
        """`Event(...)` without the keyword plumbing, for the runtime's events (no LLM fields)."""
        event: Event = _new(cls)
        event.kind = kind
        event.scope = scope
        event.message = message
        event.metadata = metadata
        event.session_id = session_id
        event.node_id = node_id
        event.step = step
        event.stream_id = None
        event.is_final = False
        event._ts_ns = _time_ns()
        event.id = 0
        return event

    # -- views --------------------------------------------------------------------------------

    @property
    def ts_us(self) -> int:
        """When the event was emitted, in microseconds since the epoch."""
        return self._ts_ns // 1000

    @ts_us.setter
    def ts_us(self, value: int) -> None:
        self._ts_ns = value * 1000

    @property
    def timestamp(self) -> datetime:
        """When the event was emitted, as an aware UTC datetime."""
        return _EPOCH + timedelta(microseconds=self.ts_us)

    @property
    def chunk(self) -> str:
        """The text of an LLM event (the same as `message`)."""
        return self.message

    def is_stream_end(self) -> bool:
        """True for the diagnostic that ends a run's stream."""
        return self.scope == STREAM_END_SCOPE and self.kind == "diagnostic"

    # -- JSON ---------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, JSONValue]:
        """The event in its wire shape, as a JSON object."""
        meta: dict[str, JSONValue] = {}
        if self.session_id is not None:
            meta["session_id"] = self.session_id
        if self.node_id is not None:
            meta["node_id"] = self.node_id
        if self.step is not None:
            meta["step"] = self.step
        if self.kind == "llm":
            if self.stream_id is not None:
                meta["stream_id"] = self.stream_id
            meta["is_final"] = self.is_final
        if self.metadata:
            meta.update(self.metadata)
        return {
            "id": self.id,
            "type": self.kind,
            "scope": self.scope,
            "message": self.message,
            "timestamp": format_timestamp(self.timestamp),
            "metadata": meta,
        }

    def to_json(self) -> str:
        """The event as one line of JSON (no newline)."""
        return json.dumps(self.to_dict(), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Mapping[str, JSONValue]) -> Event:
        """Inverse of `to_dict`; raises ValueError on anything that is not the wire shape."""
        try:
            kind = data["type"]
            if kind not in _KINDS:
                raise ValueError(f"event type must be one of {', '.join(_KINDS)}; got {kind!r}")
            meta = dict(data.get("metadata") or {})
            when = parse_timestamp(data["timestamp"])
            return cls(
                kind,
                str(data["scope"]),
                str(data["message"]),
                session_id=meta.pop("session_id", None),
                node_id=meta.pop("node_id", None),
                step=meta.pop("step", None),
                stream_id=meta.pop("stream_id", None),
                is_final=bool(meta.pop("is_final", False)),
                metadata=meta,
                ts_us=(when - _EPOCH) // _MICROSECOND,
                id=int(data.get("id", 0)),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not an event object: {data!r}") from exc

    @classmethod
    def from_json(cls, text: str | bytes) -> Event:
        """Parse one line produced by `to_json`."""
        return cls.from_dict(json.loads(text))

    # -- dunder -------------------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Event):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in _FIELDS)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        where = f" node={self.node_id!r}" if self.node_id is not None else ""
        return (
            f"Event(id={self.id}, kind={self.kind!r}, scope={self.scope!r}{where}, "
            f"message={self.message!r})"
        )

    def __str__(self) -> str:
        if self.kind == "node" and self.node_id is not None:
            where = f"{self.node_id}@{self.step}" if self.step is not None else self.node_id
            return f"[{where}] {self.message}"
        if self.kind == "llm":
            label = self.stream_id or self.node_id
            return f"[LLM {label}] {self.message}" if label else self.message
        return self.message


# What `==` compares: every field, the timestamp at the microseconds of the wire shape.
_FIELDS = (*(name for name in Event.__slots__ if name != "_ts_ns"), "ts_us")
