"""The cluster options of the `weavegraph` command: what it refuses before starting anything."""

from __future__ import annotations

import io

import pytest
from cluster import TARGET

from weavegraph._cli import main


def test_serve_needs_both_engines(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", TARGET, "--postgres", "host=127.0.0.1"], out=io.StringIO()) == 2
    assert capsys.readouterr().err == (
        "weavegraph serve: --postgres and --redis go together (a cluster needs both)\n"
    )


def test_worker_refuses_a_concurrency_below_one(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["worker", TARGET, "--postgres", "x", "--redis", "y", "--concurrency", "0"]
    assert main(argv, out=io.StringIO()) == 2
    assert capsys.readouterr().err == "weavegraph worker: --concurrency must be at least 1; got 0\n"


def test_worker_needs_both_engines(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["worker", TARGET, "--postgres", "x"])
    assert exit_info.value.code == 2
    assert "the following arguments are required: --redis" in capsys.readouterr().err


def test_worker_with_an_unknown_target(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["worker", "no_such_module:app", "--postgres", "x", "--redis", "y"]
    assert main(argv, out=io.StringIO()) == 2
    assert capsys.readouterr().err.startswith("weavegraph worker: ")


def test_the_distributed_package_exports_documented_names() -> None:
    import weavegraph.distributed as distributed

    names = list(distributed.__all__)
    assert names == sorted(names, key=lambda n: (not n.isupper(), not n[0].isupper(), n))
    for name in names:
        value = getattr(distributed, name)
        if callable(value):
            assert value.__doc__, f"{name} has no docstring"
