"""A process killed with SIGKILL in the middle of a step; a new process resumes the run.

The final state must equal an uninterrupted run's, and the side-effect log must show every step
exactly once: completed steps are not run again, the interrupted one runs once more.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import crash_worker
from weavegraph import VersionedState
from weavegraph.testing import compare_states

WORKER = Path(crash_worker.__file__)


def child(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


async def crash_and_resume(backend: str, location: str, tmp_path: Path) -> None:
    side_effects = tmp_path / "side_effects.log"
    ready = tmp_path / "ready"
    first = child(backend, location, "job", "run", str(side_effects), "s10", str(ready))
    deadline = time.monotonic() + 60
    while not ready.exists():
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline, "the worker never reached step 11"
        await asyncio.sleep(0.01)
    os.kill(first.pid, signal.SIGKILL)
    first.communicate()
    assert first.returncode == -signal.SIGKILL
    assert side_effects.read_text().split() == [f"s{i}" for i in range(10)]

    store = crash_worker.checkpointer(backend, location)
    async with store:
        latest = await store.load_latest("job")
    assert latest is not None
    assert (latest.step, latest.frontier, latest.status) == (10, ("s10",), "running")

    second = child(backend, location, "job", "resume", str(side_effects))
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0, err
    resumed = VersionedState.from_json(out)
    reference = await crash_worker.build(None).invoke(VersionedState.with_user_message("go"))
    assert compare_states(reference, resumed) == []
    assert resumed.versions == reference.versions
    assert resumed.extra["count"] == 20
    assert side_effects.read_text().split() == [f"s{i}" for i in range(20)]


@pytest.mark.timeout(120)
async def test_sqlite_run_survives_sigkill(tmp_path: Path) -> None:
    await crash_and_resume("sqlite", str(tmp_path / "runs.sqlite"), tmp_path)


@pytest.mark.timeout(120)
async def test_postgres_run_survives_sigkill(postgres_dsn: str, tmp_path: Path) -> None:
    await crash_and_resume("postgres", postgres_dsn, tmp_path)
