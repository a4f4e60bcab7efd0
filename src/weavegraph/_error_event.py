"""Errors recorded in state: the values of the `errors` channel, and their pretty printer."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from ._json import JSONValue, freeze, thaw
from ._time import format_timestamp, parse_timestamp, utc_now

__all__ = ["ErrorEvent", "ErrorScope", "LadderError", "pretty_print_errors"]

ScopeKind = Literal["node", "scheduler", "runner", "app"]
_SCOPE_KINDS = ("node", "scheduler", "runner", "app")


@dataclass(frozen=True, slots=True)
class ErrorScope:
    """Where an error happened: in a node, the scheduler, the runner, or the app."""

    kind: ScopeKind
    node: str | None = None
    step: int | None = None
    session: str | None = None

    @classmethod
    def in_node(cls, node: str, step: int) -> ErrorScope:
        """An error raised by `node` during superstep `step`."""
        return cls("node", node=node, step=step)

    @classmethod
    def in_scheduler(cls, step: int) -> ErrorScope:
        """An error of the scheduler (routing, joins) during superstep `step`."""
        return cls("scheduler", step=step)

    @classmethod
    def in_runner(cls, session: str, step: int) -> ErrorScope:
        """An error of the runner of `session` (checkpointing, timeouts) at `step`."""
        return cls("runner", session=session, step=step)

    @classmethod
    def in_app(cls) -> ErrorScope:
        """An error of the application outside any run."""
        return cls("app")

    def to_dict(self) -> dict[str, JSONValue]:
        """The scope as a JSON object; absent fields are left out."""
        out: dict[str, JSONValue] = {"kind": self.kind}
        for name in ("node", "step", "session"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, JSONValue]) -> ErrorScope:
        """Inverse of `to_dict`."""
        kind = data.get("kind")
        if kind not in _SCOPE_KINDS:
            raise ValueError(
                f"error scope kind must be one of {', '.join(_SCOPE_KINDS)}; got {kind!r}"
            )
        return cls(kind, node=data.get("node"), step=data.get("step"), session=data.get("session"))

    def __str__(self) -> str:
        parts = [f"{name}={value}" for name, value in self.to_dict().items() if name != "kind"]
        return f"{self.kind}({', '.join(parts)})" if parts else self.kind


@dataclass(frozen=True, slots=True)
class LadderError:
    """An error message with an optional chain of causes and JSON details."""

    message: str
    cause: LadderError | None = None
    details: JSONValue = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "details", freeze(self.details))

    @classmethod
    def from_exception(cls, exc: BaseException) -> LadderError:
        """Describe an exception and its `__cause__`/`__context__` chain."""
        seen: set[int] = set()

        def build(err: BaseException | None) -> LadderError | None:
            if err is None or id(err) in seen:
                return None
            seen.add(id(err))
            text = str(err)
            message = f"{type(err).__name__}: {text}" if text else type(err).__name__
            nxt = err.__cause__
            if nxt is None and not err.__suppress_context__:
                nxt = err.__context__
            return cls(message, cause=build(nxt))

        ladder = build(exc)
        assert ladder is not None
        return ladder

    def chain(self) -> list[LadderError]:
        """This error followed by its causes, outermost first."""
        out: list[LadderError] = []
        current: LadderError | None = self
        while current is not None:
            out.append(current)
            current = current.cause
        return out

    def to_dict(self) -> dict[str, JSONValue]:
        """The error as a JSON object."""
        out: dict[str, JSONValue] = {"message": self.message}
        if self.cause is not None:
            out["cause"] = self.cause.to_dict()
        if self.details is not None:
            out["details"] = thaw(self.details)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, JSONValue]) -> LadderError:
        """Inverse of `to_dict`."""
        cause = data.get("cause")
        return cls(
            str(data["message"]),
            cause=cls.from_dict(cause) if cause is not None else None,
            details=data.get("details"),
        )


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    """An error recorded in the `errors` channel of the state.

    Args:
        error: what went wrong (message, causes, details).
        scope: where it happened.
        when: when it happened (UTC); defaults to now.
        tags: free-form labels, e.g. ``("timeout",)``.
        context: any JSON value that helps to understand the error.
    """

    error: LadderError
    scope: ErrorScope = field(default_factory=ErrorScope.in_app)
    when: datetime = field(default_factory=utc_now)
    tags: tuple[str, ...] = ()
    context: JSONValue = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "tags", tuple(self.tags))
        object.__setattr__(self, "context", freeze(self.context))

    @classmethod
    def from_exception(
        cls,
        exc: BaseException,
        scope: ErrorScope,
        *,
        tags: Iterable[str] = (),
        context: JSONValue = None,
    ) -> ErrorEvent:
        """Record an exception (with its cause chain) that happened in `scope`."""
        return cls(LadderError.from_exception(exc), scope, tags=tuple(tags), context=context)

    def to_dict(self) -> dict[str, JSONValue]:
        """The error event as a JSON object."""
        return {
            "when": format_timestamp(self.when),
            "scope": self.scope.to_dict(),
            "error": self.error.to_dict(),
            "tags": list(self.tags),
            "context": thaw(self.context),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, JSONValue]) -> ErrorEvent:
        """Inverse of `to_dict`; raises ValueError on a malformed object."""
        try:
            return cls(
                LadderError.from_dict(data["error"]),
                ErrorScope.from_dict(data["scope"]),
                when=parse_timestamp(data["when"]),
                tags=tuple(data.get("tags", ())),
                context=data.get("context"),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not an error event object: {data!r}") from exc

    def to_json(self) -> str:
        """The error event as a JSON string."""
        return json.dumps(self.to_dict(), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> ErrorEvent:
        """Parse `to_json()` output."""
        return cls.from_dict(json.loads(text))


def pretty_print_errors(errors: Sequence[ErrorEvent]) -> str:
    """Render error events as indented text, one block per event, causes beneath."""
    if not errors:
        return "no errors"
    blocks = []
    for index, event in enumerate(errors, 1):
        lines = [f"{index}. [{format_timestamp(event.when)}] {event.scope}: {event.error.message}"]
        lines.extend(f"     caused by: {cause.message}" for cause in event.error.chain()[1:])
        if event.error.details is not None:
            lines.append(f"     details: {json.dumps(thaw(event.error.details), sort_keys=True)}")
        if event.tags:
            lines.append(f"     tags: {', '.join(event.tags)}")
        if event.context is not None:
            lines.append(f"     context: {json.dumps(thaw(event.context), sort_keys=True)}")
        blocks.append("\n".join(lines))
    return "\n".join(blocks)
