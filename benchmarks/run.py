"""weavegraph side by side with LangGraph, on the workloads of DESIGN.md §6.

Run: ``make bench``, or ``python benchmarks/run.py [--quick] [--only NAME[,NAME]] [--reps N]``.

Each repetition of each workload runs in a fresh child process (the frameworks alternate);
the table shows the median ops/s of the repetitions, their ratio and each child's peak RSS,
judged against the bar. Every workload checks what it computed and fails loudly if it is
wrong. Rows also go to ``benchmarks/results/latest.jsonl``. ``--profile WORKLOAD`` runs one
workload under cProfile instead. Needs the bench extra: ``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from bench_common import QUICK, STANDARD
from bench_external import Headline, event_bus_throughput, print_headlines, sse_fanout
from bench_report import BARS, FLOORS, Row, floor_row, print_table, write_jsonl
from bench_spawn import ChildError, Sample, measure, warm_up

COMPARED = tuple(BARS)  # chain … checkpoint_sqlite, import: measured on both frameworks
EXTERNAL = ("event_bus", "sse_fanout")
NAMES = (*COMPARED, *FLOORS, *EXTERNAL)
HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "latest.jsonl"
BENCH_EXTRA = ("langgraph", "langgraph-checkpoint-sqlite")
PARTNER = {workload: floor for floor, (workload, _) in FLOORS.items()}  # events -> floor


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--only", metavar="NAME[,NAME]", help=f"a subset of: {', '.join(NAMES)}")
    parser.add_argument("--reps", type=int, help="repetitions per workload (default 5; quick 3)")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a row misses the bar")
    parser.add_argument("--profile", metavar="WORKLOAD", help="cProfile one workload and exit")
    parser.add_argument(
        "--framework",
        choices=("weavegraph", "langgraph"),
        default="weavegraph",
        help="of --profile",
    )
    args = parser.parse_args(argv)
    if args.reps is None:
        args.reps = 3 if args.quick else 5
    if args.reps < 3:
        parser.error("--reps must be at least 3 (the table shows medians)")
    names = set(NAMES if args.only is None else (n.strip() for n in args.only.split(",")))
    if unknown := sorted(names - set(NAMES)):
        parser.error(f"unknown workload(s) {', '.join(unknown)}; choose from {', '.join(NAMES)}")
    # A workload judged against a floor brings its floor along.
    names |= {PARTNER[name] for name in names if name in PARTNER}
    args.names = [n for n in NAMES if n in names]
    return args


def _missing_extra() -> list[str]:
    missing = []
    for distribution in (*BENCH_EXTRA, "weavegraph"):
        try:
            metadata.version(distribution)
        except metadata.PackageNotFoundError:
            missing.append(distribution)
    return missing


Plan = tuple[tuple[str, str], ...]  # (workload, framework) pairs run back to back


def _repeat(
    plan: Plan, reps: int, quick: bool
) -> tuple[dict[tuple[str, str], list[Sample]], str | None]:
    """`reps` rounds, each running every entry of `plan` once in a fresh process.

    Stops at the first failure and returns what was measured so far, with the error.
    """
    samples: dict[tuple[str, str], list[Sample]] = {entry: [] for entry in plan}
    try:
        for _ in range(reps):
            for workload, framework in plan:
                samples[workload, framework].append(measure(workload, framework, quick=quick))
    except ChildError as exc:
        print(f"!! {plan[0][0]}: {exc}", file=sys.stderr, flush=True)
        return samples, str(exc)
    finally:
        for (workload, framework), found in samples.items():
            rates = ", ".join(f"{s.rate:,.0f}" if s.rate >= 100 else f"{s.rate:.2f}" for s in found)
            print(f"  {workload} on {framework}, ops/s in run order: {rates}", flush=True)
    return samples, None


def _external(names: list[str], quick: bool) -> tuple[list[Headline], list[str]]:
    headlines: list[Headline] = []
    errors: list[str] = []
    for name, bench in (("event_bus", event_bus_throughput), ("sse_fanout", sse_fanout)):
        if name not in names:
            continue
        print(f"  {name}: running its script", flush=True)
        try:
            found = bench(quick=quick)
        except (RuntimeError, OSError, ValueError) as exc:
            errors.append(f"{name}: {exc}")
            continue
        if found is None:
            print(f"  {name}: benchmarks/{name}.py does not exist; skipped", flush=True)
        else:
            headlines += found
    return headlines, errors


def _git() -> dict[str, object]:
    """The commit measured, and whether src/ had changes not yet committed."""

    def git(*argv: str) -> str:
        done = subprocess.run(["git", *argv], capture_output=True, text=True, cwd=HERE)
        return done.stdout.strip()

    return {"commit": git("rev-parse", "HEAD"), "src_changed": bool(git("status", "-s", "../src"))}


def _run_record(args: argparse.Namespace) -> dict[str, object]:
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "reps": args.reps,
        "sizes": dataclasses.asdict(QUICK if args.quick else STANDARD),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "versions": {d: metadata.version(d) for d in ("weavegraph", *BENCH_EXTRA)},
        "git": _git(),
    }


def _measure(args: argparse.Namespace) -> list[Row]:
    """Every selected row; a floor runs in the same rounds as the workload judged against it."""
    rows: list[Row] = []
    floors: list[Row] = []
    for name in args.names:
        if name in FLOORS and FLOORS[name][0] not in args.names:  # a floor on its own
            samples, error = _repeat(((name, "asyncio"),), args.reps, args.quick)
            floors.append(floor_row(name, samples[name, "asyncio"], None, error))
        if name not in COMPARED:
            continue
        floor = PARTNER.get(name)
        plan: Plan = ((name, "weavegraph"), (name, "langgraph"))
        samples, error = _repeat(
            (*plan, (floor, "asyncio")) if floor else plan, args.reps, args.quick
        )
        rows.append(Row(name, samples[plan[0]], samples[plan[1]], BARS[name], error=error))
        if floor:
            floors.append(floor_row(floor, samples[floor, "asyncio"], rows[-1], error))
    return rows + floors


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    if missing := _missing_extra():
        print(
            f"missing: {', '.join(missing)}. Install the benchmark dependencies first:\n"
            "    .venv/bin/pip install -e '.[bench]'",
            file=sys.stderr,
        )
        return 2
    if args.profile:
        from bench_profile import profile  # cProfile stays out of the measuring parent

        profile(args.profile, args.framework, quick=args.quick)
        return 0
    run = _run_record(args)
    load = ", ".join(f"{x:.2f}" for x in run["load_average_at_start"])  # type: ignore[attr-defined]
    print(f"{run['date']}  reps={args.reps}  quick={args.quick}  load average {load}")
    print(f"versions: {run['versions']}", flush=True)
    warm_up()
    rows = _measure(args)
    headlines, errors = _external(args.names, args.quick)
    print()
    print_table(rows)
    if headlines:
        print("\nother benchmarks:")
        print_headlines(headlines)
    run["load_average_at_end"] = os.getloadavg()
    write_jsonl(RESULTS, [*(row.to_json() for row in rows), *headlines], run)
    print(f"\nrows written to {os.path.relpath(RESULTS)}")
    errors += [f"{row.workload}: {row.error}" for row in rows if row.error]
    for error in errors:
        print(f"ERROR {error}", file=sys.stderr)
    missed = [row.workload for row in rows if row.passed is False and row.error is None]
    if missed:
        print(f"below the bar: {', '.join(missed)}")
    return 1 if errors or (args.strict and missed) else 0


if __name__ == "__main__":
    sys.exit(main())
