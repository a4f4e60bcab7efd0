from __future__ import annotations

import asyncio

import pytest

from weavegraph import CheckpointError, InMemoryCheckpointer, Message, VersionedState
from weavegraph.checkpoint import Checkpoint, Checkpointer


def cp(session: str, step: int, ran: tuple[str, ...] = ()) -> Checkpoint:
    return Checkpoint(
        session_id=session,
        step=step,
        state=VersionedState(messages=[Message.user(str(step))]),
        frontier=("next",),
        joins={"a+b->c": ("a",)},
        ran_nodes=ran,
        skipped_nodes=("c",),
        updated_channels=("messages",),
        graph_hash="abc",
    )


async def test_round_trip_and_protocol() -> None:
    async with InMemoryCheckpointer() as store:
        assert isinstance(store, Checkpointer)
        original = cp("s", 1, ("a",))
        await store.save(original)
        assert await store.load("s", 1) == original
        assert await store.load("s", 2) is None
        assert await store.load("missing", 1) is None
        assert await store.load_latest("missing") is None
        assert Checkpoint.from_dict(original.to_dict()) == original


async def test_latest_is_monotonic_under_out_of_order_saves() -> None:
    store = InMemoryCheckpointer()
    for step in (3, 1, 5, 2, 4):
        await store.save(cp("s", step))
    latest = await store.load_latest("s")
    assert latest is not None
    assert latest.step == 5
    assert [c.step for c in await store.history("s")] == [1, 2, 3, 4, 5]
    await store.save(cp("s", 3, ("again",)))
    assert [c.ran_nodes for c in await store.history("s", from_step=3, to_step=3)] == [("again",)]


async def test_history_filters_and_paging() -> None:
    store = InMemoryCheckpointer()
    for step in range(10):
        await store.save(cp("s", step, ("even",) if step % 2 == 0 else ("odd",)))
    steps = lambda items: [c.step for c in items]  # noqa: E731
    assert steps(await store.history("s", limit=3)) == [0, 1, 2]
    assert steps(await store.history("s", limit=3, offset=8)) == [8, 9]
    assert steps(await store.history("s", newest_first=True, limit=2)) == [9, 8]
    assert steps(await store.history("s", from_step=4, to_step=6)) == [4, 5, 6]
    assert steps(await store.history("s", ran_node="odd", limit=2, offset=1)) == [3, 5]
    assert steps(await store.history("nobody")) == []
    with pytest.raises(ValueError, match="must not be negative"):
        await store.history("s", offset=-1)


async def test_sessions_and_delete() -> None:
    store = InMemoryCheckpointer()
    await store.save(cp("b", 0))
    await store.save(cp("a", 0))
    assert await store.list_sessions() == ["a", "b"]
    assert await store.delete_session("a") is True
    assert await store.delete_session("a") is False
    assert await store.list_sessions() == ["b"]


async def test_expected_step_lets_exactly_one_writer_win() -> None:
    store = InMemoryCheckpointer()
    await store.save(cp("s", 1))
    results = await asyncio.gather(
        store.save(cp("s", 2), expected_step=1),
        store.save(cp("s", 2), expected_step=1),
        return_exceptions=True,
    )
    assert sum(r is None for r in results) == 1
    errors = [r for r in results if isinstance(r, CheckpointError)]
    assert len(errors) == 1
    assert (
        str(errors[0]) == "session 's': expected latest step 1, found 2; another writer saved first"
    )
    await store.save(cp("new", 0), expected_step=None)
    with pytest.raises(CheckpointError, match="expected latest step None, found 0"):
        await store.save(cp("new", 1), expected_step=None)
