"""One repetition of one workload, in a process of its own.

Run: ``python benchmarks/bench_child.py WORKLOAD FRAMEWORK [--quick]``

Imports only the framework's workload module, runs the workload once and prints its `Result`
as one JSON line (`ops`, `seconds`, and the workload's own detail). A wrong result raises
`BenchmarkError`, so the process exits non-zero and prints why.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import json

from bench_common import QUICK, STANDARD, Result

FRAMEWORKS = {
    "weavegraph": "workloads_weavegraph",
    "langgraph": "workloads_langgraph",
    "asyncio": "workloads_floor",
}


def run_workload(workload: str, framework: str, *, quick: bool) -> Result:
    """Run `workload` of `framework` once, in this process."""
    function = importlib.import_module(FRAMEWORKS[framework]).WORKLOADS[workload]
    sizes = QUICK if quick else STANDARD
    if inspect.iscoroutinefunction(function):
        result: Result = asyncio.run(function(sizes))
    else:
        result = function(sizes)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload")
    parser.add_argument("framework", choices=sorted(FRAMEWORKS))
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    result = run_workload(args.workload, args.framework, quick=args.quick)
    print(json.dumps({"ops": result.ops, "seconds": result.seconds, **result.detail}))


if __name__ == "__main__":
    main()
