"""Worker and server processes of a test cluster, started with the `weavegraph` command.

Each process runs `python -m weavegraph worker|serve tests/distributed/cluster_graph.py:app`
against the test's PostgreSQL database and Redis server; the fixture stops them all.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from services import ServiceError, free_port, wait_for_health

GRAPH_FILE = Path(__file__).with_name("cluster_graph.py")
TARGET = f"{GRAPH_FILE}:app"
GRAPH = "cluster-test"


@dataclass
class Cluster:
    """The database, Redis URL and the processes started so far."""

    dsn: str
    redis: str
    logdir: Path
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    servers: list[tuple[subprocess.Popen[bytes], str]] = field(default_factory=list)

    def _spawn(self, argv: list[str], name: str) -> subprocess.Popen[bytes]:
        env = dict(os.environ, WEAVEGRAPH_EFFECTS_DSN=self.dsn, PYTHONUNBUFFERED="1")
        command = [sys.executable, "-m", "weavegraph", *argv]
        with open(self.logdir / f"{name}.log", "wb") as log:  # the child keeps its own copy
            return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)

    def start_worker(self, *, concurrency: int = 4, lease: float = 1.5) -> subprocess.Popen[bytes]:
        """A worker process of the test graph (short lease, so takeovers are quick)."""
        argv = [
            "worker", TARGET, "--graph", GRAPH, "--postgres", self.dsn, "--redis", self.redis,
            "--concurrency", str(concurrency), "--lease", str(lease), "--poll", "0.5",
        ]  # fmt: skip
        process = self._spawn(argv, f"worker-{len(self.workers)}")
        self.workers.append(process)
        return process

    def start_server(self) -> str:
        """A server process; returns its base URL once /health answers."""
        port = free_port()
        argv = [
            "serve", TARGET, "--graph", GRAPH, "--postgres", self.dsn, "--redis", self.redis,
            "--port", str(port),
        ]  # fmt: skip
        process = self._spawn(argv, f"server-{len(self.servers)}")
        base = f"http://127.0.0.1:{port}"
        try:
            wait_for_health(base, process)
        except ServiceError as exc:
            raise ServiceError(f"{exc}:\n{self.log('server', len(self.servers))}") from None
        self.servers.append((process, base))
        return base

    def log(self, kind: str, index: int) -> str:
        """What a process printed so far."""
        return (self.logdir / f"{kind}-{index}.log").read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM every worker and SIGINT every server (uvicorn re-raises a SIGTERM after its
        shutdown, so the process would end without running its exit handlers), then SIGKILL
        what is still there after 15 s."""
        processes = [*self.workers, *(p for p, _ in self.servers)]
        for process in processes:
            if process.poll() is None:
                server = process not in self.workers
                process.send_signal(signal.SIGINT if server else signal.SIGTERM)
        deadline = time.monotonic() + 15
        for process in processes:
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
