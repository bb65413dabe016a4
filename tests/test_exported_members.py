"""The public door: exactly ``kopechka.__all__``, sorted, each name importable and documented."""

from __future__ import annotations

import subprocess
import sys

import pytest

import kopechka
import kopechka.testing

EXPECTED = {
    "APIConnectionError", "APIError", "APIResponseValidationError", "APIStatusError",
    "APITimeoutError", "AsyncKopechkaClient", "AsyncMailbox", "AuthenticationError",
    "BadRequestError", "Cancellation",
    "DEFAULT_BASE_URL", "DEFAULT_MAX_RETRIES", "DEFAULT_MAX_RETRY_WAIT", "DEFAULT_TIMEOUT",
    "Domain", "InternalServerError", "KopechkaClient", "KopechkaError", "Mailbox", "Message",
    "MessageList", "NotFoundError", "Order", "OrderClosedError", "OrderOutcomeUnknownError",
    "OrderPage", "OrderStatus", "OrderSummary", "Pagination", "PermissionDeniedError",
    "PollingStatus", "Profile", "RateLimitError", "SpendLimitError", "SweepReport",
    "WaitCancelledError", "WaitTimeoutError", "__version__", "exit_on_signals",
}  # fmt: skip


def test_all_is_exactly_the_public_api() -> None:
    assert set(kopechka.__all__) == EXPECTED
    assert len(kopechka.__all__) == len(EXPECTED)
    for name in kopechka.__all__:
        assert getattr(kopechka, name) is not None


def test_lazy_table_matches_all() -> None:
    assert set(kopechka._HOMES) == set(kopechka.__all__) - {"__version__"}
    assert set(dir(kopechka)) >= set(kopechka.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = kopechka.nope  # type: ignore[attr-defined]


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
            assert obj.__module__.startswith("kopechka."), name
            assert obj.__doc__, name


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
