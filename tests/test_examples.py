"""Every file in examples/ runs, unchanged, against the sandbox: the examples can never rot."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kopechka.testing import Sandbox

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PROGRAMS = sorted(p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("test_"))

EXPECTED = {
    "quickstart.py": ["Balance: 100", "Cheapest domain: inbox.test at 1.25", "refund 1.25"],
    "signup_flow.py": [
        "Signing up on instagram.com as",
        "Code: ",
        "Mail from no-reply@instagram.com",
    ],
    "list_all_orders.py": ["active: 2", "cancelled: 1", "Active orders hold 8.5"],
    "error_handling.py": [
        "Refused (400)",
        "No such order",
        "Balance: 100",
        "Refused configuration",
    ],
    "concurrent_orders.py": ["instagram.com: kp", "got code", "Balance: 70"],
    "async_signups.py": [
        "instagram.com: kp",
        "got code",
        "example.org: cancelled, order refunded",
        "Balance: 70",
    ],
}


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(auto_mail=0.2) as sb:
        yield sb


def run(sandbox: Sandbox, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KOPECHKA_BASE_URL": sandbox.url, "KOPECHKA_API_KEY": sandbox.api_key}
    return subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_every_example_is_covered() -> None:
    assert set(PROGRAMS) == set(EXPECTED)


@pytest.mark.parametrize("name", PROGRAMS)
def test_example_runs(sandbox: Sandbox, name: str) -> None:
    if name == "list_all_orders.py":
        with sandbox.client() as client:
            client.create_order("example.com", "a.com")
            client.create_order("mail-sandbox.net", "b.com")
            client.cancel_order(client.create_order("inbox.test", "c.com").order_id)
    result = run(sandbox, str(EXAMPLES / name))
    assert result.returncode == 0, result.stdout + result.stderr
    for text in EXPECTED[name]:
        assert text in result.stdout, result.stdout


@pytest.mark.parametrize("name", [*PROGRAMS, "test_with_fixtures.py"])
def test_example_opens_with_in_this_example(name: str) -> None:
    source = (EXAMPLES / name).read_text()
    assert source.startswith('"""In this example, we: ')


def test_pytest_example_runs_with_the_plugin(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
         str(EXAMPLES / "test_with_fixtures.py")],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout
