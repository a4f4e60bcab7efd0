"""What the streaming entry points hand back: an `InvocationHandle` and an `EventReceiver`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import TYPE_CHECKING

from ._event import Event
from ._lifecycle import stream_end
from ._state import VersionedState

if TYPE_CHECKING:
    from ._runner import AppRunner

__all__ = ["EventReceiver", "InvocationHandle"]


class InvocationHandle:
    """A run started in the background by `App.invoke_streaming`.

    `join()` waits for the final state (or raises the run's error); `abort()` cancels the run,
    whose stream still ends with a STREAM_END diagnostic saying ``status=cancelled``.
    """

    __slots__ = ("_runner", "_started", "_task", "session_id")

    def __init__(
        self,
        runner: AppRunner,
        state: VersionedState | None,
        session_id: str,
        timeout: float | None,
    ) -> None:
        self._runner = runner
        self.session_id = session_id
        self._started = False
        self._task = asyncio.create_task(self._run(state, timeout))

    async def _run(self, state: VersionedState | None, timeout: float | None) -> VersionedState:
        self._started = True
        async with self._runner as runner:
            try:
                await runner.create_session(state, session_id=self.session_id)
            except BaseException as exc:
                # The run never started, so its stream end is said here.
                status = "cancelled" if isinstance(exc, asyncio.CancelledError) else "error"
                runner.event_bus.publish(stream_end(self.session_id, 0, status))
                raise
            return await runner.run_until_complete(self.session_id, timeout=timeout)

    async def join(self) -> VersionedState:
        """The final state; raises what the run raised (CancelledError after `abort()`)."""
        return await asyncio.shield(self._task)

    def abort(self) -> None:
        """Cancel the run (it stops at its next await and cleans up)."""
        if not self._started and not self._task.done() and not self._runner.event_bus.closed:
            # Cancelled before its first step, the task would never run its own cleanup.
            self._runner.event_bus.publish(stream_end(self.session_id, 0, "cancelled"))
        self._task.cancel()

    def done(self) -> bool:
        """True once the run has finished, failed or been cancelled."""
        return self._task.done()


class EventReceiver:
    """Every event of a finished run, in order; iterate it sync or async."""

    __slots__ = ("_events", "_next")

    def __init__(self, events: Sequence[Event]) -> None:
        self._events = list(events)
        self._next = 0

    @property
    def events(self) -> list[Event]:
        """All the events (also those already received)."""
        return list(self._events)

    def try_recv(self) -> Event | None:
        """The next event not yet received, or None when there are no more."""
        if self._next >= len(self._events):
            return None
        event = self._events[self._next]
        self._next += 1
        return event

    def __len__(self) -> int:
        return len(self._events)

    def __iter__(self) -> Iterator[Event]:
        while (event := self.try_recv()) is not None:
            yield event

    async def __aiter__(self) -> AsyncIterator[Event]:
        for event in self:
            yield event
