"""UTC timestamps in one text format (RFC 3339 with a trailing Z), shared by every JSON shape."""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["format_timestamp", "parse_timestamp", "utc_now"]


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def format_timestamp(when: datetime) -> str:
    """Render an aware datetime as RFC 3339 text in UTC, e.g. ``2026-01-02T03:04:05.000006Z``."""
    if when.tzinfo is None:
        raise ValueError(f"timestamps must be timezone-aware; got naive {when!r}")
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text: str) -> datetime:
    """Parse RFC 3339 text (``Z`` or an offset) into an aware UTC datetime."""
    when = datetime.fromisoformat(text)
    if when.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no timezone")
    return when.astimezone(UTC)
