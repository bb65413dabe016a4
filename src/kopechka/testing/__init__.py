"""The offline Kopechka API, for tests that must not spend money.

``Sandbox`` serves a faithful, stateful emulation of the documented API on loopback; the pytest
plugin (registered through the ``pytest11`` entry point) offers it as the fixtures
``kopechka_sandbox`` and ``kopechka_client``. The API's OpenAPI 3.1 description ships beside this
module (``openapi.json``) and is served by every sandbox at ``{root}/openapi.json``.
"""

from __future__ import annotations

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
