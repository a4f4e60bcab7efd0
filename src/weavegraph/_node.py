"""Nodes: what they get (`StateSnapshot`, `NodeContext`) and what they return (`NodePartial`)."""

from __future__ import annotations

import inspect
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, TypeAlias

from ._error_event import ErrorEvent
from ._event import (
    _EMPTY,
    LLM_ERROR_SCOPE,
    LLM_FINAL_SCOPE,
    RESERVED_METADATA_KEYS,
    Event,
    EventKind,
)
from ._json import JSONValue
from ._message import Message
from ._state import StateSnapshot

_new = object.__new__
_time_ns = time.time_ns

__all__ = [
    "Goto",
    "Node",
    "NodeContext",
    "NodeFunction",
    "NodePartial",
    "Publisher",
    "RetryPolicy",
]


@dataclass(frozen=True, slots=True)
class Goto:
    """A node's own choice of where the run goes next.

    `Goto.replace(...)` replaces the node's edges for this step; `Goto.append(...)` adds
    targets to them. A plain string or list given as `NodePartial.goto` means replace.
    """

    targets: tuple[str, ...]
    mode: Literal["replace", "append"] = "replace"

    @classmethod
    def replace(cls, *targets: str) -> Goto:
        """Go to exactly `targets` (END stops this branch) instead of following the edges."""
        return cls(targets, "replace")

    @classmethod
    def append(cls, *targets: str) -> Goto:
        """Go to `targets` as well as where the edges lead."""
        return cls(targets, "append")


@dataclass(slots=True)
class NodePartial:
    """What a node returns: updates for each channel, and optionally where to go next.

    Args:
        messages: messages to append.
        extra: keys to merge into the extra channel (a None value deletes the key).
        errors: error events to record.
        goto: a node name, a list of names, or a `Goto`; plain names replace the node's edges.
    """

    messages: Sequence[Message] | None = None
    extra: Mapping[str, JSONValue] | None = None
    errors: Sequence[ErrorEvent] | None = None
    goto: str | Sequence[str] | Goto | None = None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often a failing node is tried and how long to wait in between.

    The wait before attempt n+1 is ``min(backoff * multiplier ** (n - 1), max_backoff)``.

    Args:
        max_attempts: attempts in total, the first included (1 means no retry).
        backoff: seconds to wait after the first failure.
        multiplier: growth of the wait after each further failure.
        max_backoff: the longest wait.
        retry_on: exception types worth another attempt; others fail at once.
    """

    max_attempts: int = 3
    backoff: float = 0.0
    multiplier: float = 2.0
    max_backoff: float = 30.0
    retry_on: tuple[type[BaseException], ...] = field(default=(Exception,))

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1; got {self.max_attempts}")
        if self.backoff < 0 or self.multiplier < 1 or self.max_backoff < 0:
            raise ValueError("backoff and max_backoff must be >= 0 and multiplier >= 1")

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        return float(min(self.backoff * self.multiplier ** (attempt - 1), self.max_backoff))


class Publisher(Protocol):
    """Where a node context sends events (an `EventBus`)."""

    def publish(self, event: Event) -> Event: ...

    async def publish_async(self, event: Event) -> Event: ...


class NodeContext:
    """Given to each node execution: who and where it is, and how to emit events.

    Attributes:
        node: the node's name.
        step: the superstep number (1-based).
        session_id: the run's session.
        attempt: 1 on the first try, 2 on the first retry, …
    """

    __slots__ = ("_bus", "_publish", "attempt", "node", "session_id", "step")

    def __init__(
        self, node: str, step: int, session_id: str, bus: Publisher, attempt: int = 1
    ) -> None:
        self.node = node
        self.step = step
        self.session_id = session_id
        self.attempt = attempt
        self._bus = bus
        self._publish = bus.publish

    def emit(self, scope: str, message: str, **metadata: JSONValue) -> Event:
        """Publish a node event now (never blocks); returns it with its id."""
        if metadata and not RESERVED_METADATA_KEYS.isdisjoint(metadata):
            _reject_reserved(metadata)
        # The hottest path of a streaming run: `Event._fast` inlined, one call per event
        # (the publish) instead of four. Keep the slot stores in step with `Event._fast`.
        event: Event = _new(Event)
        event.kind = "node"
        event.scope = scope
        event.message = message
        # The shared empty mapping: `**metadata` is then freed at once, and an event costs
        # one tracked allocation instead of two (fewer garbage collector passes).
        event.metadata = metadata or _EMPTY
        event.session_id = self.session_id
        event.node_id = self.node
        event.step = self.step
        event.stream_id = None
        event.is_final = False
        event._ts_ns = _time_ns()
        event.id = 0
        return self._publish(event)

    async def emit_async(self, scope: str, message: str, **metadata: JSONValue) -> Event:
        """Publish a node event, waiting while a lossless reader is a full buffer behind."""
        return await self._bus.publish_async(self._event("node", scope, message, metadata))

    def emit_diagnostic(self, scope: str, message: str, **metadata: JSONValue) -> Event:
        """Publish a diagnostic about this node's work."""
        return self._bus.publish(self._event("diagnostic", scope, message, metadata))

    def _event(
        self, kind: EventKind, scope: str, message: str, metadata: dict[str, JSONValue]
    ) -> Event:
        if metadata and not RESERVED_METADATA_KEYS.isdisjoint(metadata):
            _reject_reserved(metadata)
        return Event._fast(
            kind, scope, message, metadata or _EMPTY, self.session_id, self.node, self.step
        )

    def emit_llm_chunk(
        self, chunk: str, *, stream_id: str | None = None, **metadata: JSONValue
    ) -> Event:
        """Publish one piece of streamed model output."""
        return self._llm(chunk, stream_id, False, None, metadata)

    def emit_llm_final(
        self, text: str = "", *, stream_id: str | None = None, **metadata: JSONValue
    ) -> Event:
        """Publish the end of a model output stream (it does not end the run's event stream)."""
        return self._llm(text, stream_id, True, LLM_FINAL_SCOPE, metadata)

    def emit_llm_error(
        self, message: str, *, stream_id: str | None = None, **metadata: JSONValue
    ) -> Event:
        """Publish that a model output stream failed."""
        return self._llm(
            message, stream_id, True, LLM_ERROR_SCOPE, {"severity": "error", **metadata}
        )

    def _llm(
        self,
        text: str,
        stream_id: str | None,
        is_final: bool,
        scope: str | None,
        metadata: Mapping[str, JSONValue],
    ) -> Event:
        if metadata and not RESERVED_METADATA_KEYS.isdisjoint(metadata):
            _reject_reserved(metadata)
        return self._bus.publish(
            Event.llm(
                text,
                stream_id=stream_id if stream_id is not None else f"{self.node}@{self.step}",
                is_final=is_final,
                scope=scope,
                node_id=self.node,
                step=self.step,
                session_id=self.session_id,
                metadata=metadata or None,
            )
        )

    def __repr__(self) -> str:
        return f"NodeContext(node={self.node!r}, step={self.step}, session_id={self.session_id!r})"


