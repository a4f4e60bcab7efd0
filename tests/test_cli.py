"""The weavegraph command: input parsing, JSON Lines, plain lines, the live view under a pty."""

from __future__ import annotations

import io
import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from weavegraph import Message, VersionedState
from weavegraph._cli import main, parse_input

ROOT = Path(__file__).resolve().parent.parent
HELLO = str(ROOT / "examples" / "01_hello.py") + ":app"


def test_parse_input_forms() -> None:
    assert parse_input(None) == VersionedState()
    assert parse_input("plain words") == VersionedState.with_user_message("plain words")
    assert parse_input('"a json string"') == VersionedState.with_user_message("a json string")
    state = parse_input(
        '{"messages": [{"role": "system", "content": "be brief"}], '
        '"input": "hi", "extra": {"k": 1}}'
    )
    assert state.messages == (Message.system("be brief"), Message.user("hi"))
    assert state.extra == {"k": 1}
    with pytest.raises(ValueError, match="unknown keys colour; use messages, extra or input"):
        parse_input('{"colour": 1}')
    with pytest.raises(ValueError, match="must be text or a JSON object; got list"):
        parse_input("[1, 2]")
    with pytest.raises(ValueError, match="extra must be a JSON object"):
        parse_input('{"extra": [1]}')


def normalized(line: str) -> dict[str, object]:
    data = json.loads(line)
    del data["timestamp"]
    data["metadata"].pop("session_id", None)
    data["metadata"].pop("duration_ms", None)
    for key in ("node_ms", "merge_ms", "checkpoint_ms"):
        data["metadata"].pop(key, None)
    data["message"] = re.sub(r"session=\w+", "session=S", data["message"])
    return data


def test_json_lines_are_exact() -> None:
    out = io.StringIO()
    assert main(["run", HELLO, "--input", "Hi there", "--json"], out=out) == 0
    lines = [normalized(line) for line in out.getvalue().splitlines()]
    assert [(d["id"], d["type"], d["scope"], d["message"]) for d in lines] == [
        (1, "diagnostic", "__weavegraph_run_started__", "run started: session=S frontier=greet"),
        (2, "diagnostic", "__weavegraph_step_started__", "step 1 started: greet"),
        (3, "diagnostic", "__weavegraph_node_started__", "node greet started"),
        (4, "node", "greeting", "Saying hi!"),
        (5, "diagnostic", "__weavegraph_node_finished__", "node greet finished"),
        (6, "diagnostic", "__weavegraph_step_finished__", "step 1 finished: ran greet"),
        (
            7,
            "diagnostic",
            "__weavegraph_run_finished__",
            "run finished: session=S status=completed step=1",
        ),
        (8, "diagnostic", "__weavegraph_stream_end__", "session=S status=completed step=1"),
    ]
    assert lines[3]["metadata"] == {"node_id": "greet", "step": 1}
    assert lines[-1]["metadata"] == {"step": 1, "status": "completed"}


def test_plain_lines_and_final_state() -> None:
    out = io.StringIO()
    assert main(["run", HELLO, "--input", "Hi there", "--plain"], out=out) == 0
    text = out.getvalue()
    assert " node [greet@1] greeting: Saying hi!\n" in text
    tail = text.split("\n\n", 1)[1].splitlines()
    assert tail[0].startswith("completed at step 1, 8 events, 0 dropped, ")
    assert tail[1:] == ["user: Hi there", "assistant: Hello! You asked: Hi there"]


def test_failures_exit_1_with_the_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = tmp_path / "failing.py"
    script.write_text(
        "from weavegraph import END, START, GraphBuilder\n"
        "async def boom(s, ctx):\n"
        "    raise RuntimeError('no luck')\n"
        "app = GraphBuilder().add_node('boom', boom).add_edge(START, 'boom')"
        ".add_edge('boom', END)\n"
    )
    out = io.StringIO()
    assert main(["run", f"{script}:app", "--plain"], out=out) == 1
    assert "error: node(node=boom, step=1): RuntimeError: no luck" in out.getvalue()
    assert out.getvalue().split("\n\n", 1)[1].startswith("error at step 1, 6 events, 0 dropped")
    assert capsys.readouterr().err == (
        "error: node 'boom' failed in step 1 after 1 attempt(s): RuntimeError: no luck\n"
    )


