from __future__ import annotations

import copy
import json
import pickle
from datetime import UTC, datetime

import pytest

from weavegraph import (
    ErrorEvent,
    ErrorScope,
    FrozenDict,
    FrozenList,
    LadderError,
    Message,
    Role,
    VersionedState,
    pretty_print_errors,
)


def test_message_constructors_and_roles() -> None:
    assert Message.user("hi") == Message("user", "hi")
    assert Message.assistant("a").role == Role.ASSISTANT == "assistant"
    assert Message.system("s").role == "system"
    assert Message.tool("t").role == "tool"
    custom = Message.custom("critic", "meh")
    assert custom.role == "critic"
    assert custom.has_role("critic")
    assert not custom.has_role("user")


def test_message_json_round_trip() -> None:
    message = Message.custom("planner", "step 1 → step 2")
    assert message.to_json() == '{"role": "planner", "content": "step 1 → step 2"}'
    assert Message.from_json(message.to_json()) == message
    assert Message.from_dict({"role": "user", "content": "x"}) == Message.user("x")


def test_message_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="non-empty string"):
        Message("", "x")
    with pytest.raises(TypeError, match="content must be a string"):
        Message("user", 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs 'role' and 'content'"):
        Message.from_dict({"role": "user"})


def test_versioned_state_starts_at_version_one() -> None:
    state = VersionedState.with_user_message("Hi?")
    assert state.messages == (Message.user("Hi?"),)
    assert state.extra == {}
    assert state.errors == ()
    assert state.versions == {"messages": 1, "extra": 1, "errors": 1}


def test_builder_constructs_every_channel() -> None:
    error = ErrorEvent(LadderError("boom"), ErrorScope.in_app())
    state = (
        VersionedState.builder()
        .with_system_message("be brief")
        .with_user_message("hi")
        .with_assistant_message("hello")
        .with_extra("lang", "en")
        .with_extra("tags", ["a", "b"])
        .with_error(error)
        .build()
    )
    assert [m.role for m in state.messages] == ["system", "user", "assistant"]
    assert state.extra == {"lang": "en", "tags": ["a", "b"]}
    assert state.errors == (error,)


def test_snapshot_is_immutable_all_the_way_down() -> None:
    state = VersionedState(extra={"nested": {"items": [1, 2]}, "n": 1})
    snap = state.snapshot()
    with pytest.raises(TypeError, match="read-only"):
        snap.extra["n"] = 2  # type: ignore[index]
    with pytest.raises(TypeError, match="read-only"):
        snap.extra["nested"]["items"].append(3)
    with pytest.raises(TypeError, match="read-only"):
        snap.extra["nested"].update(x=1)
    with pytest.raises(AttributeError):
        snap.messages.append(Message.user("x"))  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        snap.extra_version = 5  # type: ignore[misc]
    assert snap.extra == {"nested": {"items": [1, 2]}, "n": 1}


def test_frozen_values_behave_like_json() -> None:
    frozen = FrozenDict({"a": [1, {"b": None}]})
    assert isinstance(frozen["a"], FrozenList)
    assert json.dumps(frozen) == '{"a": [1, {"b": null}]}'
    assert copy.deepcopy(frozen) == frozen
    assert pickle.loads(pickle.dumps(frozen)) == {"a": [1, {"b": None}]}
    assert type(pickle.loads(pickle.dumps(frozen["a"]))) is FrozenList
    assert repr(FrozenList([1])) == "FrozenList([1])"
    with pytest.raises(TypeError, match="JSON values"):
        FrozenDict({"a": object()})
    with pytest.raises(TypeError, match="keys must be str"):
        FrozenDict({1: "x"})  # type: ignore[dict-item]


def test_state_json_round_trip_keeps_versions() -> None:
    state = VersionedState(
        messages=[Message.user("q"), Message.assistant("a")],
        extra={"k": [1, 2], "m": {"x": True}},
        errors=[ErrorEvent(LadderError("e"), ErrorScope.in_node("n", 3))],
        versions={"messages": 4, "extra": 2, "errors": 7},
    )
    again = VersionedState.from_json(state.to_json())
    assert again == state
    assert again.versions == {"messages": 4, "extra": 2, "errors": 7}
    with pytest.raises(ValueError, match="not a state object"):
        VersionedState.from_dict({"messages": {}})
    with pytest.raises(ValueError, match="bad channel version"):
        VersionedState(versions={"extra": 0})


def test_copy_is_independent() -> None:
    state = VersionedState.with_user_message("x")
    clone = state.copy()
    state._set("messages", (*state.messages, Message.assistant("y")))
    assert len(clone.messages) == 1
    assert clone.versions["messages"] == 1
    assert state.versions["messages"] == 2


def test_error_event_json_round_trip_and_chain() -> None:
    try:
        try:
            raise KeyError("missing")
        except KeyError as inner:
            raise RuntimeError("lookup failed") from inner
    except RuntimeError as exc:
        event = ErrorEvent.from_exception(
            exc, ErrorScope.in_node("fetch", 2), tags=["io"], context={"url": "x"}
        )
    assert [e.message for e in event.error.chain()] == [
        "RuntimeError: lookup failed",
        "KeyError: 'missing'",
    ]
    again = ErrorEvent.from_json(event.to_json())
    assert again == event
    assert event.to_dict()["scope"] == {"kind": "node", "node": "fetch", "step": 2}
    assert ErrorScope.in_runner("s1", 4).to_dict() == {"kind": "runner", "step": 4, "session": "s1"}
    assert ErrorScope.in_scheduler(5).to_dict() == {"kind": "scheduler", "step": 5}
    with pytest.raises(ValueError, match="error scope kind"):
        ErrorScope.from_dict({"kind": "planet"})
    with pytest.raises(ValueError, match="not an error event"):
        ErrorEvent.from_dict({"scope": {"kind": "app"}})


def test_pretty_print_errors() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    events = [
        ErrorEvent(
            LadderError("outer", cause=LadderError("inner"), details={"code": 7}),
            ErrorScope.in_node("fetch", 1),
            when=when,
            tags=("io",),
            context={"try": 2},
        ),
        ErrorEvent(LadderError("plain"), ErrorScope.in_app(), when=when),
    ]
    assert pretty_print_errors(events) == (
        "1. [2026-01-02T03:04:05.000000Z] node(node=fetch, step=1): outer\n"
        "     caused by: inner\n"
        '     details: {"code": 7}\n'
        "     tags: io\n"
        '     context: {"try": 2}\n'
        "2. [2026-01-02T03:04:05.000000Z] app: plain"
    )
    assert pretty_print_errors([]) == "no errors"
