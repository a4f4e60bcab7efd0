"""The public face of `weavegraph.events`."""

from __future__ import annotations

import weavegraph
import weavegraph.events as events
from weavegraph import EventBusError
from weavegraph.events import StreamClosedError


def test_all_is_sorted_unique_and_importable() -> None:
    names = events.__all__
    constants = [n for n in names if n.isupper()]
    others = [n for n in names if not n.isupper()]
    assert names == sorted(constants) + sorted(others)  # isort style, as ruff's RUF022 wants
    assert len(set(names)) == len(names)
    for name in names:
        assert getattr(events, name) is not None


def test_names_shared_with_the_top_level_package_are_the_same_objects() -> None:
    for name in set(events.__all__) & set(weavegraph.__all__):
        assert getattr(events, name) is getattr(weavegraph, name)


def test_stream_closed_is_an_event_bus_error() -> None:
    assert issubclass(StreamClosedError, EventBusError)
