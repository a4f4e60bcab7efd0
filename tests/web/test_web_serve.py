"""The example server in its own process: curl -N as docs/web.md shows it, and shutdown."""

from __future__ import annotations

import json
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "web_server.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def example_server(*args: str) -> Iterator[tuple[int, subprocess.Popen[str]]]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, str(EXAMPLE), "--port", str(port), "--memory", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:  # a separate process: its readiness can only be polled
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                    break
            except OSError:
                assert process.poll() is None, process.communicate()
                assert time.monotonic() < deadline, "the example server did not start"
                time.sleep(0.05)
        yield port, process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


def post_run(port: int, text: str) -> str:
    request = urllib.request.Request(
        f"http://localhost:{port}/runs",
        data=json.dumps({"input": text}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 201
        run_id: str = json.load(response)["session_id"]
        return run_id


def stream_text(port: int, path: str) -> str:
    """`curl -N` the stream (or read the socket the same way if curl is missing)."""
    if shutil.which("curl"):
        done = subprocess.run(
            ["curl", "-sN", f"http://localhost:{port}{path}"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        return done.stdout
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(
            f"GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode()
        )
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    body = raw.split(b"\r\n\r\n", 1)[1]
    text, rest = b"", body  # undo the chunked transfer encoding
    while rest:
        size, rest = rest.split(b"\r\n", 1)
        text, rest = text + rest[: int(size, 16)], rest[int(size, 16) + 2 :]
    return text.decode()


def frames(text: str) -> list[list[str]]:
    return [block.splitlines() for block in text.strip().split("\n\n")]


def test_curl_shows_event_id_and_data_lines() -> None:
    with example_server("--pace", "0.01") as (port, process):
        run_id = post_run(port, "What is a superstep?")
        text = stream_text(port, f"/runs/{run_id}/events")
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) == 0
        out, err = process.communicate()
    blocks = frames(text)
    assert blocks[0] == ["retry: 1000"]
    ids = []
    for number, block in enumerate(blocks[1:], 1):
        assert [line.split(": ", 1)[0] for line in block] == ["event", "id", "data"]
        assert block[0] == "event: workflow-event"
        assert block[1] == f"id: {number}"
        event = json.loads(block[2].removeprefix("data: "))
        assert event["id"] == number
        ids.append(number)
    first = json.loads(blocks[1][2][6:])
    last = json.loads(blocks[-1][2][6:])
    assert first["scope"] == "__weavegraph_run_started__"
    assert last["scope"] == "__weavegraph_stream_end__"
    assert last["metadata"]["status"] == "completed"
    assert out.startswith(f"weavegraph web server on http://127.0.0.1:{port}/")
    assert err == ""


def test_stopping_the_server_cancels_runs_and_ends_their_streams() -> None:
    with example_server("--pace", "5") as (port, process):
        run_id = post_run(port, "slow")
        curl = subprocess.Popen(
            ["curl", "-sN", f"http://localhost:{port}/runs/{run_id}/events"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert curl.stdout is not None
        while "__weavegraph_node_started__" not in curl.stdout.readline():
            pass
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        rest = curl.communicate(timeout=15)[0]
        # After its graceful shutdown uvicorn re-raises the signal, as a stopped process should.
        assert process.wait(timeout=15) == -signal.SIGTERM
        assert time.monotonic() - started < 5  # not waiting for the 5 s step to finish
    last = frames(rest)[-1]
    end = json.loads(last[2][6:])
    assert end["scope"] == "__weavegraph_stream_end__"
    assert end["metadata"]["status"] == "cancelled"


async def test_serve_refuses_app_options_for_a_ready_made_app() -> None:
    from weavegraph.demo import app
    from weavegraph.web import InMemoryEventLog, create_app, serve

    with pytest.raises(TypeError, match=r"options \['capacity'\] apply only when serving an App"):
        await serve(create_app(app, event_log=InMemoryEventLog()), capacity=8)
