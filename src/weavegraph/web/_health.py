"""The `/health` JSON: sink health (degraded when any sink has failed) and bus counters."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict

from starlette.responses import JSONResponse

from .._json import JSONValue
from .._time import format_timestamp
from ..events import EventBus, SinkHealth

__all__ = ["health_payload", "health_response"]


def health_payload(
    sinks: Iterable[SinkHealth], metrics: Mapping[str, JSONValue] | None = None
) -> dict[str, JSONValue]:
    """The health document for these sinks.

    Returns ``{"status": "healthy" | "degraded", "sinks": [{"name", "errors", "last_error",
    "last_error_at", "handled", "abandoned"}], "metrics": {...}}``; the status is degraded as
    soon as one sink has an error.
    """
    rows: list[JSONValue] = []
    degraded = False
    for sink in sinks:
        degraded = degraded or sink.error_count > 0 or sink.abandoned
        when = sink.last_error_at
        rows.append(
            {
                "name": sink.sink,
                "errors": sink.error_count,
                "last_error": sink.last_error,
                "last_error_at": None if when is None else format_timestamp(when),
                "handled": sink.handled,
                "abandoned": sink.abandoned,
            }
        )
    return {
        "status": "degraded" if degraded else "healthy",
        "sinks": rows,
        "metrics": dict(metrics or {}),
    }


def health_response(bus: EventBus) -> JSONResponse:
    """The guide's health endpoint for one bus: its sinks, and its `metrics()` counters.

    Always status 200 (the body says whether the bus is degraded), so a monitor can read why.
    """
    metrics: dict[str, JSONValue] = dict(asdict(bus.metrics()))
    return JSONResponse(health_payload(bus.sink_health(), metrics))
