"""Where weavegraph's time goes: the cost of each feature per step and per event.

Run: ``python benchmarks/breakdown.py [--reps N]``

Per step: a chain of 100 async nodes run through an `AppRunner`, adding one feature at a time
(checkpoint in memory, lifecycle diagnostics, a stream reading them) and the entry points the
comparison uses. Per event: each piece of the path from `ctx.emit` to `async for`. Every
figure is the best of `--reps` timings in this process (the least disturbed by other load).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from workloads_weavegraph import NODE_FINISHED, add_one_sync, chain_app, counter_state

from weavegraph import App, AppRunner, Event, EventBus, NodeContext
from weavegraph.checkpoint import SQLiteCheckpointer

CHAIN, RUNS, EVENTS = 100, 20, 100_000
Case = Callable[[], Awaitable[float] | float]  # one timing: seconds, or a coroutine of them


async def _runner_steps(app: App, *, stream: bool = False, **options: object) -> float:
    """Seconds per step of RUNS runs of the chain through one AppRunner."""
    async with AppRunner(app, **options) as runner:  # type: ignore[arg-type]
        started = time.perf_counter()
        for _ in range(RUNS):
            session = await runner.create_session(counter_state())
            if stream:
                updates = runner.event_bus.subscribe(session_id=session, scopes=NODE_FINISHED)
            await runner.run_until_complete(session)
            if stream:
                while updates.try_recv() is not None:
                    pass
        return (time.perf_counter() - started) / (RUNS * CHAIN)


async def _invoke_steps(app: App) -> float:
    started = time.perf_counter()
    for _ in range(RUNS):
        await app.invoke(counter_state())
    return (time.perf_counter() - started) / (RUNS * CHAIN)


def _invoke_sync_steps(app: App) -> float:
    started = time.perf_counter()
    for _ in range(RUNS):
        app.invoke_sync(counter_state())
    return (time.perf_counter() - started) / (RUNS * CHAIN)


async def _sqlite_steps(app: App) -> float:
    with tempfile.TemporaryDirectory() as folder:
        async with SQLiteCheckpointer(Path(folder) / "b.sqlite") as checkpointer:
            return await _runner_steps(app, checkpointer=checkpointer, lifecycle_events=False)


def _step_cases() -> list[tuple[str, Case]]:
    app, sync_app = chain_app(CHAIN), chain_app(CHAIN, add_one_sync)
    quiet = {"lifecycle_events": False}
    return [
        (
            "runner: no checkpoint, no diagnostics",
            lambda: _runner_steps(app, autosave=False, **quiet),
        ),
        ("  + checkpoint in memory", lambda: _runner_steps(app, **quiet)),
        ("  + lifecycle diagnostics (AppRunner default)", lambda: _runner_steps(app)),
        ("  + a stream of node-finished diagnostics", lambda: _runner_steps(app, stream=True)),
        ("runner: SQLite checkpoint, no diagnostics", lambda: _sqlite_steps(app)),
        ("app.invoke (chain)", lambda: _invoke_steps(app)),
        (
            "runner, sync nodes (to_thread), no diagnostics",
            lambda: _runner_steps(sync_app, **quiet),
        ),
        ("app.invoke_sync, sync nodes (chain_sync)", lambda: _invoke_sync_steps(sync_app)),
    ]


def _event_cases() -> list[tuple[str, Case]]:
    def build() -> float:
        started = time.perf_counter()
        for _ in range(EVENTS):
            Event("node", "tick", "x", None, session_id="s", node_id="n", step=1)
        return time.perf_counter() - started

    def publish() -> float:
        bus = EventBus()
        events = [Event("node", "tick", "x", session_id="s") for _ in range(EVENTS)]
        publish = bus.publish
        started = time.perf_counter()
        for event in events:
            publish(event)
        return time.perf_counter() - started

    def emit() -> float:
        ctx = NodeContext("n", 1, "s", EventBus())
        started = time.perf_counter()
        for _ in range(EVENTS):
            ctx.emit("tick", "x")
        return time.perf_counter() - started

    return [("Event(...)", build), ("bus.publish(event)", publish), ("ctx.emit(...)", emit)]


async def _receive(readers: int) -> float:
    bus = EventBus(capacity=EVENTS + 1)
    streams = [bus.subscribe(session_id="s") for _ in range(readers)]
    for _ in range(EVENTS):
        bus.publish(Event("node", "tick", "x", session_id="s"))

    async def drain(stream: object) -> None:
        seen = 0
        async for _ in stream:  # type: ignore[attr-defined]
            seen += 1
            if seen == EVENTS:
                return

    started = time.perf_counter()
    await asyncio.gather(*(drain(s) for s in streams))
    return time.perf_counter() - started


async def _queue_pair() -> float:
    queue: asyncio.Queue[int] = asyncio.Queue()
    started = time.perf_counter()
    for i in range(EVENTS):
        queue.put_nowait(i)
    for _ in range(EVENTS):
        await queue.get()
    return time.perf_counter() - started


async def _time(case: Case, label: str) -> float:
    if "invoke_sync" in label:  # asyncio.run() cannot nest: run it on a thread
        return await asyncio.to_thread(case)  # type: ignore[arg-type]
    value = case()
    return value if isinstance(value, float) else await value


async def _best_of(cases: list[tuple[str, Case]], reps: int) -> list[float]:
    """The best time of each case over `reps` rounds; each round runs every case once, so a
    slow spell of the machine hits all cases alike."""
    best = [float("inf")] * len(cases)
    for _ in range(reps):
        for index, (label, case) in enumerate(cases):
            best[index] = min(best[index], await _time(case, label))
    return best


async def main(reps: int) -> None:
    steps = _step_cases()
    print(f"per step (chain of {CHAIN}, {RUNS} runs; best of {reps}):")
    for (label, _), seconds in zip(steps, await _best_of(steps, reps), strict=True):
        print(f"  {label:<50}{seconds * 1e6:8.1f} us")
    events: list[tuple[str, Case]] = [*_event_cases()]
    events += [
        ("async for, 1 stream with a session filter", lambda: _receive(1)),
        ("async for, 4 streams with a session filter", lambda: _receive(4)),
        ("floor: asyncio.Queue put_nowait + get", _queue_pair),
    ]
    print(f"per event ({EVENTS:,} events; best of {reps}):")
    for (label, _), seconds in zip(events, await _best_of(events, reps), strict=True):
        print(f"  {label:<50}{seconds / EVENTS * 1e9:8.0f} ns")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5)
    asyncio.run(main(parser.parse_args().reps))
