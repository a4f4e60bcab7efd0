"""`make cluster`: PostgreSQL, Redis, two workers and one server on loopback, until Ctrl-C.

Starts throwaway PostgreSQL and Redis servers (nothing is kept), two `weavegraph worker`
processes and one `weavegraph serve` process of the demo graph, prints where to look, and on
Ctrl-C (or SIGTERM) stops them in reverse order: workers hand their runs back, servers close,
then the engines stop and their files are removed.

    python scripts/cluster.py [--port 3000] [--workers 2] [--target weavegraph.demo:app]
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from services import postgres_server, redis_server  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=3000, help="the server's port")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--target", default="weavegraph.demo:app", help="the graph to run")
    args = parser.parse_args()

    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    processes: list[subprocess.Popen[bytes]] = []
    with postgres_server() as postgres, redis_server() as redis:
        engines = ["--postgres", postgres.dsn, "--redis", redis.url]
        command = [sys.executable, "-m", "weavegraph"]
        # Own sessions: Ctrl-C reaches only this script, which stops each child once.
        try:
            for _ in range(args.workers):
                argv = [*command, "worker", args.target, *engines]
                processes.append(subprocess.Popen(argv, start_new_session=True))
            argv = [*command, "serve", args.target, *engines, "--port", str(args.port)]
            processes.append(subprocess.Popen(argv, start_new_session=True))
            print(
                f"\nPostgreSQL {postgres.dsn}\nRedis      {redis.url}\n"
                f"{args.workers} workers and a server: open http://127.0.0.1:{args.port}/ "
                "(Ctrl-C stops everything)\n",
                flush=True,
            )
            while not stopping and all(p.poll() is None for p in processes):
                time.sleep(0.2)
        finally:
            for process in reversed(processes):
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in reversed(processes):
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
    print("cluster stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
