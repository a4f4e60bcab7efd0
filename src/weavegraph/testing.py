"""Replay conformance: check that two runs of a workflow did the same thing.

Record a run with `record_run`, run it again (after a change, on another backend, after a
resume), and compare with `compare_runs` (a list of differences) or `assert_same_run`.
Timestamps are always ignored; so are the metadata and `extra` keys you declare volatile (and,
by default, the session id and the timing keys of the runtime's diagnostics).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ._app import App
from ._event import Event
from ._json import JSONValue, thaw
from ._state import VersionedState

__all__ = [
    "TIMING_KEYS",
    "RecordedRun",
    "assert_same_run",
    "compare_events",
    "compare_runs",
    "compare_states",
    "normalize_event",
    "normalize_state",
    "record_run",
]

TIMING_KEYS = frozenset({"duration_ms", "node_ms", "merge_ms", "checkpoint_ms"})
"""Metadata keys of lifecycle diagnostics that measure time, ignored unless asked otherwise."""


@dataclass(frozen=True, slots=True)
class RecordedRun:
    """A run's final state and every event it published, in order."""

    state: VersionedState
    events: tuple[Event, ...] = field(default=())


async def record_run(app: App, state: VersionedState | None = None) -> RecordedRun:
    """Run `app` to completion and keep its final state and events."""
    final, receiver = await app.invoke_with_channel(state)
    return RecordedRun(final, tuple(receiver.events))


def normalize_event(
    event: Event, *, volatile_keys: Iterable[str] = (), ignore_ids: bool = False
) -> dict[str, JSONValue]:
    """The event's JSON without its timestamp, session id and volatile metadata keys."""
    data = event.to_dict()
    del data["timestamp"]
    if ignore_ids:
        del data["id"]
    dropped = TIMING_KEYS | {"session_id"} | set(volatile_keys)
    meta = data["metadata"]
    data["metadata"] = {k: v for k, v in meta.items() if k not in dropped}
    # The session id also appears in the text of run diagnostics.
    if event.session_id:
        data["message"] = event.message.replace(event.session_id, "<session>")
    return data


def normalize_state(
    state: VersionedState, *, volatile_keys: Iterable[str] = ()
) -> dict[str, JSONValue]:
    """The state's JSON without error timestamps and without volatile `extra` keys."""
    data = state.to_dict()
    volatile = set(volatile_keys)
    data["extra"]["value"] = {k: v for k, v in data["extra"]["value"].items() if k not in volatile}
    for error in data["errors"]["value"]:
        del error["when"]
    return thaw(data)  # type: ignore[no-any-return]


def compare_states(
    expected: VersionedState, actual: VersionedState, *, volatile_keys: Iterable[str] = ()
) -> list[str]:
    """Differences between two states, channel by channel (empty when they match)."""
    keys = tuple(volatile_keys)
    left = normalize_state(expected, volatile_keys=keys)
    right = normalize_state(actual, volatile_keys=keys)
    out = []
    for channel in ("messages", "extra", "errors"):
        if left[channel] != right[channel]:
            out.append(f"state.{channel}: expected {left[channel]!r}, got {right[channel]!r}")
    return out


def compare_events(
    expected: Sequence[Event],
    actual: Sequence[Event],
    *,
    volatile_keys: Iterable[str] = (),
    ignore_ids: bool = False,
) -> list[str]:
    """Differences between two event sequences, event by event (empty when they match)."""
    keys = tuple(volatile_keys)
    out = []
    if len(expected) != len(actual):
        out.append(f"events: expected {len(expected)}, got {len(actual)}")
    for index, (left, right) in enumerate(zip(expected, actual, strict=False)):
        a = normalize_event(left, volatile_keys=keys, ignore_ids=ignore_ids)
        b = normalize_event(right, volatile_keys=keys, ignore_ids=ignore_ids)
        if a != b:
            out.append(f"event #{index + 1}: expected {a!r}, got {b!r}")
    return out


def compare_runs(
    expected: RecordedRun,
    actual: RecordedRun,
    *,
    volatile_keys: Iterable[str] = (),
    ignore_ids: bool = False,
) -> list[str]:
    """Differences between two recorded runs: final states first, then events."""
    keys = tuple(volatile_keys)
    return compare_states(expected.state, actual.state, volatile_keys=keys) + compare_events(
        expected.events, actual.events, volatile_keys=keys, ignore_ids=ignore_ids
    )


def assert_same_run(
    expected: RecordedRun,
    actual: RecordedRun,
    *,
    volatile_keys: Iterable[str] = (),
    ignore_ids: bool = False,
) -> None:
    """Raise AssertionError listing every difference between two recorded runs."""
    differences = compare_runs(expected, actual, volatile_keys=volatile_keys, ignore_ids=ignore_ids)
    if differences:
        raise AssertionError("runs differ:\n" + "\n".join(differences))
