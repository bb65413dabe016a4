"""The ``kopechka`` command, run as a user runs it: the installed entry point in a subprocess, against
the sandbox of this test process."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from kopechka._cli import main
from kopechka._format import money, table, to_json
from kopechka.testing import Sandbox

SECRET = "sk-cli-secret-4242"
# the console script installed beside this interpreter: the real entry point, as users run it
_BESIDE = Path(sys.executable).parent / "kopechka"
KOPECHKA = str(_BESIDE) if _BESIDE.exists() else shutil.which("kopechka") or "kopechka"


@pytest.fixture
def cli_sandbox():
    with Sandbox(api_key=SECRET) as sandbox:
        yield sandbox


def run(
    sandbox: Sandbox | None, *args: str, env_key: bool = True, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KOPECHKA_")}
    if sandbox is not None:
        env["KOPECHKA_BASE_URL"] = sandbox.url
        if env_key:
            env["KOPECHKA_API_KEY"] = SECRET
    result = subprocess.run(
        [KOPECHKA, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert SECRET not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    return result


def test_balance_profile_domains(cli_sandbox: Sandbox) -> None:
    assert run(cli_sandbox, "balance").stdout == "100.00\n"
    profile = run(cli_sandbox, "profile").stdout
    assert "username" in profile
    assert "sandbox" in profile
    domains = run(cli_sandbox, "domains").stdout.splitlines()
    assert domains[0].split() == ["DOMAIN", "PRICE", "CATEGORY", "DESCRIPTION"]
    assert domains[1].split()[:2] == ["example.com", "5.00"]


def test_json_output_parses_back(cli_sandbox: Sandbox) -> None:
    assert Decimal(json.loads(run(cli_sandbox, "balance", "--json").stdout)) == Decimal("100")
    order = json.loads(run(cli_sandbox, "--json", "buy", "example.com", "x.com").stdout)
    assert order["order_id"] == "API-1234567890"
    assert Decimal(order["price"]) == Decimal("5")  # money as a string: exact
    assert order["created_at"].endswith("Z")
    domains = json.loads(run(cli_sandbox, "domains", "--json").stdout)
    assert {d["name"] for d in domains} >= {"example.com"}
    page = json.loads(run(cli_sandbox, "orders", "--json").stdout)
    assert page["pagination"]["total"] == 1
    detail = json.loads(run(cli_sandbox, "order", "API-1234567890", "--json").stdout)
    assert detail["duration"] == 10


def test_options_before_or_after_the_subcommand(cli_sandbox: Sandbox) -> None:
    for args in (["--api-key", SECRET, "--base-url", cli_sandbox.url, "balance"],
                 ["balance", "--api-key", SECRET, "--base-url", cli_sandbox.url]):  # fmt: skip
        assert run(None, *args).stdout == "100.00\n"


def test_orders_filters_and_all(cli_sandbox: Sandbox) -> None:
    with cli_sandbox.client() as client:
        for i in range(25):
            client.create_order("inbox.test" if i % 5 else "example.com", f"s{i}.com")
    first = run(cli_sandbox, "orders", "--limit", "10").stdout.splitlines()
    assert len(first) == 1 + 10 + 1
    assert first[-1].startswith("page 1 of 3 (25 orders")
    every = json.loads(run(cli_sandbox, "orders", "--all", "--json").stdout)
    assert len(every) == 25
    mine = json.loads(
        run(cli_sandbox, "orders", "--all", "--domain", "example.com", "--json").stdout
    )
    assert len(mine) == 5
    none = json.loads(run(cli_sandbox, "orders", "--status", "expired", "--json").stdout)
    assert none["orders"] == []


def test_messages_wait_poll_cancel(cli_sandbox: Sandbox) -> None:
    order = run(cli_sandbox, "--json", "buy", "example.com", "x.com")
    order_id = json.loads(order.stdout)["order_id"]
    cli_sandbox.deliver(order_id, sender="a@x.com", subject="Code", content="Your code: 918273")
    table_lines = run(cli_sandbox, "messages", order_id).stdout.splitlines()
    assert table_lines[1].split()[-1] == "918273"
    assert run(cli_sandbox, "wait", order_id, "--code", "--timeout", "5").stdout == "918273\n"
    waited = json.loads(run(cli_sandbox, "wait", order_id, "--json").stdout)
    assert waited["sender"] == "a@x.com"
    assert (
        json.loads(run(cli_sandbox, "poll", order_id, "--json").stdout)["polling_status"]
        == "active"
    )
    cancel = json.loads(run(cli_sandbox, "cancel", order_id, "--json").stdout)
    assert cancel["refund_amount"] == "0"


def test_buy_and_wait_for_code(cli_sandbox: Sandbox) -> None:
    import threading

    def site_sends_code(order: dict[str, str]) -> None:  # once the command has bought it
        threading.Timer(
            0.3, cli_sandbox.deliver, (order["orderId"],), {"content": "code 313131"}
        ).start()

    cli_sandbox.app.on_order.append(site_sends_code)
    result = run(
        cli_sandbox,
        "buy",
        "example.com",
        "x.com",
        "--code",
        "--timeout",
        "20",
        "--poll-interval",
        "0.2",
    )
    assert result.returncode == 0
    assert result.stdout == "313131\n"
    assert "bought API-1234567890" in result.stderr
    assert "waiting" not in result.stderr  # stderr is not a terminal: no progress line
    assert cli_sandbox.balance == Decimal("95")


def test_buy_wait_timeout_refunds_and_exits_3(cli_sandbox: Sandbox) -> None:
    result = run(
        cli_sandbox,
        "buy",
        "example.com",
        "x.com",
        "--wait",
        "--timeout",
        "0.5",
        "--poll-interval",
        "0.1",
    )
    assert result.returncode == 3
    assert result.stderr.splitlines()[-1].startswith("kopechka: timed out: no matching message")
    assert cli_sandbox.balance == Decimal("100")


@pytest.mark.parametrize(
    ("args", "code", "text"),
    [
        (["order", "API-0"], 1, "NotFoundError (HTTP 404): Order not found"),
        (["buy", "nope.com", "x.com"], 1, "BadRequestError (HTTP 400)"),
        (["orders", "--page", "0"], 2, "page must be an integer >= 1"),
        (["frobnicate"], 2, "invalid choice"),
        (["order"], 2, "required"),
        (["wait", "API-0", "--timeout", "x"], 2, "invalid float"),
    ],
)
def test_errors_and_exit_codes(cli_sandbox: Sandbox, args: list[str], code: int, text: str) -> None:
    result = run(cli_sandbox, *args)
    assert result.returncode == code
    assert text in result.stderr
    assert result.stdout == ""


def test_wrong_key_and_missing_key(cli_sandbox: Sandbox) -> None:
    wrong = run(cli_sandbox, "balance", "--api-key", SECRET + "x")
    assert wrong.returncode == 1
    assert "Invalid API key" in wrong.stderr
    assert SECRET + "x" not in wrong.stderr
    missing = run(cli_sandbox, "balance", env_key=False)
    assert missing.returncode == 2
    assert "KOPECHKA_API_KEY" in missing.stderr


def test_api_connection_error_is_one_line() -> None:
    result = run(None, "balance", "--api-key", SECRET, "--base-url", "http://127.0.0.1:9/api/v1")
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "APIConnectionError" in result.stderr


def test_plain_http_remote_is_usage_error() -> None:
    result = run(None, "balance", "--api-key", SECRET, "--base-url", "http://example.com/api")
    assert result.returncode == 2
    assert "clear text" in result.stderr


def test_demo_runs_offline_without_key() -> None:
    result = run(None, "demo", timeout=120)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "1. Balance: 100.00" in out
    assert "5. Extracted code: 482913" in out
    assert "refund 5.00" in out
    assert "Final balance: 95.00" in out


def test_python_dash_m_and_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "kopechka", "--version"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert result.stdout.startswith("kopechka ")


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_sandbox_command_serves_until_interrupted() -> None:
    from kopechka import KopechkaClient

    command = [KOPECHKA, "sandbox", "--port", "0", "--balance", "7"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as proc:
        try:
            url = proc.stdout.readline().split()[-1]
            assert "API key: test-key" in proc.stdout.readline()
            with KopechkaClient("test-key", base_url=url) as client:
                assert client.get_balance() == Decimal("7")
        finally:
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=10) == 0


def test_helpers_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert money(Decimal("5")) == "5.00"
    assert money(Decimal("0.125")) == "0.125"
    assert table(["A", "BB"], [["x", None]]) == "A  BB\nx  -"
    assert to_json({"a": [Decimal("1.5")]}) == {"a": ["1.5"]}
    assert main(["demo"]) == 0
    assert "Extracted code" in capsys.readouterr().out


@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_long_wait_shows_progress_on_a_terminal(cli_sandbox: Sandbox) -> None:
    import pty

    with cli_sandbox.client() as client:
        order_id = client.create_order("example.com", "x.com").order_id
    env = {**os.environ, "KOPECHKA_BASE_URL": cli_sandbox.url, "KOPECHKA_API_KEY": SECRET}
    leader, follower = pty.openpty()
    try:
        result = subprocess.run(
            [KOPECHKA, "wait", order_id, "--timeout", "1.5", "--poll-interval", "0.2"],
            env=env, stdout=subprocess.PIPE, stderr=follower, text=True, timeout=60, check=False,
        )  # fmt: skip
        os.close(follower)
        follower = -1
        seen = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closed: everything was read
                break
            if not chunk:
                break
            seen += chunk
    finally:
        if follower >= 0:
            os.close(follower)
        os.close(leader)
    assert result.returncode == 3
    text = seen.decode()
    assert f"waiting for mail on {order_id}..." in text
    assert "\x1b[K" in text  # the progress line is cleared before the final message
    assert "kopechka: timed out" in text
