"""SSE fan-out over loopback: weavegraph's `sse_response` beside bare Starlette, in one run.

Run: ``python benchmarks/sse_fanout.py [--events N] [--fanout-events N] [--repeat R]``

A uvicorn server in a child process serves three endpoints with the same frames:

- ``wg``: ``sse_response(bus.subscribe())`` on a shared `EventBus` (what `create_app` uses);
- ``bare``: the floor, a plain Starlette ``StreamingResponse`` yielding pre-encoded frames
  from one ``asyncio.Queue`` per client (the producer puts each frame into every queue);
- ``sse-starlette``: ``EventSourceResponse`` fed the same way, for reference.

Clients (raw sockets in this process, counting frames in C, so they cost little) connect,
then the server publishes events as fast as it can (yielding to the loop every 64): the
figure is events/s delivered per client and in total. A second, paced phase measures the
latency from emission (the event's timestamp) to receipt: p50 and p99. Each throughput
figure is the best of `--repeat` runs; the ratio is bare / wg (above 1: we are faster).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

try:
    import weavegraph  # noqa: F401
except ImportError:  # run from a checkout without installing the package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

MODES = ("wg", "bare", "sse-starlette")
SRC = str(Path(__file__).resolve().parents[1] / "src")
END = b"__weavegraph_stream_end__"


# -- the server (child process) ---------------------------------------------------------------


class BenchServer:
    """The three endpoints and the producer, controlled over HTTP by the parent process."""

    def __init__(self) -> None:
        from weavegraph import EventBus

        self.bus = EventBus(capacity=4096)
        self.queues: list[asyncio.Queue[Any]] = []
        self.ready = asyncio.Event()
        self.clients = self.count = 0

    def app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.routing import Route

        routes = [
            Route("/events/{mode}", self.events),
            Route("/prepare", self.prepare, methods=["POST"]),
            Route("/emit", self.emit, methods=["POST"]),
        ]
        return Starlette(routes=routes)

    async def events(self, request: Any) -> Any:
        from sse_starlette.sse import EventSourceResponse
        from starlette.responses import StreamingResponse

        from weavegraph.web import sse_response

        mode = request.path_params["mode"]
        self.count += 1
        if self.count == self.clients:
            self.ready.set()
        if mode == "wg":
            return sse_response(self.bus.subscribe(), ping=None)
        queue: asyncio.Queue[Any] = asyncio.Queue()
        self.queues.append(queue)
        if mode == "bare":
            return StreamingResponse(frames(queue), media_type="text/event-stream")
        return EventSourceResponse(dicts(queue), ping=3600)

    async def prepare(self, request: Any) -> Any:
        from starlette.responses import JSONResponse

        from weavegraph import EventBus

        await self.bus.stop()
        self.bus, self.queues, self.ready = EventBus(capacity=4096), [], asyncio.Event()
        self.clients, self.count = int(request.query_params["clients"]), 0
        return JSONResponse({})

    async def emit(self, request: Any) -> Any:
        """Publish n events (then STREAM_END) as fast as possible, or at `rate` a second."""
        from starlette.responses import JSONResponse

        mode, n = request.query_params["mode"], int(request.query_params["n"])
        rate = float(request.query_params.get("rate", "0"))
        await self.ready.wait()
        await asyncio.sleep(0.2)  # let every response start
        loop = asyncio.get_running_loop()
        started, start = time.time(), loop.time()
        for i in range(1, n + 2):
            self.publish(mode, i, last=i > n)
            if rate:
                await asyncio.sleep(max(0.0, start + i / rate - loop.time()))
            elif i % 64 == 0:
                await asyncio.sleep(0)
        for queue in self.queues:
            queue.put_nowait(None)
        return JSONResponse({"started": started})

    def publish(self, mode: str, i: int, *, last: bool) -> None:
        from weavegraph import STREAM_END_SCOPE, Event

        if last:
            event = Event.diagnostic(STREAM_END_SCOPE, "status=completed")
        else:
            event = Event.node("bench", f"payload {i}", node_id="n", step=1)
        if mode == "wg":
            self.bus.publish(event)
            return
        event.id = i  # the floor does what the bus and sse_response do: one encoding per event
        data = event.to_json()
        item: Any = (i, data)
        if mode == "bare":
            item = b"event: workflow-event\nid: %d\ndata: %s\n\n" % (i, data.encode())
        for queue in self.queues:
            queue.put_nowait(item)


async def frames(queue: asyncio.Queue[bytes | None]) -> Any:
    """The bare endpoint's body: frames as they come."""
    while (frame := await queue.get()) is not None:
        yield frame


async def dicts(queue: asyncio.Queue[tuple[int, str] | None]) -> Any:
    """sse-starlette's body: it encodes the frames itself."""
    while (item := await queue.get()) is not None:
        yield {"event": "workflow-event", "id": str(item[0]), "data": item[1]}


