"""The floor: handing small objects from one coroutine to another in bare asyncio.

The same pattern as the `events` workloads without a framework: the producer puts M small
objects into an asyncio.Queue, yielding to the loop every `batch` objects (`floor`) or after
every one (`floor_yield`); one consumer task awaits them.
"""

from __future__ import annotations

import asyncio

from bench_common import Result, Sizes, Stopwatch, check


async def _consume(queue: asyncio.Queue[tuple[str, int]], m: int) -> int:
    received = 0
    get = queue.get
    for _ in range(m):
        await get()
        received += 1
    return received


async def _handoff(m: int, every: int) -> Result:
    items = [("tick", i) for i in range(m)]
    queue: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
    with Stopwatch() as watch:
        consumer = asyncio.create_task(_consume(queue, m))
        put = queue.put_nowait
        sleep = asyncio.sleep
        for i, item in enumerate(items, 1):
            put(item)
            if i % every == 0:
                await sleep(0)
        received = await consumer
    check(received == m, f"received {received} of {m}")
    return Result(received, watch.seconds)


async def floor(sizes: Sizes) -> Result:
    return await _handoff(sizes.events, sizes.batch)


async def floor_yield(sizes: Sizes) -> Result:
    return await _handoff(sizes.events, 1)


WORKLOADS = {"floor": floor, "floor_yield": floor_yield}
