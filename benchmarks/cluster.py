"""Runs through the PostgreSQL queue with 1, 2 and 4 workers; event latency across processes.

Run: ``python benchmarks/cluster.py [--runs N] [--workers 1,2,4] [--concurrency C]``

Starts a throwaway PostgreSQL and Redis on loopback (as the tests do), then:

1. **baseline**: the same 10-node graph run by one in-process `AppRunner` with the same
   PostgreSQL checkpointer and event log, `C` runs at a time (and, for scale, `App.invoke`
   in memory);
2. **queue**: for each worker count, a fresh database, that many `weavegraph worker`
   processes, `N` runs enqueued at once; runs/s from the first enqueue until the queue is
   empty, checked run by run (every run succeeded, its counter is 10); Redis commands per
   event from ``INFO commandstats`` before and after;
3. **latency**: one worker runs a node that emits an event every 5 ms with its wall-clock
   time; an SSE client on server B follows the run submitted to server A; p50/p99 of
   receipt minus emission.

Rows go to stdout and to ``benchmarks/results/cluster.jsonl``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
import psycopg  # noqa: E402
from bench_common import check  # noqa: E402
from psycopg.conninfo import make_conninfo  # noqa: E402

from services import free_port, postgres_server, redis_server  # noqa: E402

GRAPH = Path(__file__).with_name("cluster_graph.py")
RESULTS = Path(__file__).with_name("results") / "cluster.jsonl"


def fresh_database(admin: str, name: str) -> str:
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return make_conninfo(admin, dbname=name)


def spawn(argv: list[str]) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "weavegraph", *argv]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(processes: list[subprocess.Popen[bytes]], sig: int = signal.SIGTERM) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(sig)
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def cpu_seconds(pids: dict[str, list[int]] | None = None) -> dict[str, float]:
    """CPU seconds used so far by the PostgreSQL and Redis servers and by `pids` (per name),
    read from /proc: where the time of a phase went."""
    tick = os.sysconf("SC_CLK_TCK")
    totals: dict[str, float] = {"postgres": 0.0, "redis": 0.0}
    owners = {pid: name for name, group in (pids or {}).items() for pid in group}
    for name in owners.values():
        totals[name] = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        used = (int(fields[11]) + int(fields[12])) / tick
        pid = int(entry.name)
        if pid in owners:
            totals[owners[pid]] += used
        elif comm.startswith("postgres"):
            totals["postgres"] += used
        elif comm.startswith("redis-server"):
            totals["redis"] += used
    return totals


def cpu_share(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {f"cpu_s_{name}": round(after[name] - before.get(name, 0.0), 2) for name in after}


async def redis_calls(url: str) -> int:
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        stats = await client.info("commandstats")
    finally:
        await client.aclose()
    return sum(
        int(value["calls"])
        for name, value in stats.items()
        if name not in ("cmdstat_info", "cmdstat_flushall", "cmdstat_ping")
    )


async def baseline(dsn: str, runs: int, concurrency: int) -> dict[str, float]:
    from cluster_graph import app

    from weavegraph import VersionedState
    from weavegraph.checkpoint import PostgresCheckpointer, PostgresEventLog

    started = time.perf_counter()
    for _ in range(runs):
        state = await app.invoke(VersionedState())
        check(state.extra["count"] == 10, "in-memory run miscounted")
    memory = runs / (time.perf_counter() - started)
    async with PostgresCheckpointer(dsn) as store, PostgresEventLog(dsn) as log:
        gate = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with gate, app.runner(checkpointer=store, event_log=log) as runner:
                session = await runner.create_session(VersionedState())
                final = await runner.run_until_complete(session)
                check(final.extra["count"] == 10, "runner run miscounted")

        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(runs)))
        postgres = runs / (time.perf_counter() - started)
    return {"memory_runs_per_s": memory, "postgres_runs_per_s": postgres}


async def through_queue(
    admin: str, redis: str, workers: int, runs: int, concurrency: int
) -> dict[str, float]:
    from weavegraph import VersionedState
    from weavegraph.checkpoint import PostgresCheckpointer, PostgresEventLog
    from weavegraph.distributed import RunQueue

    dsn = fresh_database(admin, f"bench_queue_{workers}")
    async with RunQueue(dsn) as queue:  # migrate before the workers start
        pass
    argv = ["worker", f"{GRAPH}:app", "--graph", "bench", "--postgres", dsn, "--redis", redis]
    argv += ["--concurrency", str(concurrency), "--poll", "0.5"]
    processes = [spawn(argv) for _ in range(workers)]
    try:
        async with RunQueue(dsn) as queue:
            while len((await queue.stats("bench")).workers) < workers:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            calls = await redis_calls(redis)
            cpu = cpu_seconds({"workers": [p.pid for p in processes]})
            started = time.perf_counter()
            empty = VersionedState().to_dict()
            ids = [(await queue.enqueue("bench", empty)).id for _ in range(runs)]
            while True:
                stats = await queue.stats("bench")
                if stats.queued == 0 and stats.running == 0:
                    break
                await asyncio.sleep(0.01)
            elapsed = time.perf_counter() - started
            cpu = cpu_share(cpu, cpu_seconds({"workers": [p.pid for p in processes]}))
            calls = await redis_calls(redis) - calls
            outcomes = [await queue.get(run_id) for run_id in ids]
            failed = [r for r in outcomes if r is None or r.status != "succeeded"]
            check(not failed, f"{len(failed)} runs failed; first: {failed[:1]}")
        async with PostgresCheckpointer(dsn) as store, PostgresEventLog(dsn) as log:
            events = 0
            for run_id in ids:
                latest = await store.load_latest(run_id)
                check(latest is not None and latest.state.extra["count"] == 10, "miscounted")
                events += await log.last_id(run_id)
    finally:
        stop(processes)
    return {
        "runs_per_s": runs / elapsed,
        "seconds": elapsed,
        "events": events,
        "redis_commands_per_event": calls / events,
        **cpu,
    }


async def latency(admin: str, redis: str, count: int) -> dict[str, float]:
    dsn = fresh_database(admin, "bench_latency")
    engines = ["--graph", "paced", "--postgres", dsn, "--redis", redis]
    target = f"{GRAPH}:paced"
    ports = [free_port(), free_port()]
    processes = [spawn(["worker", target, *engines, "--poll", "0.5"])]
    processes += [spawn(["serve", target, *engines, "--port", str(p)]) for p in ports]
    a, b = (f"http://127.0.0.1:{p}" for p in ports)
    delays: list[float] = []
    try:
        async with httpx.AsyncClient(timeout=30) as client:
            for base in (a, b):
                while True:
                    try:
                        if (await client.get(f"{base}/health")).status_code == 200:
                            break
                    except httpx.HTTPError:
                        await asyncio.sleep(0.05)
            body = {"state": {"extra": {"events": count, "interval": 0.005}}}
            run_id = (await client.post(f"{a}/runs", json=body)).json()["session_id"]
            async with client.stream("GET", f"{b}/runs/{run_id}/events") as response:
                async for line in response.aiter_lines():
                    if not line.startswith("data: "):
                        continue
                    event: dict[str, Any] = json.loads(line[6:])
                    if event["scope"] == "tick":
                        delays.append(time.time() - event["metadata"]["sent"])
                    if event["scope"] == "__weavegraph_stream_end__":
                        break
    finally:
        stop(processes[:1])
        stop(processes[1:], signal.SIGINT)
    check(len(delays) == count, f"received {len(delays)} of {count} events")
    delays.sort()
    return {
        "p50_ms": statistics.median(delays) * 1000,
        "p99_ms": delays[min(len(delays) - 1, int(len(delays) * 0.99))] * 1000,
    }


async def main(args: argparse.Namespace) -> None:
    rows: list[dict[str, Any]] = []
    with postgres_server() as pg, redis_server() as redis:
        base = await baseline(fresh_database(pg.dsn, "bench_base"), args.runs, args.concurrency)
        rows.append({"workload": "single process", **base})
        print(
            f"single process: {base['postgres_runs_per_s']:8.1f} runs/s with PostgreSQL "
            f"checkpoints and log ({base['memory_runs_per_s']:.0f} runs/s in memory)",
            flush=True,
        )
        for workers in args.workers:
            row = await through_queue(pg.dsn, redis.url, workers, args.runs, args.concurrency)
            rows.append({"workload": f"queue, {workers} worker(s)", **row})
            ratio = row["runs_per_s"] / base["postgres_runs_per_s"]
            print(
                f"{workers} worker(s):    {row['runs_per_s']:8.1f} runs/s "
                f"({ratio:.2f}x the single process), "
                f"{row['redis_commands_per_event']:.3f} Redis commands per event; CPU s over "
                f"{row['seconds']:.1f} s: PostgreSQL {row['cpu_s_postgres']}, workers "
                f"{row['cpu_s_workers']}, Redis {row['cpu_s_redis']}",
                flush=True,
            )
        lat = await latency(pg.dsn, redis.url, args.events)
        rows.append({"workload": "latency worker -> SSE on another server", **lat})
        print(f"latency emit -> SSE client: p50 {lat['p50_ms']:.2f} ms, p99 {lat['p99_ms']:.2f} ms")
    RESULTS.parent.mkdir(exist_ok=True)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    with RESULTS.open("w") as out:
        for row in rows:
            out.write(json.dumps({"at": stamp, "cores": os.cpu_count(), **row}) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="runs per measurement")
    parser.add_argument("--concurrency", type=int, default=8, help="runs at once per worker")
    parser.add_argument("--events", type=int, default=400, help="events of the latency run")
    parser.add_argument(
        "--workers",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[1, 2, 4],
        help="worker counts, comma-separated",
    )
    asyncio.run(main(parser.parse_args()))
