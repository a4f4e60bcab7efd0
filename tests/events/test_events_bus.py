"""EventBus: lifecycle, sink workers, draining at stop, diagnostics, health and metrics."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import threading
import time
from datetime import datetime

import pytest

from weavegraph import EventBusError
from weavegraph.events import (
    DIAGNOSTIC_SCOPE,
    BusMetrics,
    DiagnosticsConfig,
    Event,
    EventBus,
    EventBusConfig,
    EventSink,
    JsonLinesSink,
    MemorySink,
    SinkDiagnostic,
    SinkHealth,
    StreamClosedError,
)


def node(i: int) -> Event:
    return Event.node("s", f"m{i}")


class Recorder:
    """A plain (drop-oldest) synchronous sink."""

    def __init__(self, name: str = "recorder") -> None:
        self.name = name
        self.ids: list[int] = []

    def handle(self, event: Event) -> None:
        self.ids.append(event.id)


class AsyncRecorder:
    """An async sink that can tell the test when it has seen `expected` events."""

    def __init__(self, name: str = "async", expected: int = -1) -> None:
        self.name = name
        self.events: list[Event] = []
        self.expected = expected
        self.reached = asyncio.Event()

    async def handle(self, event: Event) -> None:
        self.events.append(event)
        if len(self.events) == self.expected:
            self.reached.set()


class Failing:
    """A synchronous sink that raises on every event."""

    def __init__(self, name: str = "failing") -> None:
        self.name = name
        self.calls: list[Event] = []

    def handle(self, event: Event) -> None:
        self.calls.append(event)
        raise ValueError(f"boom {event.id}")


async def recv_n(diagnostics: object, n: int) -> list[SinkDiagnostic]:
    return [await diagnostics.recv() for _ in range(n)]  # type: ignore[attr-defined]


def test_config_defaults() -> None:
    assert DiagnosticsConfig() == DiagnosticsConfig(
        enabled=True, buffer_capacity=None, emit_to_events=False
    )
    config = EventBusConfig(sinks=[MemorySink()])  # type: ignore[arg-type]
    assert config.capacity == 1024
    assert isinstance(config.sinks, tuple)
    assert config.diagnostics == DiagnosticsConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.capacity = 2  # type: ignore[misc]


async def test_from_config() -> None:
    sink = MemorySink(name="mem")
    bus = EventBus.from_config(EventBusConfig(capacity=7, sinks=(sink,)))
    assert bus.capacity == 7
    assert bus.sink_health() == [SinkHealth("mem")]
    await bus.stop()


def test_diagnostics_buffer_capacity_must_be_positive() -> None:
    with pytest.raises(ValueError, match="buffer_capacity must be a positive int"):
        EventBus(diagnostics=DiagnosticsConfig(buffer_capacity=0))


@pytest.mark.parametrize("before_start", [True, False])
async def test_every_event_published_before_stop_reaches_every_sink_50_times(
    before_start: bool,
) -> None:
    for _ in range(50):
        memory, plain, text = MemorySink(), Recorder(), io.StringIO()
        async_sink = AsyncRecorder()
        bus = EventBus([memory, plain, async_sink, JsonLinesSink(text)])
        if not before_start:
            await bus.start()
        for i in range(200):
            bus.publish(node(i))
            if i == 100:
                await asyncio.sleep(0)
        await bus.stop()
        expected = list(range(1, 201))
        assert [e.id for e in memory.snapshot()] == expected
        assert plain.ids == expected
        assert [e.id for e in async_sink.events] == expected
        assert [Event.from_json(line).id for line in text.getvalue().splitlines()] == expected
        assert [h.handled for h in bus.sink_health()] == [200] * 4


async def test_start_stop_are_idempotent_and_async_with_runs_them() -> None:
    sink = MemorySink()
    async with EventBus([sink]) as bus:
        await bus.start()
        bus.publish(node(1))
    assert bus.closed
    await bus.stop()
    assert [e.id for e in sink.snapshot()] == [1]
    with pytest.raises(EventBusError, match="stopped; create a new one"):
        await bus.start()
    with pytest.raises(EventBusError, match="cannot add a sink"):
        bus.add_sink(MemorySink())


async def test_concurrent_stops_wait_for_the_same_drain() -> None:
    release = threading.Event()

    class Slow:
        name = "slow"
        seen: list[int] = []  # noqa: RUF012

        def handle(self, event: Event) -> None:
            release.wait()
            self.seen.append(event.id)

    sink = Slow()
    bus = EventBus([sink])
    await bus.start()
    bus.publish(node(1))
    first = asyncio.create_task(bus.stop())
    second = asyncio.create_task(bus.stop())
    await asyncio.sleep(0)
    assert not first.done()
    assert not second.done()
    release.set()
    await asyncio.gather(first, second)
    assert sink.seen == [1]


async def test_stop_goes_on_when_its_caller_is_cancelled() -> None:
    release = threading.Event()

    class Slow:
        name = "slow"

        def handle(self, event: Event) -> None:
            release.wait()

    bus = EventBus([Slow()])
    bus.publish(node(1))
    stopping = asyncio.create_task(bus.stop())
    await asyncio.sleep(0)
    stopping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopping
    release.set()
    await bus.stop()  # waits for the shutdown that carried on
    assert bus.sink_health()[0].handled == 1


async def test_a_blocking_sync_sink_never_blocks_the_loop_or_other_sinks() -> None:
    release = threading.Event()
    entered = threading.Event()

    class Blocking:
        name = "blocking"

        def handle(self, event: Event) -> None:
            entered.set()
            release.wait()
            time.sleep(0)  # a sync sink may sleep: it has its own thread

    fast = AsyncRecorder(expected=3)
    bus = EventBus([Blocking(), fast])
    await bus.start()
    stream = bus.subscribe()
    for i in range(3):
        bus.publish(node(i))
    await asyncio.to_thread(entered.wait)
    await fast.reached.wait()  # the loop and the other sink move on while `Blocking` waits
    assert [e.id for e in fast.events] == [1, 2, 3]
    assert [(await stream.recv()).id for _ in range(3)] == [1, 2, 3]
    release.set()
    await bus.stop()
    assert [h.handled for h in bus.sink_health()] == [3, 3]


async def test_stop_abandons_a_stalled_sink_after_its_timeout_and_reports_it() -> None:
    release = threading.Event()

    class Stalled:
        name = "stalled"

        def handle(self, event: Event) -> None:
            release.wait()

    class StalledAsync:
        name = "stalled-async"

        async def handle(self, event: Event) -> None:
            await asyncio.Event().wait()

    healthy_sink = AsyncRecorder(expected=1)
    bus = EventBus([Stalled(), StalledAsync(), healthy_sink])
    diagnostics = bus.diagnostics()
    await bus.start()
    bus.publish(node(1))
    await healthy_sink.reached.wait()  # so only the stalled sinks can outlast the timeout
    await bus.stop(timeout=0.05)
    release.set()
    stalled, stalled_async, healthy = bus.sink_health()
    for health, name in ((stalled, "stalled"), (stalled_async, "stalled-async")):
        assert (health.sink, health.error_count, health.abandoned) == (name, 1, True)
        assert health.last_error == "abandoned: still busy 0.05 s after stop() began"
        assert isinstance(health.last_error_at, datetime)
    assert healthy == SinkHealth("async", handled=1)
    reported = [d async for d in diagnostics]
    assert sorted((d.sink, d.occurrence, d.event_id) for d in reported) == [
        ("stalled", 1, None),
        ("stalled-async", 1, None),
    ]


async def test_a_sink_that_always_raises_is_isolated_counted_and_reported() -> None:
    failing, memory, other = Failing(), MemorySink(), AsyncRecorder()
    bus = EventBus([failing, memory, other])
    diagnostics = bus.diagnostics()
    await bus.start()
    for i in range(5):
        bus.publish(node(i))
    reported = await recv_n(diagnostics, 5)
    await bus.stop()

    assert [(d.sink, d.occurrence, d.error, d.event_id) for d in reported] == [
        ("failing", n, f"ValueError: boom {n}", n) for n in range(1, 6)
    ]
    assert all(isinstance(d.when, datetime) for d in reported)
    failing_health, memory_health, other_health = bus.sink_health()
    assert (failing_health.error_count, failing_health.last_error) == (5, "ValueError: boom 5")
    assert failing_health.last_error_at == reported[-1].when
    assert memory_health == SinkHealth("memory", handled=5)
    assert other_health == SinkHealth("async", handled=5)
    assert [e.id for e in memory.snapshot()] == [1, 2, 3, 4, 5]
    assert [e.id for e in other.events] == [1, 2, 3, 4, 5]
    assert [d async for d in diagnostics] == []
    with pytest.raises(StreamClosedError):
        await diagnostics.recv()


async def test_async_sink_failures_are_reported_too() -> None:
    class AsyncFailing:
        name = "async-failing"

        async def handle(self, event: Event) -> None:
            raise RuntimeError

    bus = EventBus([AsyncFailing()])
    diagnostics = bus.diagnostics()
    bus.publish(node(1))
    bus.publish(node(2))
    await bus.stop()
    assert [(d.occurrence, d.error) for d in [d async for d in diagnostics]] == [
        (1, "RuntimeError"),
        (2, "RuntimeError"),
    ]


async def test_emit_to_events_publishes_failures_but_never_back_to_the_failing_sink() -> None:
    failing = Failing()
    watcher = AsyncRecorder(expected=6)
    bus = EventBus([failing, watcher], diagnostics=DiagnosticsConfig(emit_to_events=True))
    diagnostics = bus.diagnostics()
    await bus.start()
    for i in range(3):
        bus.publish(node(i))
    await recv_n(diagnostics, 3)
    await watcher.reached.wait()
    await bus.stop()

    assert [e.id for e in failing.calls] == [1, 2, 3]
    assert bus.metrics().published == 6
    failures = [e for e in watcher.events if e.scope == DIAGNOSTIC_SCOPE]
    assert [(e.kind, e.metadata["sink"], e.metadata["occurrence"]) for e in failures] == [
        ("diagnostic", "failing", 1),
        ("diagnostic", "failing", 2),
        ("diagnostic", "failing", 3),
    ]
    assert [e.metadata["event_id"] for e in failures] == [1, 2, 3]
    assert failures[0].message == "event sink 'failing' failed on event 1: ValueError: boom 1"
    assert bus.sink_health()[0].error_count == 3


async def test_emit_to_events_between_two_failing_sinks_does_not_loop() -> None:
    one, two = Failing("one"), Failing("two")
    bus = EventBus([one, two], diagnostics=DiagnosticsConfig(emit_to_events=True))
    diagnostics = bus.diagnostics()
    await bus.start()
    for i in range(3):
        bus.publish(node(i))
    # Each fails on the 3 events and on the other's 3 failure reports; those are not re-published.
    reported = await recv_n(diagnostics, 12)
    await bus.stop()
    assert bus.metrics().published == 9
    assert [h.error_count for h in bus.sink_health()] == [6, 6]
    assert sorted(d.occurrence for d in reported if d.sink == "one") == [1, 2, 3, 4, 5, 6]
    assert len(one.calls) == len(two.calls) == 6


async def test_diagnostics_disabled_gives_a_closed_stream_but_health_still_counts() -> None:
    bus = EventBus([Failing()], diagnostics=DiagnosticsConfig(enabled=False, emit_to_events=True))
    diagnostics = bus.diagnostics()
    assert diagnostics.closed
    assert diagnostics.try_recv() is None
    assert await diagnostics.next_timeout(1) is None
    with pytest.raises(StreamClosedError):
        await diagnostics.recv()
    bus.publish(node(1))
    await bus.stop()
    assert bus.sink_health()[0].error_count == 1
    assert bus.metrics().published == 1


async def test_diagnostics_stream_drops_oldest_beyond_its_buffer() -> None:
    bus = EventBus([Failing()], diagnostics=DiagnosticsConfig(buffer_capacity=2))
    diagnostics = bus.diagnostics()
    for i in range(5):
        bus.publish(node(i))
    await bus.stop()
    assert [d.occurrence async for d in diagnostics] == [4, 5]
    assert diagnostics.dropped == 3
    assert bus.diagnostics().closed  # subscribed after stop


async def test_diagnostics_stream_next_timeout_try_recv_and_aclose() -> None:
    release = asyncio.Event()

    class FailsWhenReleased:
        name = "later"

        async def handle(self, event: Event) -> None:
            await release.wait()
            raise KeyError("k")

    bus = EventBus([FailsWhenReleased()])
    await bus.start()
    async with bus.diagnostics() as diagnostics:
        assert diagnostics.try_recv() is None
        assert await diagnostics.next_timeout(0.01) is None
        bus.publish(node(1))
        waiting = asyncio.create_task(diagnostics.next_timeout(5))
        await asyncio.sleep(0)
        release.set()
        got = await waiting
        assert got is not None
        assert got.error == "KeyError: 'k'"
    assert diagnostics.closed
    await diagnostics.aclose()
    await bus.stop()


async def test_sink_close_hooks_run_once_after_the_last_event_and_failures_are_reported() -> None:
    calls: list[str] = []

    class SyncClose(Recorder):
        def close(self) -> None:
            calls.append(f"sync:{self.ids}")

    class AsyncClose(AsyncRecorder):
        async def close(self) -> None:
            calls.append(f"async:{[e.id for e in self.events]}")

    class BadClose(Recorder):
        def close(self) -> None:
            raise OSError("disk gone")

    bus = EventBus([SyncClose("a"), AsyncClose("b"), BadClose("c")])
    bus.publish(node(1))
    await bus.stop()
    await bus.stop()
    assert sorted(calls) == ["async:[1]", "sync:[1]"]
    assert bus.sink_health()[2].last_error == "close() failed: OSError: disk gone"


async def test_sinks_added_before_start_see_everything_and_after_start_only_new_events() -> None:
    early, late = MemorySink(name="early"), MemorySink(name="late")
    bus = EventBus()
    bus.publish(node(1))
    bus.add_sink(early)
    bus.publish(node(2))
    await bus.start()
    bus.add_sink(late)
    bus.publish(node(3))
    await bus.stop()
    assert [e.id for e in early.snapshot()] == [1, 2, 3]
    assert [e.id for e in late.snapshot()] == [3]


async def test_a_plain_sink_that_lags_gets_the_gap_diagnostic() -> None:
    plain = Recorder()
    bus = EventBus([plain], capacity=3)
    for i in range(10):
        bus.publish(node(i))
    await bus.stop()
    assert plain.ids == [0, 8, 9, 10]
    assert bus.metrics().dropped == 7


async def test_metrics_count_streams_not_sinks() -> None:
    bus = EventBus([MemorySink()], capacity=4)
    one = bus.subscribe()
    bus.subscribe(lossless=True)
    bus.publish(node(1))
    assert bus.metrics() == BusMetrics(
        published=1, dropped=0, subscribers=2, sinks=1, retained=1, capacity=4
    )
    await one.aclose()
    assert bus.metrics().subscribers == 1
    await bus.stop()


async def test_a_sink_without_a_name_is_named_after_its_class() -> None:
    class Nameless:
        def handle(self, event: Event) -> None:
            pass

    bus = EventBus([Nameless()])  # type: ignore[list-item]
    assert bus.sink_health()[0].sink == "Nameless"
    await bus.stop()


async def test_an_async_sink_with_a_failing_sync_close() -> None:
    class Sink(AsyncRecorder):
        def close(self) -> None:
            raise OSError("nope")

    bus = EventBus([Sink()])
    await bus.stop()
    assert bus.sink_health()[0].last_error == "close() failed: OSError: nope"


async def test_a_closed_diagnostics_stream_receives_nothing_more() -> None:
    bus = EventBus([Failing()])
    diagnostics = bus.diagnostics()
    await diagnostics.aclose()
    bus.publish(node(1))
    await bus.stop()
    assert diagnostics.try_recv() is None
    assert bus.sink_health()[0].error_count == 1


async def test_no_task_or_thread_of_the_bus_outlives_stop() -> None:
    sinks: list[EventSink] = [
        Recorder("joined-a"),
        AsyncRecorder("joined-b"),
        MemorySink(name="joined-c"),
    ]
    bus = EventBus(sinks)
    await bus.start()
    bus.publish(node(1))

    def ours() -> list[str]:
        threads = [t.name for t in threading.enumerate() if t.name.startswith("weavegraph-")]
        tasks = [t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("weave")]
        return sorted(n for n in threads + tasks if "joined" in n)

    assert ours() == [
        "weavegraph-sink-joined-a",
        "weavegraph-sink-joined-a",
        "weavegraph-sink-joined-b",
        "weavegraph-sink-joined-c",
        "weavegraph-sink-joined-c",
    ]
    await bus.stop()
    assert ours() == []
    assert [h.handled for h in bus.sink_health()] == [1, 1, 1]


async def test_first_id_continues_ids_and_sinks_see_no_false_gap() -> None:
    from weavegraph import Event, EventBus, MemorySink

    sink = MemorySink()
    bus = EventBus([sink], first_id=501)
    assert bus.last_id == 500
    first = bus.publish(Event.node("s", "a"))
    await bus.start()
    second = bus.publish(Event.node("s", "b"))
    late = bus.subscribe(after=500, until_stream_end=False)
    await bus.stop()
    assert (first.id, second.id, bus.last_id) == (501, 502, 502)
    assert [e.id for e in sink.snapshot()] == [501, 502]
    assert [e.id async for e in late] == [501, 502]
    with pytest.raises(ValueError, match="first_id must be a positive int; got 0"):
        EventBus(first_id=0)
