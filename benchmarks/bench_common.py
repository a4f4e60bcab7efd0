"""What every workload shares: the sizes, the measured result, and loud verification."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

__all__ = ["QUICK", "STANDARD", "BenchmarkError", "Result", "Sizes", "Stopwatch", "check"]


class BenchmarkError(Exception):
    """A workload computed something wrong: its numbers must not be reported."""


def check(condition: bool, message: str) -> None:
    """Raise BenchmarkError unless `condition` (not `assert`: -O must not skip it)."""
    if not condition:
        raise BenchmarkError(message)


@dataclass(frozen=True, slots=True)
class Sizes:
    """The workload sizes.

    Attributes:
        chain: nodes in the linear chain.
        runs: invocations of the chain (chain, chain_sync, updates_stream, checkpoint_*).
        fanout: parallel nodes before the join.
        fanout_runs: invocations of the fan-out graph.
        events: custom events of one run (events*, and the asyncio.Queue floor).
        consumers: concurrent consumers of events_multi.
        batch: events between two yields to the loop in events and events_multi.
    """

    chain: int = 100
    runs: int = 40
    fanout: int = 50
    fanout_runs: int = 80
    events: int = 100_000
    consumers: int = 4
    batch: int = 256


STANDARD = Sizes()
QUICK = Sizes(chain=20, runs=5, fanout=10, fanout_runs=10, events=10_000)


@dataclass(slots=True)
class Result:
    """One measurement: `ops` operations in `seconds`, and what was checked on the way."""

    ops: int
    seconds: float
    detail: dict[str, object] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.ops / self.seconds


class Stopwatch:
    """Times the measured part of a workload (set-up and warm-up stay outside it)."""

    __slots__ = ("_start", "seconds")

    def __init__(self) -> None:
        self._start = 0.0
        self.seconds = 0.0

    def __enter__(self) -> Stopwatch:
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.seconds = time.perf_counter() - self._start


Workload = Callable[[Sizes], Awaitable[Result]] | Callable[[Sizes], Result]
