from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from weavegraph import (
    FrozenDict,
    Message,
    NodePartial,
    ReducerRegistry,
    VersionedState,
    add_messages,
    map_merge,
    sum_keys,
)
from weavegraph._reducers import apply_updates

json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=5)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)
objects = st.dictionaries(st.text(max_size=4), json_values, max_size=6)


def test_map_merge_sets_and_deletes() -> None:
    current = FrozenDict({"a": 1, "b": 2})
    merged = map_merge(current, {"b": None, "c": [3]})
    assert merged == {"a": 1, "c": [3]}
    assert map_merge(current, {"a": 1}) is current  # nothing changed
    assert map_merge(current, {"zzz": None}) is current  # deleting a missing key


@given(objects, objects)
def test_map_merge_matches_dict_semantics(current: dict, update: dict) -> None:
    expected = dict(current)
    for key, value in update.items():
        if value is None:
            expected.pop(key, None)
        else:
            expected[key] = value
    merged = map_merge(FrozenDict(current), update)
    assert merged == expected
    assert (merged is not FrozenDict(current)) or merged == current


@given(st.lists(st.lists(st.text(max_size=3), max_size=4), max_size=5))
def test_add_messages_appends_in_order(batches: list[list[str]]) -> None:
    value: tuple[Message, ...] = ()
    for batch in batches:
        value = add_messages(value, [Message.user(t) for t in batch])
    assert [m.content for m in value] == [t for batch in batches for t in batch]


@given(st.lists(st.one_of(st.none(), objects), max_size=6))
def test_versions_bump_exactly_once_per_changed_step(updates: list[dict | None]) -> None:
    state = VersionedState()
    partials = [NodePartial(extra=u) if u is not None else None for u in updates]
    before = dict(state.extra)
    changed = apply_updates(state, partials, ReducerRegistry())
    expected = dict(before)
    for update in updates:
        for key, value in (update or {}).items():
            if value is None:
                expected.pop(key, None)
            else:
                expected[key] = value
    assert state.extra == expected
    assert state.versions["extra"] == (2 if expected != before else 1)
    assert changed == (("extra",) if expected != before else ())
    assert state.versions["messages"] == 1
    assert state.versions["errors"] == 1


def test_apply_updates_in_order_and_channels_reported() -> None:
    state = VersionedState.with_user_message("q")
    changed = apply_updates(
        state,
        [
            NodePartial(messages=[Message.assistant("a1")], extra={"x": 1}),
            None,
            NodePartial(messages=[Message.assistant("a2")], extra={"x": 2}),
        ],
        ReducerRegistry(),
    )
    assert changed == ("messages", "extra")
    assert [m.content for m in state.messages] == ["q", "a1", "a2"]
    assert state.extra == {"x": 2}
    assert state.versions == {"messages": 2, "extra": 2, "errors": 1}


def test_registry_applies_custom_reducers_in_registration_order() -> None:
    seen: list[str] = []

    def first(current: dict, update: dict) -> dict:
        seen.append("first")
        return {**current, "trail": [*current.get("trail", []), "first"]}

    def second(current: dict, update: dict) -> dict:
        seen.append("second")
        return {**current, "trail": [*current.get("trail", []), "second"]}

    registry = ReducerRegistry().register("extra", first).register("extra", second)
    assert [r.__name__ for r in registry.reducers("extra")] == ["map_merge", "first", "second"]
    state = VersionedState()
    apply_updates(state, [NodePartial(extra={"k": "v"})], registry)
    assert seen == ["first", "second"]
    assert state.extra == {"k": "v", "trail": ["first", "second"]}
    assert isinstance(state.extra, FrozenDict)
    assert isinstance(state.extra["trail"], list)


def test_sum_keys_adds_numbers_and_merges_the_rest() -> None:
    registry = ReducerRegistry().replace("extra", sum_keys("count"))
    state = VersionedState(extra={"count": 1, "name": "a"})
    apply_updates(
        state,
        [NodePartial(extra={"count": 2}), NodePartial(extra={"count": 3, "name": "b"})],
        registry,
    )
    assert state.extra == {"count": 6, "name": "b"}
    assert state.versions["extra"] == 2
    unchanged = VersionedState(extra={"count": 1})
    assert apply_updates(unchanged, [NodePartial(extra={"count": 0})], registry) == ()


def test_custom_messages_reducer_result_becomes_a_tuple() -> None:
    def keep_last_two(current: tuple, update: list) -> list:
        return [*current, *update][-2:]

    registry = ReducerRegistry().replace("messages", keep_last_two)
    state = VersionedState(messages=[Message.user("1"), Message.user("2")])
    apply_updates(state, [NodePartial(messages=[Message.user("3")])], registry)
    assert state.messages == (Message.user("2"), Message.user("3"))


def test_registry_rejects_unknown_channels() -> None:
    with pytest.raises(ValueError, match="unknown channel 'memory'"):
        ReducerRegistry().register("memory", map_merge)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one reducer"):
        ReducerRegistry().replace("extra")
