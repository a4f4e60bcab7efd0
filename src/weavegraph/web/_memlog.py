"""`InMemoryEventLog`: the `EventLog` protocol kept in a dict, for tests and throwaway servers."""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Sequence

from .._resource import AsyncResource
from ..checkpoint._eventlog import check_limit, event_rows
from ..events import Event

__all__ = ["InMemoryEventLog"]


class InMemoryEventLog(AsyncResource):
    """An event log in memory: nothing survives the process.

    It keeps the `Event` objects themselves (treat them as read-only), per session, in id order.

    Args:
        max_sessions: keep at most this many sessions; appending to a new one beyond it forgets
            the session written to least recently. None keeps every session.
    """

    __slots__ = ("_ids", "_max_sessions", "_sessions")

    def __init__(self, *, max_sessions: int | None = None) -> None:
        if max_sessions is not None and max_sessions < 1:
            raise ValueError(f"max_sessions must be at least 1; got {max_sessions}")
        self._max_sessions = max_sessions
        self._ids: OrderedDict[str, list[int]] = OrderedDict()
        self._sessions: dict[str, list[Event]] = {}

    async def setup(self) -> None:
        """Nothing to prepare."""

    async def aclose(self) -> None:
        """Nothing to release; the events stay readable."""

    async def append(self, events: Sequence[Event]) -> None:
        """Store published events; a (session, id) already stored keeps the stored event."""
        event_rows(events)  # the same validation as the durable logs: published events only
        for event in events:
            self._store(event.session_id or "", event)

    def _store(self, session: str, event: Event) -> None:
        ids = self._ids.get(session)
        if ids is None:
            ids = self._ids[session] = []
            self._sessions[session] = []
            if self._max_sessions is not None and len(self._ids) > self._max_sessions:
                oldest, _ = self._ids.popitem(last=False)
                del self._sessions[oldest]
        else:
            self._ids.move_to_end(session)
        stored = self._sessions[session]
        if not ids or event.id > ids[-1]:  # the usual case: ids arrive in order
            ids.append(event.id)
            stored.append(event)
            return
        index = bisect.bisect_left(ids, event.id)
        if ids[index] != event.id:
            ids.insert(index, event.id)
            stored.insert(index, event)

    async def events_after(
        self, session_id: str, event_id: int, *, limit: int | None = None
    ) -> list[Event]:
        """The session's events with an id above `event_id`, in id order, at most `limit`."""
        check_limit(limit)
        ids = self._ids.get(session_id)
        if ids is None:
            return []
        start = bisect.bisect_right(ids, event_id)
        stop = len(ids) if limit is None else start + limit
        return self._sessions[session_id][start:stop]

    async def last_id(self, session_id: str) -> int:
        """The highest stored event id of the session, or 0."""
        ids = self._ids.get(session_id)
        return ids[-1] if ids else 0

    async def delete_session(self, session_id: str) -> bool:
        """Forget a session's events; True if there were any."""
        self._sessions.pop(session_id, None)
        return self._ids.pop(session_id, None) is not None