def _reject_reserved(metadata: Mapping[str, JSONValue]) -> None:
    clash = sorted(RESERVED_METADATA_KEYS.intersection(metadata))
    raise ValueError(
        f"event metadata may not use the reserved keys {', '.join(clash)}; "
        "the runtime fills them in (rename your keys)"
    )


NodeResult: TypeAlias = NodePartial | None
NodeFunction: TypeAlias = Callable[[StateSnapshot, NodeContext], Awaitable[NodeResult] | NodeResult]


class Node(Protocol):
    """An object that can serve as a node: its `run` is async or plain."""

    def run(self, snapshot: StateSnapshot, ctx: NodeContext, /) -> object: ...


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """A registered node: its callable, whether it is a coroutine function, and its policies."""

    name: str
    fn: Callable[[StateSnapshot, NodeContext], object]
    is_async: bool
    retry: RetryPolicy | None = None
    timeout: float | None = None
    destinations: tuple[str, ...] = ()


def node_spec(
    name: str,
    node: NodeFunction | Node,
    retry: RetryPolicy | None,
    timeout: float | None,
    destinations: tuple[str, ...] = (),
) -> NodeSpec:
    """Check that `node` is usable as a node and describe how to call it."""
    run = getattr(node, "run", None)
    fn = run if run is not None and not inspect.isfunction(node) else node
    if not callable(fn):
        raise TypeError(
            f"node {name!r} must be an async function, a function, or an object with a run method; "
            f"got {type(node).__name__}"
        )
    if timeout is not None and timeout <= 0:
        raise ValueError(f"timeout of node {name!r} must be positive; got {timeout}")
    is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - async __call__ on callable objects
    )
    return NodeSpec(name, fn, is_async, retry, timeout, destinations)
