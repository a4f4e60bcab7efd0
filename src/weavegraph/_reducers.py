"""Reducers: how a node's update is folded into a channel's value at the step barrier.

A reducer is a function ``(current, update) -> new`` over frozen values. It returns `current`
itself when the update changes nothing, which is how the barrier knows not to bump the
channel's version. Several reducers may be registered for one channel; they are applied in
registration order, each to the output of the one before.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Literal, Protocol, Self, TypeAlias

from ._error_event import ErrorEvent
from ._json import FrozenDict, JSONObject, JSONValue, freeze
from ._message import Message

if TYPE_CHECKING:
    from ._node import NodePartial
    from ._state import VersionedState

__all__ = [
    "CHANNELS",
    "Channel",
    "Reducer",
    "ReducerRegistry",
    "add_errors",
    "add_messages",
    "apply_updates",
    "map_merge",
    "sum_keys",
]

Channel: TypeAlias = Literal["messages", "extra", "errors"]
CHANNELS: tuple[Channel, ...] = ("messages", "extra", "errors")


class Reducer(Protocol):
    """Folds one update into a channel value; returns `current` itself when nothing changed."""

    def __call__(self, current: JSONValue, update: JSONValue, /) -> JSONValue: ...


def add_messages(current: tuple[Message, ...], update: Iterable[Message]) -> tuple[Message, ...]:
    """Append messages in order."""
    added = tuple(update)
    return current + added if added else current


def add_errors(
    current: tuple[ErrorEvent, ...], update: Iterable[ErrorEvent]
) -> tuple[ErrorEvent, ...]:
    """Append error events in order."""
    added = tuple(update)
    return current + added if added else current


_MISSING = object()


def map_merge(
    current: Mapping[str, JSONValue], update: Mapping[str, JSONValue]
) -> Mapping[str, JSONValue]:
    """Shallow-merge `update` into `current`; a `None` value deletes the key."""
    merged: dict[str, JSONValue] | None = None
    for key, value in update.items():
        old = current.get(key, _MISSING)
        if value is None:
            if old is _MISSING:
                continue
            if merged is None:
                merged = dict(current)
            del merged[key]
        elif old is _MISSING or old != value:
            if merged is None:
                merged = dict(current)
            merged[key] = freeze(value)
    return current if merged is None else _frozen_dict(merged)


def sum_keys(*keys: str) -> Callable[[JSONObject, JSONObject], JSONObject]:
    """An `extra` reducer that adds the numbers written to `keys` instead of replacing them.

    Use it in place of `map_merge`: ``registry.replace("extra", sum_keys("count"))``. Other
    keys are merged as `map_merge` merges them, and None deletes a summed key too.
    """
    summed = frozenset(keys)

    def reduce(current: JSONObject, update: JSONObject) -> JSONObject:
        plain = {k: v for k, v in update.items() if k not in summed or v is None}
        result = map_merge(current, plain) if plain else current
        added = {k: v for k, v in update.items() if k in summed and v is not None and v != 0}
        if not added:
            return result
        out = dict(result)
        for key, value in added.items():
            out[key] = out.get(key, 0) + value
        return _frozen_dict(out)

    reduce.__name__ = f"sum_keys({', '.join(keys)})"
    return reduce


class ReducerRegistry:
    """The reducers of each channel, applied in registration order.

    A new registry holds the defaults: `add_messages`, `map_merge` and `add_errors`.
    """

    __slots__ = ("_reducers",)

    def __init__(self) -> None:
        self._reducers: dict[Channel, tuple[Reducer, ...]] = {
            "messages": (add_messages,),
            "extra": (map_merge,),
            "errors": (add_errors,),
        }

    def register(self, channel: Channel, reducer: Reducer) -> Self:
        """Add `reducer` after the channel's current reducers."""
        self._reducers[_check(channel)] += (reducer,)
        return self

    def replace(self, channel: Channel, *reducers: Reducer) -> Self:
        """Use exactly `reducers` (in this order) for the channel."""
        if not reducers:
            raise ValueError(f"channel {channel!r} needs at least one reducer")
        self._reducers[_check(channel)] = reducers
        return self

    def copy(self) -> ReducerRegistry:
        """An independent registry with the same reducers."""
        clone = ReducerRegistry()
        clone._reducers = dict(self._reducers)
        return clone

    def reducers(self, channel: Channel) -> tuple[Reducer, ...]:
        """The reducers of `channel`, in the order they are applied."""
        return self._reducers[_check(channel)]

    def reduce(self, channel: Channel, current: JSONValue, update: JSONValue) -> JSONValue:
        """Fold one update into `current` through every reducer of the channel."""
        value = current
        for reducer in self._reducers[channel]:
            value = reducer(value, update)
        if value is not current:
            if channel == "extra":
                value = freeze(value)
            elif not isinstance(value, tuple):
                value = tuple(value)
        return value


def apply_updates(
    state: VersionedState, updates: Sequence[NodePartial | None], registry: ReducerRegistry
) -> tuple[Channel, ...]:
    """Fold the updates of one step into `state`, in order; return the channels that changed.

    Each changed channel's version goes up by exactly one, however many updates touched it.
    """
    changed: list[Channel] = []
    values: list[JSONValue] = []
    for channel in CHANNELS:
        current = getattr(state, channel)
        value = current
        folds = 0
        for update in updates:
            if update is not None:
                part = getattr(update, channel)
                if part:
                    value = registry.reduce(channel, value, part)
                    folds += 1
        # One fold returns `current` itself when nothing changed; several may cancel out
        # (set then delete a key), which only a comparison can tell.
        if value is not current and (folds == 1 or value != current):
            changed.append(channel)
            values.append(value)
    # Only now that every reducer succeeded: a failing one leaves the state untouched.
    for channel, value in zip(changed, values, strict=True):
        state._set(channel, value)
    return tuple(changed)


def _frozen_dict(items: dict[str, JSONValue]) -> FrozenDict:
    """Wrap a dict whose values are frozen already, without freezing them again."""
    out = FrozenDict.__new__(FrozenDict)
    dict.update(out, items)
    return out


def _check(channel: str) -> Channel:
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}; channels are: {', '.join(CHANNELS)}")
    return channel