def test_graph_and_bad_targets(capsys: pytest.CaptureFixture[str]) -> None:
    out = io.StringIO()
    assert main(["graph", "weavegraph.demo:app"], out=out) == 0
    assert out.getvalue().startswith('flowchart TD\n    __start__(["START"])\n    n0["plan"]\n')
    dot = io.StringIO()
    assert main(["graph", "weavegraph.demo:build_app", "--format", "dot"], out=dot) == 0
    assert dot.getvalue().startswith("digraph weavegraph {")
    assert main(["graph", "weavegraph.demo:nothing"]) == 2
    assert "has no attribute 'nothing'" in capsys.readouterr().err
    assert main(["graph", "weavegraph.demo:QUESTION"]) == 2
    assert "is a str, not an App" in capsys.readouterr().err
    assert main(["run", "no_such_module_here"]) == 2
    assert "cannot import 'no_such_module_here'" in capsys.readouterr().err
    assert main(["run", "missing/file.py:app"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_live_view_under_a_pseudo_terminal() -> None:
    leader, follower = pty.openpty()
    env = {**os.environ, "COLUMNS": "120", "LINES": "50", "TERM": "xterm"}
    process = subprocess.Popen(
        [sys.executable, "-m", "weavegraph", "demo"],
        stdin=follower,
        stdout=follower,
        stderr=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    os.close(follower)
    chunks: list[bytes] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 1.0)
        if ready:
            try:
                data = os.read(leader, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif process.poll() is not None:
            break
    os.close(leader)
    assert process.wait(timeout=30) == 0
    assert process.stderr is not None
    with process.stderr:
        assert process.stderr.read() == b""
    raw = b"".join(chunks).decode("utf-8", "replace")
    assert "\x1b[" in raw  # drawn with terminal control codes
    screen = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", raw)
    assert "┃ node" in screen
    assert "session " in screen
    assert "running" in screen  # progress was shown while the run went on
    assert "completed at step 9, 120 events, 0 dropped" in screen
    assert "draft-2" in screen


def test_checkpoints_and_resume_after_a_failure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    marker = tmp_path / "broken"
    marker.write_text("yes")
    script = tmp_path / "flaky_flow.py"
    script.write_text(
        "from pathlib import Path\n"
        "from weavegraph import END, START, GraphBuilder, NodePartial\n"
        f"MARKER = Path({str(marker)!r})\n"
        "async def first(s, ctx):\n"
        "    return NodePartial(extra={'first': True})\n"
        "async def second(s, ctx):\n"
        "    if MARKER.exists():\n"
        "        raise RuntimeError('service down')\n"
        "    return NodePartial(extra={'second': True})\n"
        "app = (GraphBuilder().add_node('first', first).add_node('second', second)\n"
        "       .add_edge(START, 'first').add_edge('first', 'second').add_edge('second', END))\n"
    )
    db = str(tmp_path / "runs.sqlite")
    out = io.StringIO()
    target = f"{script}:app"
    assert main(["run", target, "--plain", "--checkpoints", db], out=out) == 1
    session = out.getvalue().splitlines()[-1].split()[1]
    assert "service down" in capsys.readouterr().err
    marker.unlink()
    again = io.StringIO()
    assert (
        main(["run", target, "--plain", "--checkpoints", db, "--resume", session], out=again) == 0
    )
    text = again.getvalue()
    assert "node first started" not in text  # step 1 was done: it does not run again
    assert "node second started" in text
    assert 'extra: {"first": true, "second": true}' in text
    assert text.splitlines()[-1] == f"session {session} is saved in {db}"
    assert main(["run", target, "--checkpoints", db, "--resume", "nope"], out=io.StringIO()) == 1


def test_serve_runs_the_web_server(tmp_path: Path) -> None:
    import signal

    import httpx

    from services import free_port, wait_for_health

    port = free_port()
    command = ["serve", HELLO, "--port", str(port), "--data-dir", str(tmp_path)]
    process = subprocess.Popen(
        [sys.executable, "-m", "weavegraph", *command],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for_health(base, process)
        created = httpx.post(f"{base}/runs", json={"input": "Hi"}, timeout=5)
        assert created.status_code == 201
        session = created.json()["session_id"]
        with httpx.stream("GET", f"{base}/runs/{session}/events", timeout=10) as response:
            lines = [line for line in response.iter_lines() if line.startswith("event:")]
        assert lines
        assert set(lines) == {"event: workflow-event"}
        assert httpx.get(f"{base}/graph", timeout=5).text.startswith("flowchart TD")
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert out.decode().startswith(f"serving 1 nodes on http://127.0.0.1:{port}/")
