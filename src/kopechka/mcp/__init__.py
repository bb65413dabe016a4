"""``kopechka mcp``: the Kopechka API as Model Context Protocol tools that cannot overspend.

The public door of the ``mcp`` extra (``pip install "kopechka[mcp]"``): ``Guards`` (the operator's
spend guards), ``create_server`` (an ``MCPServer`` over a ``KopechkaClient``), ``shutdown`` (its
refunds when it stops) and ``main`` (the ``kopechka mcp`` command). Everything else in this
package is private.

This module must stay importable without the SDK: ``Guards`` needs nothing beyond kopechka, and the
names that need the SDK are loaded on first use, so ``kopechka --help`` never pays for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._options import Guards

if TYPE_CHECKING:
    from .._cli import mcp_main as main
    from ._server import create_server, shutdown

__all__ = ["Guards", "create_server", "main", "shutdown"]


def __getattr__(name: str) -> Any:
    if name in ("create_server", "shutdown"):
        from . import _server  # noqa: PLC0415 - the SDK loads on first use

        return getattr(_server, name)
    if name == "main":  # the command line's one parser (it loads the SDK only to serve)
        from .._cli import mcp_main  # noqa: PLC0415 - the command line loads on first use

        return mcp_main
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
