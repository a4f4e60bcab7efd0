"""JSON value types, and freezing of the JSON values held in shared state.

State that several nodes read at once must not be mutable through any of them, so values are
frozen when they enter state: objects become `FrozenDict` and arrays `FrozenList`. Both are
subclasses of `dict` and `list` that refuse mutation, so they still compare equal to plain
dicts and lists and serialise with `json` as they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NoReturn, TypeAlias

__all__ = ["FrozenDict", "FrozenList", "JSONObject", "JSONValue", "freeze", "thaw"]

JSONValue: TypeAlias = Any
"""A JSON value: None, bool, int, float, str, a list of values or a str-keyed mapping of values."""

JSONObject: TypeAlias = Mapping[str, Any]
"""A JSON object (a mapping from str to JSON values)."""

_SCALARS = (str, int, float, bool, type(None))
_PLAIN = frozenset(_SCALARS)  # exactly these types: a set lookup instead of isinstance


def _refuse(self: object, *args: object, **kwargs: object) -> NoReturn:
    raise TypeError(f"{type(self).__name__} is read-only: state changes only through NodePartial")


class FrozenDict(dict[str, Any]):
    """A read-only JSON object (a `dict` that refuses mutation); values are frozen too."""

    __slots__ = ()

    def __init__(self, data: Mapping[str, Any] | Iterable[tuple[str, Any]] = ()) -> None:
        # Copied as it is, then checked and frozen in place: most values are scalars, which
        # stay as they are (no generator, no (key, value) tuple per item).
        dict.__init__(self, data)
        for key, value in dict.items(self):
            if type(key) is not str:
                _key(key)
            if type(value) not in _PLAIN:
                frozen = freeze(value)
                if frozen is not value:
                    dict.__setitem__(self, key, frozen)

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _refuse
    __ior__ = _refuse

    def __reduce__(self) -> tuple[type[FrozenDict], tuple[dict[str, Any]]]:
        return (FrozenDict, (dict(self),))

    def __repr__(self) -> str:
        return f"FrozenDict({dict.__repr__(self)})"


class FrozenList(list[Any]):
    """A read-only JSON array (a `list` that refuses mutation); items are frozen too."""

    __slots__ = ()

    def __init__(self, items: Iterable[Any] = ()) -> None:
        list.__init__(self, items)
        for index, value in enumerate(list.__iter__(self)):
            if type(value) not in _PLAIN:
                frozen = freeze(value)
                if frozen is not value:
                    list.__setitem__(self, index, frozen)

    __setitem__ = __delitem__ = append = extend = insert = pop = remove = _refuse
    reverse = sort = clear = _refuse
    __iadd__ = __imul__ = _refuse

    def __reduce__(self) -> tuple[type[FrozenList], tuple[list[Any]]]:
        return (FrozenList, (list(self),))

    def __repr__(self) -> str:
        return f"FrozenList({list.__repr__(self)})"


def freeze(value: JSONValue) -> JSONValue:
    """Return `value` as a read-only JSON value (already-frozen values are returned as they are).

    Raises:
        TypeError: `value` is not made of JSON values.
    """
    cls = type(value)
    if cls in _PLAIN or cls is FrozenDict or cls is FrozenList or isinstance(value, _SCALARS):
        return value
    if cls is dict or isinstance(value, Mapping):
        return FrozenDict(value)
    if cls is list or cls is tuple or isinstance(value, list | tuple):
        return FrozenList(value)
    raise TypeError(
        "state values must be JSON values (None, bool, int, float, str, list, dict); "
        f"got {cls.__name__}: {value!r}"
    )


def thaw(value: JSONValue) -> JSONValue:
    """Return a plain, mutable deep copy of a (possibly frozen) JSON value."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [thaw(v) for v in value]
    return value


def _key(key: object) -> str:
    if not isinstance(key, str):
        raise TypeError(f"JSON object keys must be str; got {type(key).__name__}: {key!r}")
    return key
