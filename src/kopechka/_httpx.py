"""The async face's HTTP stack: ``httpx2`` when it is installed, ``httpx`` (>= 0.27) otherwise.

Every async module imports the stack from here, under one name (``from ._httpx import httpx``),
so the choice is made once. It is a plain import of one module or the other: no import hook, no
``sys.modules`` alias, nothing that changes what ``import httpx`` means to the rest of the program.

A caller's ``http_client`` may come from either stack, whichever this module chose: ``stack_of``
names the module it belongs to, so its requests are built, its timeouts given and its exceptions
classified with its own classes. This module must not send a request.
"""

from __future__ import annotations

import sys
from types import ModuleType

INSTALL_HINT = (
    'AsyncKopechkaClient needs httpx2 (or httpx), the optional extra: pip install ".[async]" '
    'from a checkout, pip install "kopechka[async]" from PyPI'
)

try:
    import httpx2 as httpx
except ImportError:  # pragma: no cover - the httpx lane (nox -s tests-httpx) runs this branch
    try:
        import httpx  # type: ignore[no-redef,import-not-found,unused-ignore]
    except ImportError as exc:  # pragma: no cover - exercised in a subprocess without either
        raise ImportError(INSTALL_HINT) from exc

__all__ = ["INSTALL_HINT", "STACKS", "httpx", "network_errors", "stack_of"]

STACKS = ("httpx2", "httpx")
"""The stacks the async face runs on, in the order it prefers them."""


def stack_of(client: object) -> ModuleType:
    """The module (``httpx2`` or ``httpx``) whose ``AsyncClient`` ``client`` is; this module's
    choice when it is neither."""
    name = type(client).__module__.partition(".")[0]
    module = sys.modules.get(name) if name in STACKS else None
    return module if module is not None else httpx


def network_errors(stack: ModuleType) -> tuple[type[BaseException], ...]:
    """What a failed exchange raises on ``stack``: its transport errors, and the OS's."""
    return (stack.TransportError, OSError)
