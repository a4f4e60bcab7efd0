"""Versioned workflow state and its immutable snapshots.

The state has three channels, each with a version that starts at 1 and goes up by exactly one
in a step that changed the channel:

- `messages`: the conversation, a tuple of `Message`;
- `extra`: a JSON object for anything else (read-only mapping, arrays as tuples);
- `errors`: a tuple of `ErrorEvent` recorded during the run.

Values are stored frozen, so `snapshot()` costs the same whatever the size of the state.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Self

from ._error_event import ErrorEvent
from ._json import FrozenDict, JSONObject, JSONValue, thaw
from ._message import Message

__all__ = ["StateSnapshot", "VersionedState", "VersionedStateBuilder"]

_EMPTY_OBJECT: JSONObject = FrozenDict()


@dataclass(frozen=True, slots=True)
class StateSnapshot:
    """What nodes and routing predicates read: the state at the start of a step, read-only."""

    messages: tuple[Message, ...]
    extra: JSONObject
    errors: tuple[ErrorEvent, ...]
    messages_version: int = 1
    extra_version: int = 1
    errors_version: int = 1

    @property
    def versions(self) -> dict[str, int]:
        """The version of each channel."""
        return {
            "messages": self.messages_version,
            "extra": self.extra_version,
            "errors": self.errors_version,
        }

    @property
    def last_message(self) -> Message | None:
        """The newest message, or None when there are none."""
        return self.messages[-1] if self.messages else None


class VersionedState:
    """The state of a run: three versioned channels.

    Build one with ``VersionedState.with_user_message("hi")``, ``VersionedState(messages=...,
    extra=...)`` or ``VersionedState.builder()``. The runtime replaces channel values at each
    step barrier; user code reads them through the properties or `snapshot()`.
    """

    __slots__ = ("_errors", "_extra", "_messages", "_versions")

    def __init__(
        self,
        *,
        messages: Iterable[Message] = (),
        extra: Mapping[str, JSONValue] | None = None,
        errors: Iterable[ErrorEvent] = (),
        versions: Mapping[str, int] | None = None,
    ) -> None:
        self._messages = tuple(messages)
        for message in self._messages:
            if not isinstance(message, Message):
                raise TypeError(f"messages must be Message objects; got {message!r}")
        self._extra = FrozenDict(extra) if extra else _EMPTY_OBJECT
        self._errors = tuple(errors)
        self._versions = {"messages": 1, "extra": 1, "errors": 1}
        if versions:
            for name, version in versions.items():
                if name not in self._versions or not isinstance(version, int) or version < 1:
                    raise ValueError(f"bad channel version {name}={version!r}")
                self._versions[name] = version

    # -- constructors -------------------------------------------------------------------------

    @classmethod
    def with_user_message(cls, text: str) -> VersionedState:
        """A state holding one user message."""
        return cls(messages=(Message.user(text),))

    @classmethod
    def builder(cls) -> VersionedStateBuilder:
        """Start building a state step by step."""
        return VersionedStateBuilder()

    # -- reading ------------------------------------------------------------------------------

    @property
    def messages(self) -> tuple[Message, ...]:
        """The messages channel."""
        return self._messages

    @property
    def extra(self) -> JSONObject:
        """The extra channel (a read-only JSON object: a `FrozenDict`)."""
        return self._extra

    @property
    def errors(self) -> tuple[ErrorEvent, ...]:
        """The errors channel."""
        return self._errors

    @property
    def versions(self) -> dict[str, int]:
        """The version of each channel."""
        return dict(self._versions)

    def snapshot(self) -> StateSnapshot:
        """An immutable view of the state as it is now."""
        v = self._versions
        return StateSnapshot(
            self._messages,
            self._extra,
            self._errors,
            v["messages"],
            v["extra"],
            v["errors"],
        )

    def copy(self) -> VersionedState:
        """An independent copy (values are immutable, so this is cheap)."""
        clone = VersionedState.__new__(VersionedState)
        clone._messages, clone._extra, clone._errors = self._messages, self._extra, self._errors
        clone._versions = dict(self._versions)
        return clone

    # -- the barrier --------------------------------------------------------------------------

    def _set(self, channel: str, value: JSONValue) -> None:
        """Replace a channel's value and bump its version (used by the step barrier only)."""
        setattr(self, "_" + channel, value)
        self._versions[channel] += 1

    # -- JSON ---------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, JSONValue]:
        """The state as a JSON object: each channel's version and value."""
        v = self._versions
        return {
            "messages": {"version": v["messages"], "value": [m.to_dict() for m in self._messages]},
            "extra": {"version": v["extra"], "value": thaw(self._extra)},
            "errors": {"version": v["errors"], "value": [e.to_dict() for e in self._errors]},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, JSONValue]) -> VersionedState:
        """Inverse of `to_dict`; raises ValueError on a malformed object."""
        try:
            return cls(
                messages=[Message.from_dict(m) for m in data["messages"]["value"]],
                extra=data["extra"]["value"],
                errors=[ErrorEvent.from_dict(e) for e in data["errors"]["value"]],
                versions={name: data[name]["version"] for name in ("messages", "extra", "errors")},
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a state object: {exc}") from exc

    def to_json(self) -> str:
        """The state as a JSON string."""
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> VersionedState:
        """Parse `to_json()` output."""
        return cls.from_dict(json.loads(text))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VersionedState):
            return NotImplemented
        return (
            self._messages == other._messages
            and self._extra == other._extra
            and self._errors == other._errors
            and self._versions == other._versions
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"VersionedState(messages={len(self._messages)}, extra={dict(self._extra)!r}, "
            f"errors={len(self._errors)}, versions={self._versions})"
        )


class VersionedStateBuilder:
    """Builds a `VersionedState` one piece at a time; every method returns the builder."""

    __slots__ = ("_errors", "_extra", "_messages")

    def __init__(self) -> None:
        self._messages: list[Message] = []
        self._extra: dict[str, JSONValue] = {}
        self._errors: list[ErrorEvent] = []

    def with_message(self, message: Message) -> Self:
        """Append a message."""
        self._messages.append(message)
        return self

    def with_user_message(self, text: str) -> Self:
        """Append a user message."""
        return self.with_message(Message.user(text))

    def with_assistant_message(self, text: str) -> Self:
        """Append an assistant message."""
        return self.with_message(Message.assistant(text))

    def with_system_message(self, text: str) -> Self:
        """Append a system message."""
        return self.with_message(Message.system(text))

    def with_extra(self, key: str, value: JSONValue) -> Self:
        """Set one key of the extra channel."""
        self._extra[key] = value
        return self

    def with_error(self, error: ErrorEvent) -> Self:
        """Append an error event."""
        self._errors.append(error)
        return self

    def build(self) -> VersionedState:
        """The state, every channel at version 1."""
        return VersionedState(messages=self._messages, extra=self._extra, errors=self._errors)
