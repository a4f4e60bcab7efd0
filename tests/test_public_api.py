from __future__ import annotations

import re
import subprocess
import sys

import weavegraph
import weavegraph.checkpoint


def isort_key(name: str) -> tuple[int, str]:
    """The order ruff (RUF022) keeps: CONSTANTS, then Classes, then functions."""
    if name.isupper() or re.fullmatch(r"[A-Z0-9_]+", name):
        return (0, name)
    if name[0].isupper():
        return (1, name)
    return (2, name)


def test_all_is_sorted_and_importable() -> None:
    for module in (weavegraph, weavegraph.checkpoint):
        names = list(module.__all__)
        assert names == sorted(names, key=isort_key)
        assert len(names) == len(set(names))
        for name in names:
            assert getattr(module, name) is not None, name


def test_every_public_name_has_a_docstring() -> None:
    for name in weavegraph.__all__:
        value = getattr(weavegraph, name)
        if callable(value):
            assert value.__doc__, f"{name} has no docstring"


def test_import_pulls_no_third_party_module() -> None:
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import weavegraph\n"
        "new = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "print(sorted(new - set(sys.stdlib_module_names) - {'weavegraph'}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
