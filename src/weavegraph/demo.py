"""The demo workflow: a research assistant that fans out, joins, streams a draft and revises it.

::

    START → plan → {search_web, search_docs, search_code} ⇒ join ⇒ synthesize → draft → review
                                                                                ↑         │
                                                                                └─ revise ┘ → END

Run it with ``python -m weavegraph demo`` (or ``make demo``). `app` is the compiled graph, so
other tools can load it as ``weavegraph.demo:app``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from ._builder import GraphBuilder
from ._graph import END, START
from ._message import Message
from ._node import NodeContext, NodePartial
from ._state import StateSnapshot, VersionedState

__all__ = ["QUESTION", "app", "build_app", "initial_state"]

QUESTION = "How do supersteps keep concurrent nodes from stepping on each other?"
SOURCES = {
    "search_web": ["Bulk-synchronous parallel: compute, then exchange at a barrier."],
    "search_docs": ["Nodes of a step read one immutable snapshot.", "Updates merge in order."],
    "search_code": ["The barrier folds partials through reducers in frontier order."],
}
#: Seconds each simulated piece of work takes; small so the demo finishes in about a second.
PACE = 0.02


async def plan(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
    """Split the question into searches."""
    question = snapshot.messages[-1].content if snapshot.messages else QUESTION
    ctx.emit("plan", f"planning searches for: {question}", searches=len(SOURCES))
    await asyncio.sleep(PACE)
    return NodePartial(extra={"question": question, "revisions": 0})


def searcher(name: str) -> Callable[[StateSnapshot, NodeContext], Awaitable[NodePartial]]:
    """A node that 'searches' one source and reports what it found."""

    async def search(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
        findings = SOURCES[name]
        for index, finding in enumerate(findings, 1):
            await asyncio.sleep(PACE)
            ctx.emit("search", f"{name} found #{index}: {finding}")
        return NodePartial(extra={name: findings})

    search.__name__ = name
    return search


async def synthesize(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
    """Combine the findings of every search (runs once, after all of them)."""
    notes = [note for name in SOURCES for note in snapshot.extra.get(name, ())]
    ctx.emit("synthesize", f"combined {len(notes)} findings from {len(SOURCES)} searches")
    return NodePartial(extra={"notes": notes})


async def draft(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
    """Write an answer, streaming it token by token like a language model would."""
    revision = snapshot.extra["revisions"]
    text = " ".join(snapshot.extra["notes"][: 2 + revision])
    for token in text.split(" "):
        ctx.emit_llm_chunk(token + " ", stream_id=f"draft-{revision}")
        await asyncio.sleep(PACE / 10)
    ctx.emit_llm_final(stream_id=f"draft-{revision}")
    return NodePartial(
        messages=[Message.assistant(text)],
        extra={"draft": text, "revisions": revision + 1},
    )


async def review(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
    """Accept the draft once it uses every finding; otherwise ask for a revision."""
    covered = len(snapshot.extra["draft"].split(". "))
    wanted = len(snapshot.extra["notes"])
    verdict = "accept" if covered >= wanted else "revise"
    ctx.emit("review", f"draft covers {covered}/{wanted} findings: {verdict}")
    return NodePartial(extra={"verdict": verdict})


def route_review(snapshot: StateSnapshot) -> str:
    """Loop back to `draft` until the review accepts."""
    return "done" if snapshot.extra["verdict"] == "accept" else "revise"


def build_app() -> GraphBuilder:
    """The demo graph, not yet compiled."""
    builder = GraphBuilder().add_node("plan", plan).add_edge(START, "plan")
    for name in SOURCES:
        builder.add_node(name, searcher(name))
        builder.add_edge("plan", name)
    builder.add_node("synthesize", synthesize).add_edge(list(SOURCES), "synthesize")
    builder.add_node("draft", draft).add_node("review", review)
    builder.add_edge("synthesize", "draft").add_edge("draft", "review")
    builder.add_conditional_edges("review", route_review, {"revise": "draft", "done": END})
    return builder


def initial_state(question: str = QUESTION) -> VersionedState:
    """The state the demo starts from."""
    return VersionedState.with_user_message(question)


app = build_app().compile()
