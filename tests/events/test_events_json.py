"""The event wire shape: JSON Schema (docs/schemas/event.json) and exact round trips."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

from weavegraph.events import (
    GAP_SCOPE,
    RESERVED_METADATA_KEYS,
    STREAM_END_SCOPE,
    Event,
    EventBus,
)

SCHEMA = json.loads(
    (Path(__file__).resolve().parents[2] / "docs" / "schemas" / "event.json").read_text("utf-8")
)
VALIDATOR = Draft202012Validator(SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER)


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    Draft202012Validator.check_schema(SCHEMA)


def test_the_documented_example_validates_and_parses() -> None:
    wire = {
        "id": 7,
        "type": "node",
        "scope": "greeting",
        "message": "Saying hi!",
        "timestamp": "2026-01-02T03:04:05.000006Z",
        "metadata": {"session_id": "s1", "node_id": "greet", "step": 1, "lang": "en"},
    }
    VALIDATOR.validate(wire)
    event = Event.from_dict(wire)
    assert (event.id, event.node_id, event.step, dict(event.metadata)) == (
        7,
        "greet",
        1,
        {"lang": "en"},
    )
    assert event.to_dict() == wire


async def test_every_kind_of_event_a_bus_produces_validates() -> None:
    bus = EventBus(capacity=2)
    stream = bus.subscribe(until_stream_end=False)
    published = [
        Event.node("greeting", "hi", node_id="greet", step=0, session_id="s", metadata={"k": [1]}),
        Event.diagnostic("custom", "note"),
        Event.llm("tok", stream_id="m1", node_id="n", step=2),
        Event.llm("done", is_final=True),
        Event.llm("oops", scope="error", metadata={"code": 500}),
        Event.diagnostic(STREAM_END_SCOPE, "session=s status=completed step=3", session_id="s"),
    ]
    for event in published:
        bus.publish(event)
    gap = await stream.recv()
    assert gap.scope == GAP_SCOPE
    for event in [gap, *published, Event.node("unpublished", "id 0")]:
        VALIDATOR.validate(json.loads(event.to_json()))
    await stream.aclose()
    await bus.stop()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", -1),
        ("type", "nodes"),
        ("timestamp", "2026-01-02 03:04:05"),
        ("metadata", {"step": "one"}),
        ("metadata", {"stream_id": "m"}),  # only LLM events carry a stream id
        ("extra", 1),
    ],
)
def test_the_schema_refuses_what_is_not_the_wire_shape(field: str, value: object) -> None:
    wire = Event.node("s", "m").to_dict()
    wire[field] = value
    assert not VALIDATOR.is_valid(wire)


def test_an_llm_event_must_say_whether_it_is_final() -> None:
    wire = Event.llm("tok").to_dict()
    del wire["metadata"]["is_final"]
    assert not VALIDATOR.is_valid(wire)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
user_metadata = st.dictionaries(
    st.text().filter(lambda key: key not in RESERVED_METADATA_KEYS), json_values, max_size=4
)
maybe_text = st.none() | st.text()
steps = st.none() | st.integers(min_value=0, max_value=2**40)


@st.composite
def events(draw: st.DrawFn) -> Event:
    kind = draw(st.sampled_from(["node", "diagnostic", "llm"]))
    common: dict[str, Any] = {
        "session_id": draw(maybe_text),
        "metadata": draw(st.none() | user_metadata),
    }
    if kind == "node":
        event = Event.node(
            draw(st.text()), draw(st.text()), node_id=draw(maybe_text), step=draw(steps), **common
        )
    elif kind == "diagnostic":
        event = Event.diagnostic(draw(st.text()), draw(st.text()), **common)
    else:
        event = Event.llm(
            draw(st.text()),
            stream_id=draw(maybe_text),
            is_final=draw(st.booleans()),
            scope=draw(st.none() | st.text()),
            node_id=draw(maybe_text),
            step=draw(steps),
            **common,
        )
    # Any instant from 1970 to year 9999, to the microsecond.
    event.ts_us = draw(st.integers(min_value=0, max_value=253_402_300_799_999_999))
    event.id = draw(st.integers(min_value=0, max_value=2**53))
    return event


@given(events())
def test_json_round_trip_is_exact_and_valid(event: Event) -> None:
    text = event.to_json()
    assert "\n" not in text
    assert Event.from_json(text) == event
    assert Event.from_json(text.encode("utf-8")) == event
    VALIDATOR.validate(json.loads(text))
