"""The `weavegraph` command: run a graph with live progress, print it, serve it, work a queue."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from ._app import App
from ._errors import SessionError, WeavegraphError
from ._load import load_app
from ._message import Message
from ._progress import RunView, live_table, plain_line
from ._runner import AppRunner
from ._state import VersionedState

__all__ = ["main", "parse_input"]

DEMO_TARGET = "weavegraph.demo:app"
DEMO_CHECKPOINTS = ".weavegraph/demo.sqlite"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="weavegraph", description="Run weavegraph workflows and watch their events."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run a graph and show its progress live")
    run.add_argument("target", help="what to run: package.module:app or path/file.py:app")
    _run_options(run)
    demo = commands.add_parser("demo", help="run the demo workflow (a research assistant)")
    _run_options(demo)
    serve = commands.add_parser("serve", help="serve a graph over HTTP with its live run page")
    serve.add_argument("target", help="package.module:app or path/file.py:app")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=3000, help="port to listen on")
    serve.add_argument("--data-dir", default=".weavegraph", help="folder of the durable event log")
    _cluster_options(serve, required=False)
    worker = commands.add_parser(
        "worker", help="run queued runs of a graph (PostgreSQL queue, events to Redis)"
    )
    worker.add_argument("target", help="package.module:app or path/file.py:app")
    _cluster_options(worker, required=True)
    worker.add_argument("--concurrency", type=int, default=4, help="most runs at once")
    worker.add_argument(
        "--lease", type=float, default=30.0, help="seconds before a silent worker's runs move"
    )
    worker.add_argument(
        "--poll", type=float, default=5.0, help="most seconds between looks at the queue"
    )
    graph = commands.add_parser("graph", help="print a graph as Mermaid (or DOT)")
    graph.add_argument("target", help="package.module:app or path/file.py:app")
    graph.add_argument("--format", choices=("mermaid", "dot"), default="mermaid")
    return parser


def _cluster_options(command: argparse.ArgumentParser, *, required: bool) -> None:
    both = "" if required else " (with --redis: serve runs executed by workers)"
    command.add_argument(
        "--postgres", metavar="DSN", required=required, help=f"the PostgreSQL database{both}"
    )
    command.add_argument(
        "--redis", metavar="URL", required=required, help=f"the Redis server{both}"
    )
    command.add_argument(
        "--graph", default=None, help="the graph's name in the run queue (default: the target)"
    )


def _run_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--input",
        default=None,
        help="the initial state: text (a user message), a JSON string, or a JSON object "
        '{"messages": [{"role": "user", "content": "..."}], "extra": {...}}',
    )
    output = command.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print events as JSON Lines")
    output.add_argument("--plain", action="store_true", help="one line per event, no live view")
    command.add_argument("--timeout", type=float, default=None, help="seconds the run may take")
    command.add_argument(
        "--checkpoints",
        metavar="PATH",
        default=DEMO_CHECKPOINTS if command.prog.endswith(" demo") else None,
        help="an SQLite file for checkpoints and events (in memory if not given; the demo "
        f"uses {DEMO_CHECKPOINTS})",
    )
    command.add_argument(
        "--resume", metavar="SESSION", help="continue this session from its last checkpoint"
    )


def parse_input(text: str | None) -> VersionedState:
    """The initial state described by ``--input``.

    Raises:
        ValueError: a JSON object with unknown keys or malformed messages.
    """
    if text is None:
        return VersionedState()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return VersionedState.with_user_message(text)
    if isinstance(data, str):
        return VersionedState.with_user_message(data)
    if not isinstance(data, dict):
        raise ValueError(f"--input must be text or a JSON object; got {type(data).__name__}")
    unknown = sorted(set(data) - {"messages", "extra", "input"})
    if unknown:
        raise ValueError(
            f"--input has unknown keys {', '.join(unknown)}; use messages, extra or input"
        )
    messages = [Message.from_dict(m) for m in data.get("messages", ())]
    if "input" in data:
        messages.append(Message.user(str(data["input"])))
    extra = data.get("extra") or {}
    if not isinstance(extra, dict):
        raise ValueError("--input extra must be a JSON object")
    return VersionedState(messages=messages, extra=extra)


async def _run(app: App, state: VersionedState, args: argparse.Namespace, out: TextIO) -> int:
    async with contextlib.AsyncExitStack() as stack:
        store = log = None
        if args.checkpoints:
            from .checkpoint import SQLiteCheckpointer, SQLiteEventLog

            store = await stack.enter_async_context(SQLiteCheckpointer(args.checkpoints))
            log = await stack.enter_async_context(SQLiteEventLog(args.checkpoints))
        runner = app.runner(checkpointer=store, event_log=log)
        try:
            if args.resume:
                if await runner.checkpointer.load_latest(args.resume) is None:
                    where = args.checkpoints or "memory (pass --checkpoints PATH)"
                    raise SessionError(f"no checkpoint of session {args.resume!r} in {where}")
                session = await runner.create_session(session_id=args.resume)
            else:
                session = await runner.create_session(state)
        except WeavegraphError as exc:
            await runner.aclose()
            print(f"error: {exc}", file=sys.stderr)
            return 1
        code = await _follow(runner, session, args, out)
        if args.checkpoints and not args.json:
            out.write(f"session {session} is saved in {args.checkpoints}\n")
        return code


async def _follow(runner: AppRunner, session: str, args: argparse.Namespace, out: TextIO) -> int:
    """Run the session while drawing its events; print the final state."""
    app = runner.app
    stream = runner.event_bus.subscribe(session_id=session, lossless=True)
    view = RunView.for_nodes(app.graph.nodes)
    mode = "json" if args.json else "plain" if args.plain or not out.isatty() else "live"
    watcher = asyncio.create_task(_watch(stream, view, mode, out))
    error: BaseException | None = None
    try:
        final = await runner.run_until_complete(session, timeout=args.timeout)
    except WeavegraphError as exc:
        error, final = exc, runner.session(session).state
    finally:
        await watcher
        await runner.aclose()
    if mode != "json":
        _print_final(final, view, out)
    if error is not None:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


async def _watch(stream: object, view: RunView, mode: str, out: TextIO) -> None:
    from ._stream import EventStream

    assert isinstance(stream, EventStream)
    if mode == "live":
        from rich.console import Console
        from rich.live import Live

        console = Console(file=out)
        with Live(live_table(view), console=console, refresh_per_second=12) as live:
            async for event in stream:
                view.apply(event)
                live.update(live_table(view))
        return
    async for event in stream:
        view.apply(event)
        line = event.to_json() if mode == "json" else plain_line(view, event)
        if line is not None:
            out.write(line + "\n")
    out.flush()


def _print_final(state: VersionedState, view: RunView, out: TextIO) -> None:
    out.write(
        f"\n{view.status or 'stopped'} at step {view.step}, {view.events} events, "
        f"{view.dropped} dropped, {view.elapsed:.2f} s\n"
    )
    for message in state.messages:
        out.write(f"{message.role}: {message.content}\n")
    if state.extra:
        out.write(f"extra: {json.dumps(state.extra, sort_keys=True, ensure_ascii=False)}\n")
    for error in state.errors:
        out.write(f"error: {error.scope}: {error.error.message}\n")
    out.flush()


def _serve(app: App, args: argparse.Namespace, out: TextIO) -> int:
    if (args.postgres is None) != (args.redis is None):
        raise ValueError("--postgres and --redis go together (a cluster needs both)")
    if args.postgres is not None:
        from .distributed import serve_cluster

        graph = args.graph or args.target
        out.write(f"serving graph {graph!r} from the cluster on http://{args.host}:{args.port}/\n")
        out.flush()
        serve_cluster(
            app, graph=graph, postgres=args.postgres, redis=args.redis, host=args.host,
            port=args.port,
        )  # fmt: skip
        return 0
    from .web import serve_sync

    out.write(f"serving {len(app.graph.nodes)} nodes on http://{args.host}:{args.port}/\n")
    out.flush()
    serve_sync(app, host=args.host, port=args.port, data_dir=args.data_dir)
    return 0


def _worker(app: App, args: argparse.Namespace, out: TextIO) -> int:
    from .distributed import run_worker

    if args.concurrency < 1:
        raise ValueError(f"--concurrency must be at least 1; got {args.concurrency}")
    asyncio.run(
        run_worker(
            app,
            graph=args.graph or args.target,
            postgres=args.postgres,
            redis=args.redis,
            concurrency=args.concurrency,
            lease=args.lease,
            poll=args.poll,
            out=out,
        )
    )
    return 0


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Entry point of the `weavegraph` command; returns the exit status."""
    args = _parser().parse_args(argv)
    out = out or sys.stdout
    try:
        if args.command == "graph":
            app = load_app(args.target)
            out.write(app.to_mermaid() if args.format == "mermaid" else app.to_dot())
            return 0
        if args.command == "serve":
            return _serve(load_app(args.target), args, out)
        if args.command == "worker":
            return _worker(load_app(args.target), args, out)
        target = DEMO_TARGET if args.command == "demo" else args.target
        app = load_app(target)
        state = parse_input(args.input)
        if args.command == "demo" and args.input is None:
            from .demo import initial_state

            state = initial_state()
    except ValueError as exc:
        print(f"weavegraph {args.command}: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_run(app, state, args, out))
    except BrokenPipeError:  # e.g. `weavegraph run ... --json | head`: the reader left
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - stops a second error at exit
        return 0
