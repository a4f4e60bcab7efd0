"""cProfile one workload in this process: where its time goes, per operation."""

from __future__ import annotations

import cProfile
import importlib
import pstats

from bench_child import FRAMEWORKS, run_workload

__all__ = ["profile"]


def profile(workload: str, framework: str, *, quick: bool, top: int = 25) -> None:
    """Run the workload under cProfile; print the top functions by own and cumulative time."""
    importlib.import_module(FRAMEWORKS[framework])  # imports stay out of the profile
    profiler = cProfile.Profile()
    profiler.enable()
    result = run_workload(workload, framework, quick=quick)
    profiler.disable()
    per_op = result.seconds / result.ops * 1e6
    print(f"{workload} on {framework}: {result.ops:,} ops, {per_op:.2f} us/op under cProfile")
    print("(totals include building the graph and the warm-up; cProfile slows small calls a lot)")
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
