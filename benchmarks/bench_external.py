"""The project's other benchmark scripts, run as they are; their headline numbers collected.

`event_bus_throughput.py` prints a table (case, bus ev/s, queue ev/s, ratio) that is parsed
here. `sse_fanout.py` is run if it exists: with `--json` if its help offers that flag, otherwise
its last output lines are shown as they are.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

__all__ = ["Headline", "event_bus_throughput", "sse_fanout"]

HERE = Path(__file__).resolve().parent
_ROW = re.compile(r"^(?P<case>\S.*?)\s{2,}(?P<bus>[\d,]+)\s+(?P<queue>[\d,]+)\s+(?P<ratio>[\d.]+)$")

Headline = dict[str, object]


def _run(argv: list[str], timeout: float = 900) -> str:
    done = subprocess.run(
        [sys.executable, *argv], capture_output=True, text=True, cwd=HERE.parent, timeout=timeout
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited with {done.returncode}:\n{done.stderr}")
    return done.stdout


def event_bus_throughput(*, quick: bool) -> list[Headline]:
    """Each case of the bus throughput benchmark: bus ev/s, queue ev/s and their ratio."""
    argv = [str(HERE / "event_bus_throughput.py")]
    if quick:
        argv += ["--events", "10000", "--repeat", "1"]
    output = _run(argv)
    rows = []
    for line in output.splitlines():
        if "!!" in line:
            raise RuntimeError(f"event_bus_throughput.py reported a loss: {line.strip()}")
        if match := _ROW.match(line.strip()):
            rows.append(
                {
                    "benchmark": "event_bus_throughput",
                    "case": match["case"],
                    "bus_ev_s": float(match["bus"].replace(",", "")),
                    "queue_ev_s": float(match["queue"].replace(",", "")),
                    "ratio": float(match["ratio"]),
                }
            )
    if not rows:
        raise RuntimeError(f"no result rows in the output of event_bus_throughput.py:\n{output}")
    return rows


def sse_fanout(*, quick: bool) -> list[Headline] | None:
    """The SSE fan-out benchmark's figures, or None when the script does not exist (yet)."""
    script = HERE / "sse_fanout.py"
    if not script.exists():
        return None
    usage = _run([str(script), "--help"], timeout=60)
    argv = [str(script)]
    if quick and "--quick" in usage:
        argv.append("--quick")
    elif quick and "--repeat" in usage:
        argv += ["--repeat", "1"]
    if "--json" in usage:
        output = _run([*argv, "--json"])
        return [{"benchmark": "sse_fanout", **_json_object(line)} for line in _lines(output)]
    lines = _lines(_run(argv))
    # The section headers ("N client(s) ...") and weavegraph's own lines ("wg ...").
    headline = [line for line in lines if "client(s)" in line or line.strip().startswith("wg")]
    return [{"benchmark": "sse_fanout", "output": line} for line in headline or lines[-6:]]


def _lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.strip()]


def _json_object(line: str) -> dict[str, object]:
    try:
        value = json.loads(line)
    except json.JSONDecodeError:
        return {"output": line}
    return value if isinstance(value, dict) else {"value": value}


def print_headlines(headlines: list[Headline]) -> None:
    """Print the collected figures, one line each."""
    for item in headlines:
        if item["benchmark"] == "event_bus_throughput":
            print(
                f"  event_bus_throughput  {item['case']:<34}{item['bus_ev_s']:>12,.0f} ev/s"
                f"  ({item['ratio']:.2f} x asyncio.Queue)"
            )
        else:
            fields = {k: v for k, v in item.items() if k != "benchmark"}
            text = fields["output"] if set(fields) == {"output"} else json.dumps(fields)
            print(f"  {item['benchmark']}  {text}")
