"""The public door: exactly ``kopechka.__all__``, sorted, each name importable, documented and
published as ``kopechka.<name>``."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import types

import pytest

import kopechka
import kopechka.testing
from kopechka.testing import Sandbox

EXPECTED = {
    "APIConnectionError", "APIError", "APIResponseValidationError", "APIStatusError",
    "APITimeoutError", "AsyncKopechkaClient", "AsyncMailbox", "AuthenticationError",
    "BadRequestError", "Cancellation",
    "DEFAULT_BASE_URL", "DEFAULT_MAX_RETRIES", "DEFAULT_MAX_RETRY_WAIT", "DEFAULT_TIMEOUT",
    "Domain", "InternalServerError", "KopechkaClient", "KopechkaError", "Limiter", "Mailbox",
    "Message",
    "MessageList", "NotFoundError", "Order", "OrderClosedError", "OrderOutcomeUnknownError",
    "OrderPage", "OrderStatus", "OrderSummary", "Pagination", "PermissionDeniedError",
    "PollingStatus", "Profile", "RateLimitError", "Slot", "SpendLimitError", "SweepReport",
    "WaitCancelledError", "WaitTimeoutError", "__version__", "exit_on_signals",
}  # fmt: skip


def test_all_is_exactly_the_public_api() -> None:
    assert set(kopechka.__all__) == EXPECTED
    assert len(kopechka.__all__) == len(EXPECTED)
    for name in kopechka.__all__:
        assert getattr(kopechka, name) is not None


def _isort_key(name: str) -> tuple[int, list[object]]:
    """Ruff's RUF022 order: CONSTANTS, then CamelCase, then the rest; natural order in each."""
    if re.fullmatch(r"[A-Z0-9_]+", name) and not name.startswith("_"):
        group = 0
    elif name[:1].isupper():
        group = 1
    else:
        group = 2
    natural = [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]
    return group, natural


def test_all_is_sorted() -> None:
    # sorted as ruff's RUF022 sorts (the linter keeps it so): constants first, then classes, then
    # __version__; plain sorted() would put DEFAULT_* among the classes
    assert kopechka.__all__ == sorted(kopechka.__all__, key=_isort_key)
    assert kopechka.__all__[0] == "DEFAULT_BASE_URL"


