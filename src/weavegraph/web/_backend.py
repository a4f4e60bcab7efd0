"""`RunBackend`: what the run server's routes need from whatever runs the graph.

`RunRegistry` runs each request in this process; the cluster backend of
`weavegraph.distributed` queues it in PostgreSQL for a worker and streams from Redis. The routes
of `create_app` are the same for both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from .._json import JSONValue
from ._feed import Feed

if TYPE_CHECKING:
    from .._app import App
    from .._state import VersionedState

__all__ = ["RunBackend", "RunConflictError", "RunLimitError", "UnknownGraphError"]


class RunConflictError(Exception):
    """The run is not in a state that allows the request (e.g. cancelling a finished run)."""


class RunLimitError(Exception):
    """No run can start now: too many are running, or the server is shutting down."""


class UnknownGraphError(LookupError):
    """A request named a graph this server does not run."""


class RunBackend(Protocol):
    """Starts, describes, streams and cancels runs of one graph."""

    graph_name: str
    clients: int  # open SSE responses, counted by the routes

    @property
    def app(self) -> App:
        """The compiled graph (for `/graph` and `/graph.svg`)."""
        ...

    async def setup(self) -> None:
        """Open what the backend needs (called once, at startup)."""

    async def aclose(self) -> None:
        """Stop taking runs and release everything (safe to call twice)."""

    async def submit(self, state: VersionedState) -> str:
        """Start (or queue) a run of `state`; returns its id.

        Raises:
            RunLimitError: no run can start now.
        """
        ...

    async def describe(self, run_id: str) -> dict[str, JSONValue] | None:
        """The run as `GET /runs/{id}` shows it; None if unknown."""
        ...

    async def feed(self, run_id: str, after: int | None) -> Feed | None:
        """The run's events after `after`; None if the run is over and the client has them all.

        Raises:
            LookupError: no such run.
        """
        ...

    async def cancel(self, run_id: str) -> None:
        """Ask the run to stop; its stream ends with ``status=cancelled``.

        Raises:
            LookupError: no such run. RunConflictError: the run is already over.
        """

    async def health(self) -> dict[str, JSONValue]:
        """The `/health` document."""
        ...