def serve(port: int) -> None:
    import uvicorn

    uvicorn.run(BenchServer().app(), host="127.0.0.1", port=port, log_level="error", lifespan="off")


# -- the clients (this process) ---------------------------------------------------------------


async def http(port: int, method: str, path: str) -> dict[str, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"{method} {path} HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n".encode())
    raw = await reader.read()
    writer.close()
    await writer.wait_closed()
    body = raw.split(b"\r\n\r\n", 1)[1]
    result: dict[str, Any] = json.loads(body)
    return result


async def client(port: int, mode: str, latency: bool) -> tuple[int, float, list[float]]:
    """Read one stream to its end: (frames, time of the last, emit-to-receipt delays)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET /events/{mode} HTTP/1.1\r\nHost: b\r\n\r\n".encode())
    count, delays, tail = 0, [], b""
    while True:
        chunk = await reader.read(1 << 18)
        if not chunk:
            break
        now = time.time()
        count += chunk.count(b"\nid: ")
        if latency:
            text = tail + chunk
            cut = text.rfind(b"\n\n")
            text, tail = text[:cut], text[cut:]
            for piece in text.split(b'"timestamp":"')[1:]:
                stamp = datetime.fromisoformat(piece[:27].decode())
                delays.append(now - stamp.timestamp())
        if END in chunk[-400:] or END in (tail[-400:] if latency else b""):
            break
    done = time.time()
    writer.close()
    await writer.wait_closed()
    return count, done, delays


async def scenario(
    port: int, mode: str, clients: int, n: int, rate: float = 0.0
) -> tuple[float, list[float]]:
    """Events/s per client (or the delays, when paced) for one mode."""
    await http(port, "POST", f"/prepare?clients={clients}")
    # Every 10th client times the events (timing all would load this process more than the
    # server's): spread over the wake order, so the sample is fair.
    tasks = [
        asyncio.create_task(client(port, mode, rate > 0 and index % 10 == 0))
        for index in range(clients)
    ]
    emitted = await http(port, "POST", f"/emit?mode={mode}&n={n}&rate={rate}")
    results = await asyncio.gather(*tasks)
    counts = {count for count, _, _ in results}
    assert counts == {n + 1}, f"{mode}: clients got {sorted(counts)} frames, expected {n + 1}"
    elapsed = max(done for _, done, _ in results) - emitted["started"]
    return n / elapsed, [d for _, _, delays in results for d in delays]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def main(args: argparse.Namespace) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": SRC}
    child = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--serve", str(port), env=env
    )
    try:
        for _ in range(200):
            try:
                await http(port, "POST", "/prepare?clients=0")
                break
            except OSError:
                await asyncio.sleep(0.05)
        print(
            f"SSE fan-out over loopback (uvicorn, h11), best of {args.repeat}; clients in "
            "one process, server in another"
        )
        for clients, n, rate in (
            (1, args.events, args.latency_rate),
            (100, args.fanout_events, args.latency_rate / 20),
        ):
            rates: dict[str, list[float]] = {mode: [] for mode in MODES}
            p50s: dict[str, list[float]] = {mode: [] for mode in MODES}
            p99s: dict[str, list[float]] = {mode: [] for mode in MODES}
            for _ in range(args.repeat):  # modes interleaved, so drift hits them alike
                for mode in MODES:
                    rates[mode].append((await scenario(port, mode, clients, n))[0])
                    paced = int(rate * args.latency_seconds)
                    delays = (await scenario(port, mode, clients, paced, rate))[1]
                    p50s[mode].append(statistics.median(delays))
                    p99s[mode].append(percentile(delays, 0.99))
            best = {mode: max(values) for mode, values in rates.items()}
            print(
                f"\n{clients} client(s): {n} events as fast as possible, best events/s per "
                f"client (total); then {rate:,.0f} events/s for {args.latency_seconds:g} s, "
                "median over the repeats of p50 and p99 emit -> receipt"
            )
            for mode in MODES:
                p50, p99 = statistics.median(p50s[mode]), statistics.median(p99s[mode])
                bare50, bare99 = statistics.median(p50s["bare"]), statistics.median(p99s["bare"])
                print(
                    f"  {mode:14} {best[mode]:>9,.0f} ({best[mode] * clients:>10,.0f})"
                    f"  x{best['bare'] / best[mode]:.2f} of bare time"
                    f"   p50 {p50 * 1e3:5.2f} ms (x{p50 / bare50:.2f})"
                    f"   p99 {p99 * 1e3:5.2f} ms (x{p99 / bare99:.2f})"
                )
    finally:
        child.terminate()
        await child.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000, help="events for 1 client")
    parser.add_argument("--fanout-events", type=int, default=2000, help="events for 100 clients")
    parser.add_argument(
        "--latency-rate", type=float, default=1000, help="paced events/s to 1 client (100: /20)"
    )
    parser.add_argument("--latency-seconds", type=float, default=3.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve:
        serve(arguments.serve)
    else:
        asyncio.run(main(arguments))
