"""Event bus throughput, as ratios to a bare asyncio.Queue hand-off measured in the same run.

Run: ``python benchmarks/event_bus_throughput.py [--events N] [--repeat R] [--profile]``

Measures, with the producer yielding to the loop every `batch` events:
- publish batches of 64/256/1024 events to a bus with a MemorySink, until stop() drained it;
- 100k events from publish to 1 and to 4 `async for` stream consumers (default capacity).
Each figure is the best of `--repeat` runs; drops are reported (they should be 0).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import ModuleType


def _events_module() -> ModuleType:
    try:
        import weavegraph.events as events
    except ImportError:  # run from a checkout without installing the package
        sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
        import weavegraph.events as events
    return events


ev = _events_module()


def _make_events(n: int) -> list[ev.Event]:
    return [ev.Event.node("bench", "payload", node_id="n", step=1) for _ in range(n)]


async def queue_handoff(items: list[ev.Event], consumers: int, batch: int) -> float:
    """The floor: put_nowait into one asyncio.Queue per consumer, `await get()` on the other."""
    queues: list[asyncio.Queue[ev.Event]] = [asyncio.Queue() for _ in range(consumers)]
    n = len(items)

    async def consume(q: asyncio.Queue[ev.Event]) -> None:
        for _ in range(n):
            await q.get()

    tasks = [asyncio.create_task(consume(q)) for q in queues]
    await asyncio.sleep(0)
    start = time.perf_counter()
    for index, item in enumerate(items, 1):
        for q in queues:
            q.put_nowait(item)
        if index % batch == 0:
            await asyncio.sleep(0)
    await asyncio.gather(*tasks)
    return n / (time.perf_counter() - start)


async def bus_streams(items: list[ev.Event], consumers: int, batch: int) -> float:
    """Publish to a bus; `consumers` tasks read it with `async for` until STREAM_END."""
    bus = ev.EventBus()
    n = len(items)
    counts = [0] * consumers

    async def consume(index: int, stream: ev.EventStream) -> None:
        seen = 0
        async for _ in stream:
            seen += 1
        counts[index] = seen

    streams = [bus.subscribe() for _ in range(consumers)]
    tasks = [asyncio.create_task(consume(i, s)) for i, s in enumerate(streams)]
    await asyncio.sleep(0)
    publish = bus.publish
    start = time.perf_counter()
    for index, item in enumerate(items, 1):
        publish(item)
        if index % batch == 0:
            await asyncio.sleep(0)
    publish(ev.Event.diagnostic(ev.STREAM_END_SCOPE, "done"))
    await asyncio.gather(*tasks)
    rate = n / (time.perf_counter() - start)
    await bus.stop()
    dropped = bus.metrics().dropped
    if dropped or counts != [n + 1] * consumers:
        print(f"  !! dropped={dropped} counts={counts}")
    return rate


async def bus_memory_sink(items: list[ev.Event], consumers: int, batch: int) -> float:
    """Publish in batches of `batch` to a bus with a MemorySink; time until stop() drained it."""
    del consumers
    sink = ev.MemorySink()
    bus = ev.EventBus([sink])
    await bus.start()
    publish = bus.publish
    start = time.perf_counter()
    for index, item in enumerate(items, 1):
        publish(item)
        if index % batch == 0:
            await asyncio.sleep(0)
    await bus.stop()
    rate = len(items) / (time.perf_counter() - start)
    if len(sink.snapshot()) != len(items):
        print(f"  !! the sink got {len(sink.snapshot())} of {len(items)}")
    return rate


Bench = Callable[[list[ev.Event], int, int], Awaitable[float]]


async def best(bench: Bench, items: list[ev.Event], consumers: int, batch: int, r: int) -> float:
    return max([await bench(items, consumers, batch) for _ in range(r)])


async def main(n: int, repeat: int) -> None:
    items = _make_events(n)
    print(f"{n:,} events, best of {repeat}; producer yields every <batch> events")
    print(f"{'case':<34}{'bus ev/s':>12}{'queue ev/s':>12}{'ratio':>8}")
    cases: list[tuple[str, Bench, int, int]] = [
        ("publish, MemorySink, batch 64", bus_memory_sink, 1, 64),
        ("publish, MemorySink, batch 256", bus_memory_sink, 1, 256),
        ("publish, MemorySink, batch 1024", bus_memory_sink, 1, 1024),
        ("1 stream consumer, batch 256", bus_streams, 1, 256),
        ("4 stream consumers, batch 256", bus_streams, 4, 256),
    ]
    for label, bench, consumers, batch in cases:
        rate = await best(bench, items, consumers, batch, repeat)
        floor = await best(queue_handoff, items, consumers, batch, repeat)
        print(f"{label:<34}{rate:>12,.0f}{floor:>12,.0f}{rate / floor:>8.2f}")


def profile(n: int) -> None:
    items = _make_events(n)
    profiler = cProfile.Profile()
    profiler.enable()
    asyncio.run(bus_streams(items, 4, 256))
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(12)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="cProfile 4 stream consumers")
    args = parser.parse_args()
    if args.profile:
        profile(args.events)
    else:
        asyncio.run(main(args.events, args.repeat))
