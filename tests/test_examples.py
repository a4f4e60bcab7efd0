"""Every example runs on its own and prints what its docstring promises."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def run(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return done.stdout


def test_01_hello() -> None:
    assert run(str(EXAMPLES / "01_hello.py")) == (
        "event: [greet] greeting: Saying hi!\n"
        "user: Hi?\n"
        "assistant: Hello! You asked: Hi?\n"
        "versions: {'messages': 2, 'extra': 1, 'errors': 1}\n"
    )


def test_02_conditional_routing() -> None:
    out = run(str(EXAMPLES / "02_conditional_routing.py")).splitlines()
    assert out[:3] == [
        "'I want a refund' -> refunds: A refund form is on its way.",
        "'The app shows an error' -> engineering: Engineering will look at the error.",
        "'Hello there' -> frontdesk: Thanks, we will get back to you.",
    ]
    assert out[3] == "flowchart TD"
    assert '    n0 -.->|"route: refund"| n1' in out


def test_03_fanout_join() -> None:
    assert run(str(EXAMPLES / "03_fanout_join.py")) == (
        "finished in order: slow_start, middle, fast_start\n"
        "merged in order:   fast_start done, middle done, slow_start done\n"
        "combine ran once, in step 2\n"
    )


def test_04_errors_and_retries() -> None:
    assert run(str(EXAMPLES / "04_errors_and_retries.py")) == (
        "failed node: summarize (step 2)\n"
        "cause: TimeoutError: node 'summarize' timed out after 0.05 s\n"
        "fetch succeeded on attempt 3\n"
        "node(node=summarize, step=2): TimeoutError: node 'summarize' timed out after 0.05 s\n"
        "     tags: timeout\n"
        '     context: {"attempts": 2}\n'
    )


def test_streaming_events() -> None:
    lines = run(str(EXAMPLES / "streaming_events.py")).splitlines()
    assert lines[:8] == [
        "#1 node       thinking                   'reading the question'",
        "#2 llm        chunk                      'Events '",
        "#3 llm        chunk                      'arrive '",
        "#4 llm        chunk                      'while '",
        "#5 llm        chunk                      'the '",
        "#6 llm        chunk                      'run '",
        "#7 llm        chunk                      'works. '",
        "#8 llm        final                      'Events arrive while the run works.'",
    ]
    assert lines[8].startswith("#9 diagnostic __weavegraph_stream_end__  'session=")
    assert lines[8].endswith(" status=completed step=2'")
    assert lines[9:] == ["final: Events arrive while the run works."]


def test_convenience_streaming() -> None:
    assert run(str(EXAMPLES / "convenience_streaming.py")) == (
        "channel: 10 events, progress ['1/3', '2/3', '3/3'], counted=3\n"
        "queue sink: 10 events\n"
        "jsonl sink: 10 lines; first is diagnostic __weavegraph_run_started__\n"
    )


def test_event_backpressure() -> None:
    assert run(str(EXAMPLES / "event_backpressure.py")) == (
        "published: 1000\n"
        "plain reader: 1 delivered + 999 dropped = 1000\n"
        "gap first: True, missed ids 1..999 (999 events)\n"
        "lossless reader: 1000 delivered, ids 1..1000\n"
        "bus total dropped: 999\n"
    )


def test_sink_diagnostics() -> None:
    out = run(str(EXAMPLES / "sink_diagnostics.py"))
    head, _, report = out.partition("{")
    assert head.splitlines() == [
        "memory sink got 6 events; flaky sink wrote 3",
        "sink 'postgres_events_sink' error #1: ConnectionError: insert of event 2 refused",
        "sink 'postgres_events_sink' error #2: ConnectionError: insert of event 4 refused",
        "sink 'postgres_events_sink' error #3: ConnectionError: insert of event 6 refused",
    ]
    assert json.loads("{" + report) == {
        "status": "degraded",
        "sinks": [
            {
                "name": "postgres_events_sink",
                "errors": 3,
                "last_error": "ConnectionError: insert of event 6 refused",
            },
            {"name": "memory", "errors": 0, "last_error": None},
        ],
    }


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.py")), ids=lambda p: p.name)
def test_every_example_has_a_run_line(path: Path) -> None:
    assert f"Run: python examples/{path.name}" in path.read_text()


def test_demo_streams_every_kind_of_event(tmp_path: Path) -> None:
    db = tmp_path / "demo.sqlite"
    lines = run("-m", "weavegraph", "demo", "--checkpoints", str(db)).splitlines()
    started = [line for line in lines if "__weavegraph_node_started__" in line]
    assert sum(line.endswith("node synthesize started") for line in started) == 1
    assert sum(line.endswith("node draft started") for line in started) == 3
    assert [line.split("]")[0] for line in lines if line.startswith("[draft-")] == [
        "[draft-0",
        "[draft-1",
        "[draft-2",
    ]
    assert any("review: draft covers 4/4 findings: accept" in line for line in lines)
    ends = [line for line in lines if "__weavegraph_stream_end__" in line]
    assert len(ends) == 1
    assert ends[0].endswith("status=completed step=9")
    assert lines[lines.index("") + 1].startswith("completed at step 9, 120 events, 0 dropped")
    assert lines[-1].startswith("session ")
    assert lines[-1].endswith(f" is saved in {db}")
    assert db.exists()


def test_demo_in_process(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    from weavegraph import demo
    from weavegraph.__main__ import main

    db = str(tmp_path / "d.sqlite")
    assert main(["demo", "--input", "Why barriers?", "--plain", "--checkpoints", db]) == 0
    out = capsys.readouterr().out
    assert "plan: planning searches for: Why barriers?" in out
    answer = " ".join(n for s in demo.SOURCES.values() for n in s)
    assert f"assistant: {answer}" in out.splitlines()
