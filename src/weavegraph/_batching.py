"""`BatchingSink`: the buffering that every sink writing batches to a store shares.

Events are buffered and written once `batch_size` are waiting, or `flush_delay` seconds after
the first one arrived (0: on the next turn of the event loop), and always in `close()`. One
batch is written at a time, in order. A write that fails in the background is raised from the
next `handle()` or from `close()`, so the bus reports it in its diagnostics and
`sink_health()`. Subclasses implement `_write` (and may wrap the failure in `_failed`).
"""

from __future__ import annotations

import asyncio

from ._event import Event

__all__ = ["BatchingSink"]


class BatchingSink:
    """A lossless sink that writes its events in batches; see the module docstring."""

    lossless = True

    def __init__(self, name: str, *, batch_size: int, flush_delay: float = 0.0) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1; got {batch_size}")
        if flush_delay < 0:
            raise ValueError(f"flush_delay must not be negative; got {flush_delay}")
        self.name = name
        self._batch_size = batch_size
        self._delay = flush_delay
        self._buffer: list[Event] = []
        self._lock = asyncio.Lock()  # one batch at a time, so batches land in id order
        self._flusher: asyncio.Task[None] | None = None
        self._failure: Exception | None = None

    async def _write(self, batch: list[Event]) -> None:
        """Store one batch (in id order); raise if it was not stored."""
        raise NotImplementedError

    def _failed(self, failure: Exception) -> Exception:
        """The error to raise for a batch that failed in the background."""
        return failure

    async def handle(self, event: Event) -> None:
        """Buffer the event; write the buffer when it is full (waiting for that)."""
        self._buffer.append(event)  # first: an earlier batch's failure must not cost this one
        self._raise_failure()
        if len(self._buffer) >= self._batch_size:
            await self.flush()
        elif self._flusher is None:
            loop = asyncio.get_running_loop()
            self._flusher = loop.create_task(self._flush_soon(), name=f"weavegraph-{self.name}")

    async def flush(self) -> None:
        """Write every buffered event now."""
        async with self._lock:
            while self._buffer:
                batch = self._buffer[: self._batch_size]
                del self._buffer[: self._batch_size]
                await self._write(batch)

    async def close(self) -> None:
        """Write what is still buffered (the bus calls this when it stops)."""
        try:
            if self._flusher is not None:
                await self._flusher
            try:
                await self.flush()
            finally:  # an earlier batch's failure is reported first
                self._raise_failure()
        finally:
            if self._flusher is not None:  # close() itself was cancelled: stop writing
                self._flusher.cancel()

    async def _flush_soon(self) -> None:
        try:
            if self._delay:
                await asyncio.sleep(self._delay)
            await self.flush()
        except Exception as exc:  # nobody awaits this task: hand the failure to the bus later
            self._failure = exc
        finally:
            self._flusher = None

    def _raise_failure(self) -> None:
        failure, self._failure = self._failure, None
        if failure is not None:
            raise self._failed(failure) from failure
