"""Starting measurements in fresh child processes, and reading their peak RSS.

Each repetition runs ``benchmarks/bench_child.py`` (or, for the import workload,
``python -c "import ..."``) in a new process; the parent reads the child's peak RSS from the
kernel with `os.wait4`, so every figure is that of a process that ran nothing else.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["IMPORTS", "ChildError", "Sample", "measure", "run_child", "warm_up"]

HERE = Path(__file__).resolve().parent
CHILD = HERE / "bench_child.py"
# Children cache bytecode (in a git-ignored folder), as an installed package has it: in an
# environment with PYTHONDONTWRITEBYTECODE, weavegraph would be compiled from source at every
# start, while LangGraph's site-packages came with .pyc files from pip.
PYCACHE = HERE / "results" / "pycache"
IMPORTS = {"weavegraph": "import weavegraph", "langgraph": "import langgraph.graph"}
TIMEOUT = 900.0  # seconds: a child hung this long is killed and its row reports an error


class ChildError(Exception):
    """A child process failed: its workload raised, it hung, or it printed no result."""


@dataclass(frozen=True, slots=True)
class Sample:
    """One repetition: its rate, the child's peak RSS in bytes, and what the child printed."""

    rate: float
    peak_rss: int
    detail: dict[str, object]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return env


def run_child(argv: list[str]) -> tuple[str, float, int]:
    """Run `argv` to its end; return its stdout, wall seconds and peak RSS in bytes.

    Raises ChildError with the child's stderr when it exits non-zero or times out.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdout=out, stderr=err, cwd=HERE.parent, env=_env())
        killer = threading.Timer(TIMEOUT, process.kill)
        killer.start()
        try:
            # wait4, not wait(): its rusage is this child's alone (RUSAGE_CHILDREN would give
            # the largest of all children so far).
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            killer.cancel()
        wall = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if process.returncode != 0:
        raise ChildError(f"{' '.join(argv[1:])} exited with {process.returncode}:\n{stderr}")
    return stdout, wall, usage.ru_maxrss * 1024  # ru_maxrss is in KiB on Linux


def warm_up() -> None:
    """Fill the children's bytecode cache of both frameworks before anything is timed."""
    for statement in IMPORTS.values():
        run_child([sys.executable, "-c", statement])


def measure(workload: str, framework: str, *, quick: bool) -> Sample:
    """One repetition of `workload` on `framework`, in a fresh process."""
    if workload == "import":
        _, wall, rss = run_child([sys.executable, "-c", IMPORTS[framework]])
        return Sample(1.0 / wall, rss, {"seconds": wall})
    argv = [sys.executable, str(CHILD), workload, framework]
    stdout, _, rss = run_child([*argv, "--quick"] if quick else argv)
    lines = stdout.strip().splitlines()
    if not lines:
        raise ChildError(f"{workload} on {framework} printed no result")
    data = json.loads(lines[-1])
    return Sample(data["ops"] / data["seconds"], rss, data)
