"""The pytest plugin, as a user meets it: a test file in a fresh directory, run by pytest in a
subprocess, finds the fixtures through the ``pytest11`` entry point alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

USER_TESTS = """
from decimal import Decimal

import pytest


def test_signup(kopechka_client, kopechka_sandbox):
    order = kopechka_client.create_order("example.com", "instagram.com")
    kopechka_sandbox.deliver(order.order_id, sender="no-reply@instagram.com", content="Your code is 654321")
    assert kopechka_client.wait_for_code(order.order_id, timeout=5) == "654321"
    assert kopechka_client.get_balance() == Decimal("95")


@pytest.mark.kopechka_sandbox(balance="3", api_key="other")
def test_marker_configures_the_sandbox(kopechka_client, kopechka_sandbox):
    assert kopechka_sandbox.api_key == "other"
    assert kopechka_client.get_balance() == Decimal("3")


def test_each_test_gets_a_fresh_sandbox(kopechka_client):
    assert kopechka_client.list_orders().pagination.total == 0


@pytest.mark.kopechka_sandbox(auto_mail=90, virtual_time=True)
def test_a_slow_site_on_virtual_time(kopechka_client, kopechka_sandbox):
    order = kopechka_client.create_order("example.com", "slow.example")
    assert len(kopechka_client.wait_for_code(order.order_id, timeout=120)) == 6
    assert kopechka_sandbox.clock() >= 90
"""


def test_fixtures_reach_a_users_project(tmp_path: Path) -> None:
    (tmp_path / "test_user_bot.py").write_text(USER_TESTS)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_user_bot.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout


def test_plugin_is_registered_by_entry_point() -> None:
    from importlib.metadata import entry_points

    names = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert names.get("kopechka") == "kopechka.testing.pytest_plugin"


def test_marker_help_names_the_options() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--markers", "-p", "no:cacheprovider"],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    line = next(
        x for x in result.stdout.splitlines() if x.startswith("@pytest.mark.kopechka_sandbox")
    )
    for option in ("balance", "rate_limit", "auto_mail", "seed", "virtual_time"):
        assert option in line, line
