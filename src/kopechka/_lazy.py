"""Modules named where they are used but loaded on first use.

Importing a client must not declare the pydantic models: that was most of what ``from kopechka
import KopechkaClient`` cost. A module that needs the models (or the envelopes, or code
extraction) on a hot path binds ``lazy("kopechka._models", __name__)`` under the module's own
name at run time, and imports the real module under ``TYPE_CHECKING`` so that type checkers see
it. The first attribute read imports the module, under Python's import lock (a thread that reads
meanwhile waits for the finished module, never a half-declared one), and rebinds the name to the
module itself: later reads cost what a plain module attribute costs. A function-level import
would cost about a microsecond on every call.

It must not import anything of kopechka.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

__all__ = ["lazy"]


class _Lazy:
    """Stands for a module until an attribute of it is read."""

    __slots__ = ("_home", "_name")

    def __init__(self, name: str, home: str) -> None:
        self._name = name
        self._home = home

    def __getattr__(self, attribute: str) -> Any:
        module = importlib.import_module(self._name)
        vars(sys.modules[self._home])[self._name.rpartition(".")[2]] = module
        return getattr(module, attribute)

    def __repr__(self) -> str:
        return f"<module {self._name!r}, loaded on first use>"


def lazy(name: str, home: str) -> Any:
    """A stand-in for module ``name`` that module ``home`` binds under the last part of the
    name; the first attribute read loads the module and rebinds that name to it."""
    return _Lazy(name, home)
