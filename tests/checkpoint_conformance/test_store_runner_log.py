"""AppRunner(event_log=...): every event logged; a resumed run continues the logged ids."""

from __future__ import annotations

from pathlib import Path

import pytest


async def test_runner_logs_every_event_and_a_resumed_run_continues_the_ids(tmp_path: Path) -> None:
    from weavegraph import END, START, AppRunner, GraphBuilder, NodePartial, SessionError
    from weavegraph.checkpoint import SQLiteCheckpointer, SQLiteEventLog

    async def talk(snapshot, ctx):  # type: ignore[no-untyped-def]
        ctx.emit("say", ctx.node)
        return NodePartial(extra={ctx.node: True})

    b = GraphBuilder().add_node("a", talk).add_node("b", talk)
    app = b.add_edge(START, "a").add_edge("a", "b").add_edge("b", END).compile()
    path = tmp_path / "run.sqlite"
    async with SQLiteCheckpointer(path) as store, SQLiteEventLog(path) as log:
        first = AppRunner(app, checkpointer=store, event_log=log, interrupt_after=["a"])
        await first.create_session(session_id="s")
        await first.run_until_complete("s")
        await first.aclose()
        logged = await log.events_after("s", 0)
        assert [e.id for e in logged] == list(range(1, len(logged) + 1))
        assert logged[-1].is_stream_end()
        last = logged[-1].id

        second = AppRunner(app, checkpointer=store, event_log=log)
        await second.resume("s")
        await second.aclose()
        everything = await log.events_after("s", 0)
        assert [e.id for e in everything] == list(range(1, len(everything) + 1))
        assert everything[last].id == last + 1  # the resumed run's first event
        assert [e.message for e in everything if e.scope == "say"] == ["a", "b"]
        assert sum(e.is_stream_end() for e in everything) == 2  # paused run, finished run

        busy = AppRunner(app, checkpointer=store, event_log=log)
        busy.event_bus.subscribe()
        with pytest.raises(SessionError, match="resume it with a new runner"):
            await busy.resume("s")
        await busy.aclose()


@pytest.mark.parametrize("option", ["interrupt_before", "interrupt_after"])
async def test_a_pause_survives_a_restart_on_sqlite(tmp_path: Path, option: str) -> None:
    from weavegraph import END, START, AppRunner, GraphBuilder, NodePartial
    from weavegraph.checkpoint import SQLiteCheckpointer

    ran: list[str] = []

    async def step(snapshot, ctx):  # type: ignore[no-untyped-def]
        ran.append(ctx.node)
        return NodePartial()

    b = GraphBuilder().add_node("a", step).add_node("b", step).add_node("c", step)
    app = b.add_edge(START, "a").add_edge("a", "b").add_edge("b", "c").add_edge("c", END).compile()
    pause = {option: ["b" if option == "interrupt_before" else "a"]}
    path = tmp_path / "p.sqlite"
    async with SQLiteCheckpointer(path) as store:
        first = AppRunner(app, checkpointer=store, **pause)  # type: ignore[arg-type]
        await first.create_session(session_id="p")
        await first.run_until_complete("p")
    assert ran == ["a"]
    async with SQLiteCheckpointer(path) as store:
        latest = await store.load_latest("p")
        assert latest is not None
        assert latest.paused == ("before" if option == "interrupt_before" else "after")
        second = AppRunner(app, checkpointer=store, **pause)  # type: ignore[arg-type]
        await second.resume("p")
    assert ran == ["a", "b", "c"]
