"""Finding the graph a command should run: ``package.module:app`` or ``path/file.py:app``."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from ._app import App
from ._builder import GraphBuilder

__all__ = ["load_app"]


def load_app(target: str) -> App:
    """Import `target` and return the App it names.

    The attribute may be an `App`, a `GraphBuilder` (compiled here), or a function taking no
    arguments that returns either. Without ``:attr``, the attribute ``app`` is used.

    Raises:
        ValueError: the target cannot be imported or does not name a graph; the message says
            what was found instead.
    """
    module_name, _, attr = target.partition(":")
    attr = attr or "app"
    module = _import(module_name)
    try:
        value: object = module
        for part in attr.split("."):
            value = getattr(value, part)
    except AttributeError:
        names = ", ".join(n for n in dir(module) if not n.startswith("_"))
        raise ValueError(f"{module_name!r} has no attribute {attr!r}; it has: {names}") from None
    if callable(value) and not isinstance(value, App | GraphBuilder):
        value = value()
    if isinstance(value, GraphBuilder):
        value = value.compile()
    if not isinstance(value, App):
        raise ValueError(
            f"{target!r} is a {type(value).__name__}, not an App (or a GraphBuilder, or a "
            "function returning one)"
        )
    return value


def _import(name: str) -> object:
    if name.endswith(".py") or "/" in name:
        path = Path(name).resolve()
        if not path.is_file():
            raise ValueError(f"no such file: {path}")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        if spec is None or spec.loader is None:
            raise ValueError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        spec.loader.exec_module(module)
        return module
    if "" not in sys.path and "." not in sys.path:
        sys.path.insert(0, "")  # like `python -m`: modules of the current directory
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ValueError(f"cannot import {name!r}: {exc}") from exc
