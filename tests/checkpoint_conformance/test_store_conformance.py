"""The checkpointer conformance suite: every backend behaves exactly like the in-memory one."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from store_backends import Backend
from weavegraph import (
    CheckpointError,
    ErrorEvent,
    ErrorScope,
    LadderError,
    Message,
    VersionedState,
)
from weavegraph.checkpoint import Checkpoint, Checkpointer


def cp(session: str, step: int, ran: tuple[str, ...] = (), text: str | None = None) -> Checkpoint:
    """A small checkpoint whose messages channel is at version `step + 1`."""
    state = VersionedState(
        messages=[Message.user(text if text is not None else f"step {step}")],
        versions={"messages": step + 1},
    )
    return Checkpoint(session_id=session, step=step, state=state, ran_nodes=ran)


def rich_checkpoint() -> Checkpoint:
    """A checkpoint that sets every field to something other than its default."""
    state = VersionedState(
        messages=[
            Message.system("be brief"),
            Message.user('Grüße, 世界 \u2028 "quoted" \\ back'),
            Message.assistant("Hello!"),
        ],
        extra={
            "count": 3,
            "ratio": 0.1,
            "big": 1e300,
            "nested": {"list": [1, [2, None], {"deep": True}], "empty": {}},
            "unicode": "ñ\u0000z",
        },
        errors=[
            ErrorEvent(
                LadderError("timeout", cause=LadderError("socket closed"), details={"tries": 2}),
                ErrorScope.in_node("fetch", 3),
                when=datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
                tags=("network",),
                context={"url": "https://example.com"},
            )
        ],
        versions={"messages": 7, "extra": 4, "errors": 2},
    )
    return Checkpoint(
        session_id="rich/session é",
        step=6,
        state=state,
        frontier=("summarise", "fetch"),
        joins={"fetch+rank->summarise": ("rank",), "a+b->c": ()},
        ran_nodes=("rank", "fetch"),
        skipped_nodes=("summarise",),
        updated_channels=("messages", "extra", "errors"),
        status="interrupted",
        paused="before",
        created_at=datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        graph_hash="sha256:0123abcd",
    )


def steps(items: Sequence[Checkpoint]) -> list[int]:
    return [c.step for c in items]


async def test_every_field_round_trips(backend: Backend, store: Checkpointer) -> None:
    assert isinstance(store, Checkpointer)
    original = rich_checkpoint()
    await store.save(original)
    for reader in (store, await backend.open()):  # the same object, and a "restarted" one
        loaded = await reader.load_latest(original.session_id)
        assert loaded == original
        assert loaded is not None
        assert loaded.state.versions == {"messages": 7, "extra": 4, "errors": 2}
        assert loaded.state.to_dict() == original.state.to_dict()
        assert loaded.created_at.tzinfo is UTC
        assert loaded.created_at.microsecond == 678901
        assert loaded.joins == {"fetch+rank->summarise": ("rank",), "a+b->c": ()}
        assert (loaded.status, loaded.paused) == ("interrupted", "before")
        assert await reader.load(original.session_id, 6) == original


async def test_missing_session_and_step(store: Checkpointer) -> None:
    assert await store.load_latest("missing") is None
    assert await store.load("missing", 0) is None
    await store.save(cp("s", 1))
    assert await store.load("s", 0) is None
    assert await store.load("s", 2) is None
    assert await store.history("missing") == []
    assert await store.list_sessions() == ["s"]


async def test_history_order_filters_and_paging(store: Checkpointer) -> None:
    for step in range(10):
        await store.save(cp("s", step, ("even",) if step % 2 == 0 else ("odd", "any")))
    await store.save(cp("other", 0, ("odd",)))
    assert steps(await store.history("s")) == list(range(10))
    assert steps(await store.history("s", limit=3)) == [0, 1, 2]
    assert steps(await store.history("s", limit=3, offset=8)) == [8, 9]
    assert steps(await store.history("s", limit=0)) == []
    assert steps(await store.history("s", offset=20)) == []
    assert steps(await store.history("s", newest_first=True, limit=2)) == [9, 8]
    assert steps(await store.history("s", newest_first=True, offset=7)) == [2, 1, 0]
    assert steps(await store.history("s", from_step=4, to_step=6)) == [4, 5, 6]
    assert steps(await store.history("s", from_step=8)) == [8, 9]
    assert steps(await store.history("s", to_step=1)) == [0, 1]
    assert steps(await store.history("s", ran_node="odd", limit=2, offset=1)) == [3, 5]
    assert steps(await store.history("s", ran_node="od")) == []
    found = await store.history("s", ran_node="any", from_step=2, newest_first=True)
    assert steps(found) == [9, 7, 5, 3]
    assert [c.state.messages[0].content for c in found] == ["step 9", "step 7", "step 5", "step 3"]
    with pytest.raises(ValueError, match="must not be negative"):
        await store.history("s", offset=-1)
    with pytest.raises(ValueError, match="must not be negative"):
        await store.history("s", limit=-1)


async def test_history_returns_each_checkpoints_own_state(store: Checkpointer) -> None:
    saved = [cp("s", step) for step in range(5)]
    for checkpoint in saved:
        await store.save(checkpoint)
    assert list(await store.history("s")) == saved
    assert list(await store.history("s", newest_first=True)) == saved[::-1]


async def test_sessions_are_listed_sorted_and_deleted(
    backend: Backend, store: Checkpointer
) -> None:
    for session in ("b", "a", "B", "é", "a b"):
        await store.save(cp(session, 0))
    assert await store.list_sessions() == ["B", "a", "a b", "b", "é"]  # code point order
    assert await store.delete_session("a") is True
    assert await store.delete_session("a") is False
    assert await store.delete_session("never") is False
    assert await store.list_sessions() == ["B", "a b", "b", "é"]
    assert await store.load_latest("a") is None
    assert await store.history("a") == []


async def test_a_deleted_session_can_start_again(backend: Backend, store: Checkpointer) -> None:
    other = await backend.open()  # another process deletes what this one wrote
    await store.save(cp("s", 0, text="first life"))
    assert await other.delete_session("s") is True
    await store.save(cp("s", 0, text="second life"))  # same channel versions, new values
    for reader in (store, other):
        loaded = await reader.load_latest("s")
        assert loaded is not None
        assert loaded.state.messages == (Message.user("second life"),)


async def test_latest_is_monotonic_under_out_of_order_saves(store: Checkpointer) -> None:
    for step in (3, 1, 5, 2, 4):
        await store.save(cp("s", step))
    latest = await store.load_latest("s")
    assert latest is not None
    assert (latest.step, latest.state.messages) == (5, (Message.user("step 5"),))
    assert steps(await store.history("s")) == [1, 2, 3, 4, 5]
    await store.save(cp("s", 3, ("again",)))  # replaces step 3, latest stays 5
    assert [c.ran_nodes for c in await store.history("s", from_step=3, to_step=3)] == [("again",)]
    latest = await store.load_latest("s")
    assert latest is not None
    assert latest.step == 5


async def test_expected_step_none_on_a_new_session(store: Checkpointer) -> None:
    await store.save(cp("s", 0), expected_step=None)
    assert steps(await store.history("s")) == [0]
    with pytest.raises(CheckpointError) as caught:
        await store.save(cp("s", 1), expected_step=None)
    assert str(caught.value) == (
        "session 's': expected latest step None, found 0; another writer saved first"
    )
    with pytest.raises(CheckpointError) as caught:
        await store.save(cp("new", 1), expected_step=0)
    assert str(caught.value) == (
        "session 'new': expected latest step 0, found None; another writer saved first"
    )
    await store.save(cp("s", 1), expected_step=0)
    assert steps(await store.history("s")) == [0, 1]
    assert await store.list_sessions() == ["s"]


@pytest.mark.parametrize("rounds", [10])
async def test_two_concurrent_writers_exactly_one_wins(
    backend: Backend, store: Checkpointer, rounds: int
) -> None:
    other = await backend.open()
    await store.save(cp("s", 0))
    for step in range(1, rounds + 1):
        results = await asyncio.gather(
            store.save(cp("s", step, ("first",)), expected_step=step - 1),
            other.save(cp("s", step, ("second",)), expected_step=step - 1),
            return_exceptions=True,
        )
        failures = [r for r in results if isinstance(r, CheckpointError)]
        assert len(failures) == 1, results
        assert results.count(None) == 1, results
        assert str(failures[0]) == (
            f"session 's': expected latest step {step - 1}, found {step}; "
            "another writer saved first"
        )
        winner = "first" if results[0] is None else "second"
        latest = await store.load_latest("s")
        assert latest is not None
        assert (latest.step, latest.ran_nodes) == (step, (winner,))
    assert steps(await other.history("s")) == list(range(rounds + 1))


async def test_concurrent_first_saves_of_a_new_session(
    backend: Backend, store: Checkpointer
) -> None:
    other = await backend.open()
    results = await asyncio.gather(
        store.save(cp("s", 0), expected_step=None),
        other.save(cp("s", 0), expected_step=None),
        return_exceptions=True,
    )
    assert results.count(None) == 1, results
    assert [str(r) for r in results if r is not None] == [
        "session 's': expected latest step None, found 0; another writer saved first"
    ]


async def test_a_long_chain_round_trips(backend: Backend, store: Checkpointer) -> None:
    saved = []
    state = VersionedState.with_user_message("start")
    for step in range(100):
        if step:
            state._set("messages", (*state.messages, Message.assistant(f"reply {step}")))
        checkpoint = Checkpoint("chain", step, state.copy(), ran_nodes=(f"n{step}",))
        saved.append(checkpoint)
        await store.save(checkpoint)
    reader = await backend.open()
    assert list(await reader.history("chain")) == saved
    latest = await reader.load_latest("chain")
    assert latest == saved[-1]
    assert latest is not None
    assert len(latest.state.messages) == 100
