"""`AsyncResource`: ``async with`` for objects that open in `setup()` and close in `aclose()`."""

from __future__ import annotations

from types import TracebackType
from typing import Self

__all__ = ["AsyncResource"]


class AsyncResource:
    """Gives a class with async `setup()` and `aclose()` the async context manager protocol."""

    __slots__ = ()

    async def setup(self) -> None:
        """Prepare the resource; safe to call twice."""

    async def aclose(self) -> None:
        """Release the resource; safe to call twice."""

    async def __aenter__(self) -> Self:
        await self.setup()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
