"""What a terminal shows of a run: a model fed by events, and its two renderings.

`RunView` follows a run's events (node status, steps, streamed model text, dropped events).
`live_table` draws it with rich for a terminal; `plain_line` gives one line per event for
logs and pipes, where streamed text is printed once, when its stream ends.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import _lifecycle as life
from ._event import GAP_SCOPE, STREAM_END_SCOPE, Event

if TYPE_CHECKING:
    from rich.console import RenderableType

__all__ = ["NodeLine", "RunView", "live_table", "plain_line"]

_STYLES = {
    "pending": "dim",
    "running": "bold yellow",
    "retrying": "yellow",
    "done": "green",
    "failed": "bold red",
}


@dataclass(slots=True)
class NodeLine:
    """One node's row: status, how often it ran, its last duration and message."""

    name: str
    status: str = "pending"
    runs: int = 0
    attempt: int = 0
    duration_ms: float | None = None
    message: str = ""


@dataclass(slots=True)
class RunView:
    """The state of a run as its events tell it."""

    nodes: dict[str, NodeLine]
    session_id: str | None = None
    step: int = 0
    events: int = 0
    dropped: int = 0
    status: str | None = None
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    streams: dict[str, str] = field(default_factory=dict)
    done_streams: set[str] = field(default_factory=set)

    @classmethod
    def for_nodes(cls, names: Iterable[str]) -> RunView:
        """A view of a graph with these nodes, before anything ran."""
        return cls({name: NodeLine(name) for name in names})

    @property
    def elapsed(self) -> float:
        """Seconds since the view started (frozen when the run ended)."""
        return (self.finished or time.monotonic()) - self.started

    def node(self, name: str) -> NodeLine:
        """The row of `name` (added if the graph did not list it)."""
        line = self.nodes.get(name)
        if line is None:
            line = self.nodes[name] = NodeLine(name)
        return line

    def apply(self, event: Event) -> None:
        """Take one event into account."""
        self.events += 1
        self.session_id = self.session_id or event.session_id
        if event.step is not None:
            self.step = max(self.step, event.step)
        if event.kind == "llm":
            self._llm(event)
        elif event.kind == "node" and event.node_id is not None:
            self.node(event.node_id).message = event.message
        elif event.scope == GAP_SCOPE:
            self.dropped += int(event.metadata.get("missed", 0))
        elif event.scope == STREAM_END_SCOPE:
            self.status = str(event.metadata.get("status", "completed"))
            self.finished = time.monotonic()
        elif event.node_id is not None and event.scope in _NODE_SCOPES:
            _NODE_SCOPES[event.scope](self.node(event.node_id), event)

    def _llm(self, event: Event) -> None:
        stream = event.stream_id or event.node_id or "llm"
        if event.is_final:
            self.done_streams.add(stream)
            if event.message and not self.streams.get(stream):
                self.streams[stream] = event.message
        else:
            self.streams[stream] = self.streams.get(stream, "") + event.message


def _started(line: NodeLine, event: Event) -> None:
    line.status, line.attempt = "running", int(event.metadata.get("attempt", 1))
    if line.attempt == 1:
        line.runs += 1


def _finished(line: NodeLine, event: Event) -> None:
    line.status = "done"
    line.duration_ms = float(event.metadata.get("duration_ms", 0.0))


def _retry(line: NodeLine, event: Event) -> None:
    line.status, line.message = "retrying", str(event.metadata.get("error", ""))


def _failed(line: NodeLine, event: Event) -> None:
    line.status, line.message = "failed", str(event.metadata.get("error", ""))


_NODE_SCOPES = {
    life.NODE_STARTED_SCOPE: _started,
    life.NODE_FINISHED_SCOPE: _finished,
    life.NODE_RETRY_SCOPE: _retry,
    life.NODE_FAILED_SCOPE: _failed,
}


def live_table(view: RunView, *, text_width: int = 400) -> RenderableType:
    """The view as rich renderables: a header, the node table and the streamed texts."""
    from rich.console import Group
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    status = view.status or "running"
    header = Text.assemble(
        ("weavegraph ", "bold"),
        f"session {(view.session_id or '-')[:12]} · step {view.step} · ",
        f"{view.elapsed:.2f} s · {view.events} events · ",
        (f"{view.dropped} dropped", "red" if view.dropped else "dim"),
        " · ",
        (status, "green" if status == "completed" else "yellow" if status == "running" else "red"),
    )
    table = Table(expand=False)
    for column in ("node", "status", "runs", "time", "last message"):
        table.add_column(column, overflow="fold")
    for line in view.nodes.values():
        duration = "" if line.duration_ms is None else f"{line.duration_ms:.1f} ms"
        table.add_row(
            line.name,
            Text(line.status, style=_STYLES.get(line.status, "")),
            str(line.runs),
            duration,
            line.message[:80],
        )
    panels = [
        Panel(
            text[-text_width:],
            title=stream,
            border_style="green" if stream in view.done_streams else "magenta",
        )
        for stream, text in list(view.streams.items())[-2:]
    ]
    return Group(header, table, *panels)


def plain_line(view: RunView, event: Event) -> str | None:
    """One line for `event` in a log, or None for a chunk whose text comes with its final."""
    from ._sinks import render_event

    if event.kind == "llm" and not event.is_final:
        return None
    if event.kind == "llm" and event.scope != "error":
        stream = event.stream_id or event.node_id or "llm"
        return f"[{stream}] {view.streams.get(stream, event.message)}"
    return render_event(event)
