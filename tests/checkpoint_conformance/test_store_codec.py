"""The row codec shared by the SQL checkpointers: what a save encodes and remembers."""

from __future__ import annotations

import json

from weavegraph import ErrorEvent, ErrorScope, LadderError, Message, VersionedState
from weavegraph.checkpoint._codec import WrittenValues, channel_json


def grown(state: VersionedState, *texts: str) -> VersionedState:
    """The state with messages appended (and the channel's version bumped), as a step does."""
    state = state.copy()
    state._set("messages", (*state.messages, *(Message.assistant(t) for t in texts)))
    return state


def test_a_growing_list_is_encoded_as_if_from_scratch() -> None:
    memory = WrittenValues()
    state = VersionedState(messages=[Message.user('hi, "you" ✓')])
    seen = [memory.encode("s", state, "messages")]
    for texts in (("one",), ("two", "three"), (), ("\u2028",)):
        state = grown(state, *texts)
        seen.append(memory.encode("s", state, "messages"))
        assert seen[-1] == channel_json(state, "messages")
    assert json.loads(seen[-1])[-1] == {"role": "assistant", "content": "\u2028"}
    assert len(json.loads(seen[-1])) == 5


def test_a_replaced_or_shrunk_list_is_encoded_again() -> None:
    memory = WrittenValues()
    long = VersionedState(messages=[Message.user("a"), Message.user("b")])
    memory.encode("s", long, "messages")
    x, b, c = Message.user("x"), Message.user("b"), Message.user("c")
    for messages in ([x, b, c], [], [Message.user("a")]):
        state = VersionedState(messages=messages)
        assert memory.encode("s", state, "messages") == channel_json(state, "messages")
    other = VersionedState(messages=[Message.user("other session")])
    assert memory.encode("t", other, "messages") == '[{"role":"user","content":"other session"}]'


def test_errors_and_extra_channels() -> None:
    memory = WrittenValues()
    error = ErrorEvent(LadderError("boom"), ErrorScope.in_node("n", 1))
    state = VersionedState(errors=[error], extra={"k": [1, {"z": None}]})
    assert memory.encode("s", state, "errors") == channel_json(state, "errors")
    assert memory.encode("s", state, "extra") == '{"k":[1,{"z":null}]}'


def test_written_keys_are_remembered_per_epoch_and_bounded() -> None:
    memory = WrittenValues(max_sessions=2)
    versions = {"messages": 2, "extra": 1}
    assert memory.missing("s", 7, versions) == [("messages", 2), ("extra", 1)]
    memory.add("s", 7, [("messages", 2), ("extra", 1)])
    assert memory.missing("s", 7, versions) == []
    assert memory.missing("s", 7, {"messages": 3, "extra": 1}) == [("messages", 3)]
    assert memory.missing("s", 8, versions) == [("messages", 2), ("extra", 1)]  # re-created
    memory.add("t", 1, [("extra", 1)])
    memory.add("u", 1, [("extra", 1)])  # a third session: "s" is forgotten
    assert memory.missing("s", 7, versions) == [("messages", 2), ("extra", 1)]
    memory.forget("u")
    assert memory.missing("u", 1, {"extra": 1}) == [("extra", 1)]
