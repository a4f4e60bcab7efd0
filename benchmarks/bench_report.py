"""The bar, the results table and the JSON Lines record of a run."""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench_spawn import Sample

__all__ = ["BARS", "FLOORS", "Row", "floor_row", "print_table", "write_jsonl"]

# weavegraph ops/s over LangGraph ops/s, measured in the same run (DESIGN.md §6).
BARS = {
    "chain": 10.0,
    "chain_sync": 8.0,
    "fanout": 5.0,
    "events": 6.0,
    "events_yield": 5.0,
    "events_multi": 10.0,
    "updates_stream": 10.0,
    "checkpoint_mem": 7.0,
    "checkpoint_sqlite": 5.0,
    "import": 9.0,
}
# Each floor (a bare asyncio.Queue hand-off), the workload whose weavegraph rate is compared
# with it, and the share that workload must reach (None: shown, not judged).
FLOORS: dict[str, tuple[str, float | None]] = {
    "floor": ("events", 0.5),
    "floor_yield": ("events_yield", None),
}


def _median(samples: Sequence[Sample]) -> float | None:
    return statistics.median(s.rate for s in samples) if samples else None


def _peak(samples: Sequence[Sample]) -> int | None:
    return max(s.peak_rss for s in samples) if samples else None


def _paired(top: Sequence[Sample], bottom: Sequence[Sample]) -> float | None:
    """The median of the ratios of samples taken back to back (repetition i of each)."""
    ratios = [a.rate / b.rate for a, b in zip(top, bottom, strict=False)]
    return statistics.median(ratios) if ratios else None


@dataclass(slots=True)
class Row:
    """One row: the samples of each framework, and the bar its ratio must reach.

    Repetition i of each framework ran back to back, so the ratio is the median of the
    per-repetition ratios: a machine that slows down for a while slows both sides of a pair.
    A floor row holds the floor's samples in `weavegraph` (the first column); its ratio is
    the weavegraph rate of `share_of` over the floor's rate, paired the same way.
    """

    workload: str
    weavegraph: list[Sample] = field(default_factory=list)
    langgraph: list[Sample] = field(default_factory=list)
    bar: float | None = None
    share_of: str | None = None
    share: float | None = None
    error: str | None = None

    @property
    def ratio(self) -> float | None:
        if self.share_of is not None:
            return self.share
        return _paired(self.weavegraph, self.langgraph)

    @property
    def passed(self) -> bool | None:
        if self.error is not None:
            return False
        ratio = self.ratio
        return None if self.bar is None or ratio is None else ratio >= self.bar

    def to_json(self) -> dict[str, object]:
        first = "asyncio" if self.share_of is not None else "weavegraph"
        return {
            "workload": self.workload,
            f"{first}_ops_s": _median(self.weavegraph),
            "langgraph_ops_s": _median(self.langgraph),
            "ratio": self.ratio,
            "ratio_of": f"{self.share_of} on weavegraph / floor" if self.share_of else None,
            "ratio_of_medians": self._ratio_of_medians(),
            "bar": self.bar,
            "pass": self.passed,
            f"{first}_peak_rss_bytes": _peak(self.weavegraph),
            "langgraph_peak_rss_bytes": _peak(self.langgraph),
            f"{first}_runs_ops_s": [s.rate for s in self.weavegraph],
            "langgraph_runs_ops_s": [s.rate for s in self.langgraph],
            "error": self.error,
        }

    def _ratio_of_medians(self) -> float | None:
        top, bottom = _median(self.weavegraph), _median(self.langgraph)
        return top / bottom if top is not None and bottom else None


def floor_row(name: str, floor: list[Sample], compared: Row | None, error: str | None) -> Row:
    """The row of floor `name`: its rate, and the compared workload's weavegraph rate as a
    share of it (`compared` ran in the same repetitions, back to back with the floor)."""
    share_of, bar = FLOORS[name]
    row = Row(name, weavegraph=floor, bar=bar, share_of=share_of, error=error)
    if compared is not None:
        row.share = _paired(compared.weavegraph, floor)
    return row


# -- the table --------------------------------------------------------------------------------

_HEADER: tuple[str, ...] = ("workload", "weavegraph ops/s", "LangGraph ops/s", "ratio")
_HEADER += ("wg RSS MiB",)
_HEADER += ("LG RSS MiB", "bar", "result")
_WIDTHS = (18, 17, 16, 19, 11, 11, 7, 7)


def _line(cells: Sequence[str]) -> str:
    first, *rest = zip(cells, _WIDTHS, strict=True)
    return first[0].ljust(first[1]) + "".join(cell.rjust(width) for cell, width in rest)


def _rate(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:,.2f}"


def _mib(value: int | None) -> str:
    return "-" if value is None else f"{value / 2**20:,.1f}"


def _cells(row: Row) -> tuple[str, ...]:
    ratio = row.ratio
    if ratio is None:
        shown = "-"
    elif row.share_of is not None:
        shown = f"{row.share_of} {ratio:.0%}"
    else:
        shown = f"{ratio:.2f}x"
    if row.bar is None:
        bar = "-"
    else:
        bar = f">={row.bar:.0%}" if row.share_of is not None else f">={row.bar:g}x"
    verdict = "ERROR" if row.error else {True: "PASS", False: "FAIL", None: "-"}[row.passed]
    return (
        row.workload,
        _rate(_median(row.weavegraph)),
        _rate(_median(row.langgraph)),
        shown,
        _mib(_peak(row.weavegraph)),
        _mib(_peak(row.langgraph)),
        bar,
        verdict,
    )


def print_table(rows: Iterable[Row]) -> None:
    """The results: median ops/s of each framework, their ratio, peak RSS, bar, verdict."""
    print(_line(_HEADER))
    for row in rows:
        print(_line(_cells(row)))
    print("(floor rows: the bare asyncio.Queue rate, in the first column)")


def write_jsonl(path: Path, records: Iterable[dict[str, object]], run: dict[str, object]) -> None:
    """One JSON object per line: each row's fields with the run's (date, sizes, versions)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps({**run, **record}) + "\n")