def test_lazy_table_matches_all() -> None:
    assert set(kopechka._HOMES) == set(kopechka.__all__) - {"__version__"}
    assert set(dir(kopechka)) >= set(kopechka.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = kopechka.nope


def test_import_kopechka_loads_names_on_first_use() -> None:
    code = (
        "import sys, kopechka; before = 'kopechka._client' in sys.modules;"
        "from kopechka import KopechkaClient; print(before, 'kopechka._client' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]


def test_public_names_live_in_the_package_and_are_documented() -> None:
    for name in kopechka.__all__:
        obj = getattr(kopechka, name)
        if isinstance(obj, type):
            assert obj.__module__ == "kopechka", name
            assert obj.__doc__, name


_NOT_CLASSES = {
    "DEFAULT_BASE_URL", "DEFAULT_MAX_RETRIES", "DEFAULT_MAX_RETRY_WAIT", "DEFAULT_TIMEOUT",
    "__version__", "exit_on_signals",
}  # fmt: skip

_MODULE_NAMES = """
import json, sys
import kopechka
{before}
print(json.dumps({{n: getattr(kopechka, n).__module__ for n in kopechka.__all__
                  if isinstance(getattr(kopechka, n), type)}}))
"""


@pytest.mark.parametrize(
    "before",
    [
        "",
        # an error raised before the user touched kopechka.<Error> still names kopechka
        "from kopechka._exceptions import NotFoundError; assert NotFoundError.__module__ == "
        "'kopechka', NotFoundError.__module__",
        # loading the client loads the mailbox: it is published with it; the models load later
        # (on the first decode, here by hand) and are published when they load
        "from kopechka import KopechkaClient; from kopechka._models import Order as O;"
        "from kopechka._mail import Mailbox as M;"
        "assert O.__module__ == M.__module__ == 'kopechka', (O.__module__, M.__module__)",
    ],
    ids=["lazy", "errors-at-import", "client-then-models"],
)
def test_public_classes_say_kopechka_in_a_fresh_process(before: str) -> None:
    code = _MODULE_NAMES.format(before=before)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert out.returncode == 0, out.stderr
    modules = json.loads(out.stdout)
    assert set(modules) == EXPECTED - _NOT_CLASSES
    assert set(modules.values()) == {"kopechka"}


# What importing a client leaves for first use: declaring the models and envelopes (pydantic's
# model machinery with them), which was most of an import's cost; the retry loop (tenacity, at
# the first retry), code extraction and the wait flow (at the first wait).
_DEFERRED = (
    "kopechka._models", "kopechka._envelopes", "kopechka._extract", "kopechka._waitflow",
    "kopechka._endpoints", "html",  # the table names the models; html: its entity table
    "pydantic.main", "pydantic._internal._model_construction", "tenacity",
)  # fmt: skip

# The face's HTTP stack is imported first: what it loads itself (httpx on Python 3.10 loads html)
# is not kopechka's doing.
_FIRST_LINE = """
import json, sys
import {stack}
before = set(sys.modules)
from kopechka import {face}
loaded = sorted(m for m in {deferred!r} if m in sys.modules and m not in before)
import kopechka
resolved = sorted(n for n in kopechka.__all__ if getattr(kopechka, n) is not None)
star = {{}}
exec("from kopechka import *", star)
print(json.dumps({{"loaded": loaded, "resolved": resolved, "star": sorted(set(star) - {{"__builtins__"}})}}))
"""


@pytest.mark.parametrize(
    ("face", "stack"),
    [("KopechkaClient", "requests"), ("AsyncKopechkaClient", "kopechka._httpx")],
    ids=["KopechkaClient", "AsyncKopechkaClient"],
)
def test_importing_a_client_declares_no_model(face: str, stack: str) -> None:
    code = _FIRST_LINE.format(face=face, stack=stack, deferred=_DEFERRED)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["loaded"] == []
    assert report["resolved"] == sorted(kopechka.__all__)  # every public name still resolves
    assert report["star"] == sorted(kopechka.__all__)


_FIRST_CALL = """
import asyncio, json, pickle, sys
from kopechka import {face}

def sync():
    with KopechkaClient({key!r}, base_url={url!r}) as client:
        return client.get_profile()

async def async_():
    async with AsyncKopechkaClient({key!r}, base_url={url!r}) as client:
        return await client.get_profile()

before = "kopechka._models" in sys.modules
profile = sync() if {face!r} == "KopechkaClient" else asyncio.run(async_())
import kopechka
print(json.dumps({{
    "before": before, "module": type(profile).__module__,
    "public": type(profile) is kopechka.Profile,
    "pickles": pickle.loads(pickle.dumps(profile)) == profile,
    # the stand-ins gave way to the modules: later calls read a plain module attribute
    "rebound": kopechka._wire._envelopes is sys.modules["kopechka._envelopes"],
}}))
"""


@pytest.mark.parametrize("face", ["KopechkaClient", "AsyncKopechkaClient"])
def test_the_first_call_declares_and_publishes_the_models(face: str, sandbox: Sandbox) -> None:
    code = _FIRST_CALL.format(face=face, key=sandbox.api_key, url=sandbox.url)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {
        "before": False, "module": "kopechka", "public": True, "pickles": True, "rebound": True,
    }  # fmt: skip


def test_publishing_passes_over_a_module_still_being_imported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The models, loaded on first use, publish the package's names as they finish loading; a
    # module that imports them at its top is then in sys.modules without its classes yet.
    monkeypatch.setitem(sys.modules, "kopechka._mail", types.ModuleType("kopechka._mail"))
    kopechka._publish()
    assert kopechka.Order.__module__ == "kopechka"


def test_testing_exports() -> None:
    assert {"Sandbox", "SandboxError", "Fault", "RecordedRequest"} <= set(kopechka.testing.__all__)


def test_import_does_not_load_cli_or_sandbox() -> None:
    code = (
        "import sys, kopechka; kopechka.KopechkaClient;"
        "print(sorted(m for m in sys.modules if m.startswith('kopechka')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "'kopechka._cli'" not in out.stdout
    assert "kopechka.testing" not in out.stdout
    assert "'kopechka._client'" in out.stdout


def test_version_is_single_sourced() -> None:
    from importlib.metadata import version

    assert kopechka.__version__ == version("kopechka")
