"""Throwaway PostgreSQL and Redis servers for tests, on free loopback ports.

Each service is a context manager that starts only what it owns and stops only that. As root,
PostgreSQL runs as the `postgres` OS user (it refuses to run as root) from a fresh data
directory under /tmp; the socket goes into the data directory because /var/run/postgresql may
not exist. Nothing listens beyond 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shlex
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "PostgresServer",
    "RedisServer",
    "ServiceError",
    "free_port",
    "postgres_server",
    "redis_server",
    "wait_for_health",
]

INSTALL_HINT = (
    "run `make test` (it installs the system packages) or apt-get install postgresql redis-server"
)


class ServiceError(RuntimeError):
    """A test service is not installed or did not start."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_health(base: str, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Return once ``GET {base}/health`` answers 200; fail if `process` exits first."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise ServiceError(f"the server at {base} did not come up")
        time.sleep(0.05)


def _postgres_bin() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    if not candidates:
        raise ServiceError(
            f"PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/pg_ctl); {INSTALL_HINT}"
        )
    return Path(candidates[0]).parent


class PostgresServer:
    """A PostgreSQL cluster of its own: `initdb` into a temp dir, `pg_ctl start`, `stop()`.

    Attributes:
        port: the loopback port it listens on.
        dsn: a libpq connection string to its `postgres` database as the `postgres` user.
    """

    def __init__(self) -> None:
        self.bin = _postgres_bin()
        self.port = free_port()
        self.datadir = Path(tempfile.mkdtemp(prefix="weavegraph-pg-"))
        self.dsn = f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"
        self._started = False

    def dsn_for(self, dbname: str) -> str:
        """The connection string of another database of this server."""
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={dbname}"

    def _as_postgres(self, *argv: str, timeout: float = 60) -> None:
        command = " ".join(shlex.quote(arg) for arg in argv)
        if os.geteuid() == 0:
            argv = ("su", "postgres", "-s", "/bin/sh", "-c", command)
        # From /tmp: the postgres user may not be allowed into the caller's working directory.
        done = subprocess.run(argv, cwd="/tmp", capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise ServiceError(
                f"`{command}` failed ({done.returncode}):\n{done.stderr}{done.stdout}"
            )

    def start(self) -> None:
        """Create the cluster and start the server; returns once it accepts connections."""
        if os.geteuid() == 0:
            shutil.chown(self.datadir, "postgres", "postgres")
        self._as_postgres(
            str(self.bin / "initdb"), "-D", str(self.datadir), "--auth=trust", "-U", "postgres"
        )
        options = f"-p {self.port} -k {self.datadir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_postgres(
            str(self.bin / "pg_ctl"), "-D", str(self.datadir), "-l", str(self.datadir / "log"),
            "-o", options, "-w", "start",
        )  # fmt: skip
        self._started = True
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        argv = [str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"]
        while subprocess.run(argv, check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise ServiceError(f"PostgreSQL on port {self.port} not ready after {timeout} s")
            time.sleep(0.05)

    def stop(self) -> None:
        """Stop the server (if this object started it) and remove its data directory."""
        try:
            if self._started:
                self._started = False
                self._as_postgres(
                    str(self.bin / "pg_ctl"), "-D", str(self.datadir), "-m", "fast", "-w", "stop"
                )
        finally:
            shutil.rmtree(self.datadir, ignore_errors=True)


@contextlib.contextmanager
def postgres_server() -> Iterator[PostgresServer]:
    """A started throwaway PostgreSQL server, stopped and removed on exit."""
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.stop()


class RedisServer:
    """A Redis server of its own on a loopback port, without persistence.

    `stop()` shuts it down (its data is gone); `start()` again on the same port is a restart.

    Attributes:
        port: the loopback port it listens on.
        url: its ``redis://`` URL.
    """

    def __init__(self) -> None:
        found = shutil.which("redis-server")
        if found is None:
            raise ServiceError(f"Redis is not installed (no redis-server); {INSTALL_HINT}")
        self.binary = found
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = Path(tempfile.mkdtemp(prefix="weavegraph-redis-"))
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10) -> None:
        """Start the server; returns once it accepts connections."""
        argv = [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(self.workdir),
            "--logfile", str(self.workdir / "redis.log"),
        ]  # fmt: skip
        self._process = subprocess.Popen(argv, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock,
            ):
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return
            if self._process.poll() is not None or time.monotonic() > deadline:
                log = (self.workdir / "redis.log").read_text(errors="replace")[-2000:]
                self.stop()
                raise ServiceError(f"Redis on port {self.port} did not start:\n{log}")
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop the server (its data is lost); the working directory stays for a restart."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def remove(self) -> None:
        """Stop the server and remove its working directory."""
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


@contextlib.contextmanager
def redis_server() -> Iterator[RedisServer]:
    """A started throwaway Redis server, stopped and removed on exit."""
    server = RedisServer()
    try:
        server.start()
        yield server
    finally:
        server.remove()
