"""The shipped sinks: StdOutSink, MemorySink, ChannelSink, JsonLinesSink, LoggingSink."""

from __future__ import annotations

import asyncio
import io
import logging
import queue
from pathlib import Path

import pytest

from weavegraph.events import (
    ChannelSink,
    Event,
    EventBus,
    EventSink,
    JsonLinesSink,
    LoggingSink,
    MemorySink,
    StdOutSink,
    render_event,
)

TS = 1_767_323_045_006_007  # 2026-01-02T03:04:05.006007Z


def sample() -> list[Event]:
    return [
        Event("node", "greeting", "Saying hi!", node_id="greet", step=1, ts_us=TS),
        Event("node", "greeting", "no step", node_id="greet", ts_us=TS),
        Event("diagnostic", "__weavegraph_stream_end__", "status=completed", ts_us=TS),
        Event("llm", "chunk", "two\nlines", stream_id="s-1", ts_us=TS),
    ]


def test_render_event_lines() -> None:
    assert [render_event(e) for e in sample()] == [
        "03:04:05.006 node [greet@1] greeting: Saying hi!",
        "03:04:05.006 node [greet] greeting: no step",
        "03:04:05.006 diagnostic __weavegraph_stream_end__: status=completed",
        "03:04:05.006 llm [s-1] chunk: two\\nlines",
    ]
    assert render_event(sample()[0], color=True) == (
        "\x1b[2m03:04:05.006\x1b[0m \x1b[36mnode\x1b[0m [greet@1] "
        "\x1b[1mgreeting\x1b[0m: Saying hi!"
    )


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


async def test_stdout_sink_colours_only_terminals() -> None:
    plain, terminal, forced = io.StringIO(), FakeTerminal(), io.StringIO()
    bus = EventBus([StdOutSink(plain), StdOutSink(terminal), StdOutSink(forced, color=True)])
    bus.publish(sample()[0])
    await bus.stop()
    assert plain.getvalue() == "03:04:05.006 node [greet@1] greeting: Saying hi!\n"
    assert terminal.getvalue() == render_event(sample()[0], color=True) + "\n"
    assert forced.getvalue() == terminal.getvalue()


async def test_stdout_sink_defaults_to_sys_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    bus = EventBus([StdOutSink()])
    bus.publish(sample()[2])
    await bus.stop()
    assert capsys.readouterr().out == (
        "03:04:05.006 diagnostic __weavegraph_stream_end__: status=completed\n"
    )


async def test_memory_sink_snapshot_and_clear() -> None:
    sink = MemorySink()
    assert (sink.name, sink.lossless) == ("memory", True)
    bus = EventBus([sink], capacity=2)
    for event in sample():
        bus.publish(event)
    await bus.stop()
    assert [e.id for e in sink.snapshot()] == [1, 2, 3, 4]  # lossless: capacity 2 is no limit
    sink.clear()
    assert sink.snapshot() == []


async def test_channel_sink_into_an_asyncio_queue_bounded_or_not() -> None:
    unbounded: asyncio.Queue[Event] = asyncio.Queue()
    bounded: asyncio.Queue[Event] = asyncio.Queue(maxsize=1)
    bus = EventBus([ChannelSink(unbounded), ChannelSink(bounded, name="bounded")])
    await bus.start()
    for event in sample():
        bus.publish(event)
    got_bounded = [(await bounded.get()).id for _ in range(4)]
    await bus.stop()
    assert [unbounded.get_nowait().id for _ in range(4)] == [1, 2, 3, 4]
    assert got_bounded == [1, 2, 3, 4]


async def test_channel_sink_into_a_thread_queue_waits_for_room_off_the_loop() -> None:
    channel: queue.Queue[Event] = queue.Queue(maxsize=1)
    bus = EventBus([ChannelSink(channel)])
    await bus.start()
    for event in sample():
        bus.publish(event)

    def take_four() -> list[int]:
        return [channel.get().id for _ in range(4)]

    assert await asyncio.to_thread(take_four) == [1, 2, 3, 4]
    await bus.stop()


async def test_json_lines_sink_to_a_path_appends_and_closes(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"existing": true}\n', encoding="utf-8")
    sink = JsonLinesSink(path)
    assert sink.lossless is True
    bus = EventBus([sink], capacity=1)
    events = [bus.publish(e) for e in sample()]
    await bus.stop()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == '{"existing": true}'
    assert [Event.from_json(line) for line in lines[1:]] == events
    assert lines[1] == events[0].to_json()


async def test_json_lines_sink_replaces_a_file_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text("old\n", encoding="utf-8")
    bus = EventBus([JsonLinesSink(str(path), append=False)])
    bus.publish(sample()[0])
    await bus.stop()
    assert path.read_text(encoding="utf-8") == bus_event_line(path)


def bus_event_line(path: Path) -> str:
    line = path.read_text(encoding="utf-8")
    assert Event.from_json(line).message == "Saying hi!"
    return line


async def test_json_lines_sink_to_a_stream_leaves_it_open() -> None:
    stream = io.StringIO()
    bus = EventBus([JsonLinesSink(stream)])
    bus.publish(sample()[1])
    await bus.stop()
    assert not stream.closed
    assert Event.from_json(stream.getvalue()).message == "no step"


async def test_logging_sink(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="weavegraph.events")
    custom = logging.getLogger("test.events.custom")
    bus = EventBus([LoggingSink(), LoggingSink(custom, logging.DEBUG, name="custom")])
    bus.publish(sample()[0])
    await bus.stop()
    records = [r for r in caplog.records if r.name == "weavegraph.events"]
    assert [(r.levelno, r.getMessage()) for r in records] == [
        (logging.INFO, "03:04:05.006 node [greet@1] greeting: Saying hi!")
    ]
    assert getattr(records[0], "weavegraph_event").id == 1  # noqa: B009
    assert not [r for r in caplog.records if r.name == "test.events.custom"]  # DEBUG is off


def test_shipped_sinks_satisfy_the_protocol(tmp_path: Path) -> None:
    jsonl = JsonLinesSink(io.StringIO())
    sinks: list[EventSink] = [
        StdOutSink(),
        MemorySink(),
        ChannelSink(queue.Queue()),
        jsonl,
        LoggingSink(),
    ]
    assert [s.name for s in sinks] == ["stdout", "memory", "channel", "jsonl", "logging"]
    assert [getattr(s, "lossless", False) for s in sinks] == [False, True, True, True, False]
