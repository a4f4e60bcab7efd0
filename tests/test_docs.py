"""The documentation's snippets run and print what the docs say they print.

A ```python block directly followed by a ```text block is run in a fresh interpreter (in a
temporary directory); its output must match the text, where "…" stands for any text (times,
session ids).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAIR = re.compile(r"```python\n((?:(?!```).)*)```\s*\n```text\n((?:(?!```).)*)```", re.S)


def snippets() -> list[tuple[str, int, str, str]]:
    found = []
    for path in sorted(DOCS.glob("*.md")):
        text = path.read_text()
        for match in PAIR.finditer(text):
            line = text[: match.start()].count("\n") + 1
            found.append((path.name, line, match.group(1), match.group(2)))
    return found


def matches(expected: str, actual: str) -> bool:
    pattern = ".*?".join(re.escape(part) for part in expected.strip().split("…"))
    return re.fullmatch(pattern, actual.strip(), re.S) is not None


CASES = snippets()


def test_the_docs_have_checked_snippets() -> None:
    assert len([c for c in CASES if c[0] == "concepts.md"]) >= 20


@pytest.mark.parametrize(
    ("doc", "line", "code", "output"), CASES, ids=[f"{c[0]}:{c[1]}" for c in CASES]
)
def test_snippet_prints_what_the_docs_show(
    doc: str, line: int, code: str, output: str, tmp_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    actual = done.stdout + done.stderr
    assert matches(output, actual), f"{doc}:{line} printed:\n{actual}"
