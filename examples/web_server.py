"""Serve a research-assistant workflow over HTTP, with its live run page.

The graph fans out to three searches, joins them, streams a draft token by token like a
language model, and loops through a review until the draft covers every finding.

Run: python examples/web_server.py [--port 3000] [--pace 0.25] [--memory]

Then open http://127.0.0.1:3000/ (type a question, press Start run), or from a shell::

    curl -s -X POST localhost:3000/runs -H 'content-type: application/json' \\
        -d '{"input": "What is a superstep?"}'
    curl -N localhost:3000/runs/<session_id>/events
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable

from weavegraph import (
    END,
    START,
    App,
    GraphBuilder,
    Message,
    NodeContext,
    NodePartial,
    StateSnapshot,
)
from weavegraph.web import InMemoryEventLog, serve_sync

FINDINGS = {
    "search_web": ["Bulk-synchronous parallel: compute, then exchange at a barrier."],
    "search_docs": ["Nodes of a step read one immutable snapshot.", "Updates merge in order."],
    "search_code": ["The barrier folds partials through reducers in frontier order."],
}
Node = Callable[[StateSnapshot, NodeContext], Awaitable[NodePartial]]


def build_app(pace: float = 0.25) -> App:
    """The workflow; `pace` is the seconds each simulated piece of work takes."""

    async def plan(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
        question = snapshot.messages[-1].content if snapshot.messages else "?"
        ctx.emit("plan", f"planning {len(FINDINGS)} searches for: {question}")
        await asyncio.sleep(pace)
        return NodePartial(extra={"question": question, "revisions": 0})

    def searcher(name: str) -> Node:
        async def search(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
            for index, finding in enumerate(FINDINGS[name], 1):
                await asyncio.sleep(pace * (1 + index / 2))
                ctx.emit("search", f"found #{index}: {finding}")
            return NodePartial(extra={name: FINDINGS[name]})

        return search

    async def draft(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
        revision = snapshot.extra["revisions"]
        notes = [note for name in FINDINGS for note in snapshot.extra[name]]
        text = " ".join(notes[: 2 + 2 * revision])
        stream = f"draft-{revision + 1}"
        for token in text.split(" "):
            ctx.emit_llm_chunk(token + " ", stream_id=stream)
            await asyncio.sleep(pace / 8)
        ctx.emit_llm_final(stream_id=stream)
        return NodePartial(
            messages=[Message.assistant(text)],
            extra={"draft": text, "notes": len(notes), "revisions": revision + 1},
        )

    async def review(snapshot: StateSnapshot, ctx: NodeContext) -> NodePartial:
        covered = snapshot.extra["draft"].count(". ") + 1
        verdict = "done" if covered >= snapshot.extra["notes"] else "revise"
        ctx.emit("review", f"the draft covers {covered}/{snapshot.extra['notes']}: {verdict}")
        await asyncio.sleep(pace)
        return NodePartial(extra={"verdict": verdict})

    def route(snapshot: StateSnapshot) -> str:
        return str(snapshot.extra["verdict"])

    builder = GraphBuilder().add_node("plan", plan).add_edge(START, "plan")
    for name in FINDINGS:
        builder.add_node(name, searcher(name)).add_edge("plan", name)
    builder.add_node("draft", draft).add_edge(list(FINDINGS), "draft")
    builder.add_node("review", review).add_edge("draft", "review")
    builder.add_conditional_edges("review", route, {"revise": "draft", "done": END})
    return builder.compile()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--pace", type=float, default=0.25, help="seconds per unit of work")
    parser.add_argument("--memory", action="store_true", help="keep the event log in memory")
    args = parser.parse_args()
    options = {"event_log": InMemoryEventLog()} if args.memory else {}
    print(f"weavegraph web server on http://{args.host}:{args.port}/ (Ctrl-C to stop)", flush=True)
    serve_sync(build_app(args.pace), host=args.host, port=args.port, log_level="warning", **options)


if __name__ == "__main__":
    main()
