from __future__ import annotations

import pytest

from weavegraph import (
    END,
    START,
    ErrorEvent,
    ErrorScope,
    GraphBuilder,
    LadderError,
    Message,
    NodeContext,
    NodePartial,
    RuntimeConfig,
    StateSnapshot,
    VersionedState,
)
from weavegraph.testing import (
    RecordedRun,
    assert_same_run,
    compare_events,
    compare_runs,
    compare_states,
    record_run,
)


def make_app(reply: str, stamp: bool = False):  # type: ignore[no-untyped-def]
    async def node(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
        import time

        ctx.emit("say", reply, at=time.time() if stamp else 0)
        extra = {"reply": reply, "clock": time.time()}
        return NodePartial(messages=[Message.assistant(reply)], extra=extra)

    b = GraphBuilder().add_node("n", node).add_edge(START, "n").add_edge("n", END)
    return b.compile(RuntimeConfig(lifecycle_events=True))


async def test_two_runs_of_the_same_graph_match_ignoring_volatile_keys() -> None:
    first = await record_run(make_app("hi", stamp=True), VersionedState.with_user_message("q"))
    second = await record_run(make_app("hi", stamp=True), VersionedState.with_user_message("q"))
    assert first.events[0].session_id != second.events[0].session_id
    assert compare_runs(first, second, volatile_keys=["clock", "at"]) == []
    assert_same_run(first, second, volatile_keys=["clock", "at"])
    differences = compare_runs(first, second)
    assert differences[0].startswith(
        "state.extra: expected {'version': 2, 'value': {'reply': 'hi', 'clock': "
    )
    assert any(d.startswith("event #4: expected") and "'at'" in d for d in differences)


async def test_different_runs_are_reported_precisely() -> None:
    first = await record_run(make_app("hi"))
    second = await record_run(make_app("bye"))
    differences = compare_runs(first, second, volatile_keys=["clock"])
    assert differences[0] == (
        "state.messages: expected {'version': 2, 'value': [{'role': 'assistant', "
        "'content': 'hi'}]}, got {'version': 2, 'value': [{'role': 'assistant', "
        "'content': 'bye'}]}"
    )
    assert differences[1] == (
        "state.extra: expected {'version': 2, 'value': {'reply': 'hi'}}, "
        "got {'version': 2, 'value': {'reply': 'bye'}}"
    )
    assert len(differences) == 3  # and the emitted event
    with pytest.raises(AssertionError, match=r"runs differ:\nstate\.messages"):
        assert_same_run(first, second, volatile_keys=["clock"])


def test_error_timestamps_are_ignored_and_lengths_reported() -> None:
    def state(when_offset: int) -> VersionedState:
        from datetime import UTC, datetime, timedelta

        when = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=when_offset)
        error = ErrorEvent(LadderError("x"), ErrorScope.in_node("n", 1), when=when)
        return VersionedState(errors=[error])

    assert compare_states(state(0), state(5)) == []
    run = RecordedRun(VersionedState())
    assert compare_events(run.events, (make_event(),)) == ["events: expected 0, got 1"]


def make_event():  # type: ignore[no-untyped-def]
    from weavegraph import Event

    return Event.node("s", "m")


async def test_ids_can_be_ignored() -> None:
    from weavegraph import Event

    a = Event("node", "s", "m", id=1)
    b = Event("node", "s", "m", id=7)
    assert compare_events([a], [b]) != []
    assert compare_events([a], [b], ignore_ids=True) == []
