"""The `weavegraph` command: ``python -m weavegraph demo``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="weavegraph", description="Run weavegraph workflows and watch their events."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run the demo workflow and print its events")
    demo.add_argument("--question", help="the question the demo researches")
    return parser


async def _demo(question: str | None) -> int:
    from . import demo
    from ._sinks import StdOutSink

    state = demo.initial_state(question or demo.QUESTION)
    print(f"weavegraph demo: {len(demo.app.graph.nodes)} nodes, streaming every event\n")
    final = await demo.app.invoke_with_sinks(state, [StdOutSink()])
    print(
        f"\nfinal answer after {final.extra['revisions']} drafts:\n  {final.messages[-1].content}"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `weavegraph` command; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "demo":
        return asyncio.run(_demo(args.question))
    raise AssertionError(f"unhandled command {args.command}")  # argparse rejects others


if __name__ == "__main__":
    sys.exit(main())
