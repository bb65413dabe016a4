"""The offline Kopechka API, for tests that must not spend money.

``Sandbox`` serves a faithful, stateful emulation of the documented API on loopback; the pytest
plugin (registered through the ``pytest11`` entry point) offers it as the fixtures
``kopechka_sandbox`` and ``kopechka_client``. The API's OpenAPI 3.1 description ships beside this
module (``openapi.json``) and is served by every sandbox at ``{root}/openapi.json``.

Names load on first access (PEP 562), so the command line can add the ``sandbox`` command's
options without loading the sandbox and the client.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._app import Fault, RecordedRequest
    from ._automail import AutoMail
    from ._sandbox import Sandbox
    from ._state import DEFAULT_DOMAINS, SandboxDomain, SandboxError

__all__ = [
    "DEFAULT_DOMAINS",
    "AutoMail",
    "Fault",
    "RecordedRequest",
    "Sandbox",
    "SandboxDomain",
    "SandboxError",
]

_HOMES = {
    "DEFAULT_DOMAINS": "._state", "SandboxDomain": "._state", "SandboxError": "._state",
    "Fault": "._faults", "RecordedRequest": "._records", "AutoMail": "._automail",
    "Sandbox": "._sandbox",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'kopechka.testing' has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
