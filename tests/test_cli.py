"""The ``kopechka`` command against the sandbox of this test process, or against a canned server that
answers exact bytes (the vendor documentation's examples, hostile texts).

Most cases call ``main(argv)`` in this process (it returns the exit code; the environment is set
as a shell would, stdout and stderr captured): the same code a user runs, without a Python start
per case. A handful run the installed entry point in a real process, as a user does: exit codes,
``python -m kopechka``, a terminal's progress line, and Ctrl-C on ``kopechka sandbox``
(tests/test_signals.py and tests/test_cli_money.py send it SIGTERM and SIGHUP)."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kopechka import KopechkaClient
from kopechka._cli import build_parser, main
from kopechka._format import inert, json_text, money, table, to_json
from kopechka.testing import Sandbox

from . import vendor_examples as ex
from .children import Child
from .conftest import Canned

SECRET = "sk-cli-secret-4242"
# the console script installed beside this interpreter: the real entry point, as users run it
_BESIDE = Path(sys.executable).parent / "kopechka"
KOPECHKA = str(_BESIDE) if _BESIDE.exists() else shutil.which("kopechka") or "kopechka"
FAST = ("--poll-interval", "0.1")


@pytest.fixture
def cli_sandbox() -> Iterator[Sandbox]:
    with Sandbox(api_key=SECRET) as sandbox:
        yield sandbox


@pytest.fixture
def mailing_sandbox() -> Iterator[Sandbox]:
    """Each new order gets a verification mail 0.2 s after it is bought."""
    with Sandbox(api_key=SECRET, auto_mail=0.2) as sandbox:
        yield sandbox


def _environment(url: Sandbox | str | None, env_key: bool) -> dict[str, str]:
    """The base URL (a sandbox's, or a canned server's) and key, as the shell would set them."""
    env: dict[str, str] = {}  # the rest of the environment is clean of KOPECHKA_* (conftest)
    if url is not None:
        env["KOPECHKA_BASE_URL"] = url.url if isinstance(url, Sandbox) else url
        if env_key:
            env["KOPECHKA_API_KEY"] = SECRET
    return env


def _checked(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    """Never a traceback or an unexpected error, never the key in what it prints."""
    assert SECRET not in result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "UnexpectedError" not in result.stderr
    assert "kopechka: unexpected" not in result.stderr
    return result


def run(
    url: Sandbox | str | None, *args: str, env_key: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the command in this process: ``main(args)`` with the environment set and its output
    captured (one at a time: stdout and stderr are the process's)."""
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as env:
        for name, value in _environment(url, env_key).items():
            env.setenv(name, value)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
    return _checked(subprocess.CompletedProcess(args, code, out.getvalue(), err.getvalue()))


def run_process(
    url: Sandbox | str | None, *args: str, env_key: bool = True, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run the installed entry point in a real process, as a user does."""
    env = {**os.environ, **_environment(url, env_key)}
    result = subprocess.run(
        [KOPECHKA, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    return _checked(result)


def stderr_json(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """The one JSON error object on stderr, and nothing else there or on stdout."""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert result.stdout == ""
    error: dict[str, Any] = json.loads(lines[0])["error"]
    assert error["exit_code"] == result.returncode
    return error


# --- output for people --------------------------------------------------------------------------


def test_balance_profile_domains(cli_sandbox: Sandbox) -> None:
    assert run(cli_sandbox, "balance").stdout == "100.00\n"
    profile = run(cli_sandbox, "profile").stdout
    assert "username" in profile
    assert "sandbox" in profile
    domains = run(cli_sandbox, "domains").stdout.splitlines()
    assert domains[0].split() == ["DOMAIN", "PRICE", "CATEGORY", "DESCRIPTION"]
    assert domains[1].split()[:2] == ["example.com", "5.00"]


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
    page = json.loads(run(cli_sandbox, "orders", "--limit", "10", "--page", "3", "--json").stdout)
    assert len(page) == 5
    assert json.loads(run(cli_sandbox, "orders", "--status", "expired", "--json").stdout) == []


def test_messages_wait_poll_cancel(cli_sandbox: Sandbox) -> None:
    bought = json.loads(run(cli_sandbox, "--json", "buy", "example.com", "x.com").stdout)
    order_id = bought["order"]["order_id"]
    cli_sandbox.deliver(order_id, sender="a@x.com", subject="Code", content="Your code: 918273")
    table_lines = run(cli_sandbox, "messages", order_id).stdout.splitlines()
    assert table_lines[1].split()[-1] == "918273"
    assert run(cli_sandbox, "wait", order_id, "--code", "--timeout", "5").stdout == "918273\n"
    waited = json.loads(run(cli_sandbox, "wait", order_id, "--json").stdout)
    assert waited["message"]["sender"] == "a@x.com"
    polled = json.loads(run(cli_sandbox, "poll", order_id, "--json").stdout)
    assert polled["polling_status"] == "active"
    cancel = json.loads(run(cli_sandbox, "cancel", order_id, "--json").stdout)
    assert Decimal(cancel["refund_amount"]) == 0


def test_buy_and_wait_for_code(mailing_sandbox: Sandbox) -> None:
    result = run(mailing_sandbox, "buy", "example.com", "x.com", "--code", "--timeout", "20", *FAST)
    assert result.returncode == 0, result.stderr
    with mailing_sandbox.client() as client:
        content = client.get_messages("API-1234567890").messages[0].content
    assert re.fullmatch(r"\d{6}\n", result.stdout)
    assert result.stdout.strip() in content
    assert "bought API-1234567890" in result.stderr
    assert "waiting" not in result.stderr  # stderr is not a terminal: no progress line
    assert mailing_sandbox.balance == Decimal("95")


def test_buy_wait_timeout_refunds_and_exits_3(cli_sandbox: Sandbox) -> None:
    result = run(cli_sandbox, "buy", "example.com", "x.com", "--wait", "--timeout", "0.5", *FAST)
    assert result.returncode == 3
    assert result.stderr.splitlines()[-1].startswith("kopechka: timed out: no matching message")
    assert cli_sandbox.balance == Decimal("100")


# --- --json: one shape per command, money as the server's digits, errors as JSON ----------------


def test_json_has_one_shape_per_command_whatever_its_options(mailing_sandbox: Sandbox) -> None:
    def shape(*args: str) -> Any:
        result = run(mailing_sandbox, "--json", *args)
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""  # with --json, stderr is kept for the JSON error alone
        return json.loads(result.stdout)

    plain = shape("buy", "example.com", "a.com")
    waited = shape("buy", "example.com", "b.com", "--wait", "--timeout", "20", *FAST)
    coded = shape("buy", "example.com", "c.com", "--code", "--timeout", "20", *FAST)
    for bought in (plain, waited, coded):
        assert set(bought) == {"order", "message", "code"}
        assert Decimal(bought["order"]["price"]) == 5  # a string: exact (digits: see below)
    assert (plain["message"], plain["code"]) == (None, None)
    assert waited["message"]["sender"]
    assert waited["code"] is None
    assert coded["message"] is None
    assert re.fullmatch(r"\d{6}", coded["code"])
    order_id = plain["order"]["order_id"]
    message = shape("wait", order_id, "--timeout", "20", *FAST)
    code = shape("wait", order_id, "--code", "--timeout", "20", *FAST)
    assert set(message) == set(code) == {"order_id", "message", "code"}
    assert message["message"]["id"]
    assert message["code"] is None
    assert code["message"] is None
    assert code["code"]
    assert isinstance(shape("orders"), list)
    assert isinstance(shape("orders", "--all"), list)
    assert isinstance(shape("orders", "--status", "active", "--limit", "1"), list)


@pytest.fixture
def vendor(canned: tuple[Canned, str]) -> tuple[Canned, str]:
    """A server that answers the vendor documentation's examples byte for byte."""
    app, url = canned
    for method, path, body in [
        ("GET", "/api/v1/profile", ex.PROFILE),
        ("GET", "/api/v1/balance", ex.BALANCE),
        ("GET", "/api/v1/domains", ex.DOMAINS),
        ("GET", "/api/v1/orders", ex.ORDERS),
        ("GET", "/api/v1/orders/API-1234567890", ex.ORDER),
        ("POST", "/api/v1/orders", ex.CREATED),
        ("DELETE", "/api/v1/orders/API-1234567890", ex.CANCELLED),
        ("GET", "/api/v1/orders/API-1234567890/messages", ex.MESSAGES),
    ]:
        app.set(method, path, body)
    return app, url


def test_json_money_keeps_the_servers_digits(vendor: tuple[Canned, str]) -> None:
    app, url = vendor
    assert json.loads(run(url, "balance", "--json").stdout) == "150.75"
    assert json.loads(run(url, "domains", "--json").stdout)[0]["price"] == "5.00"
    assert json.loads(run(url, "orders", "--json").stdout)[0]["price"] == "5.00"
    assert json.loads(run(url, "order", "API-1234567890", "--json").stdout)["price"] == "5.00"
    bought = json.loads(run(url, "buy", "example.com", "instagram.com", "--json").stdout)
    assert bought["order"]["price"] == "5.00"
    refund = json.loads(run(url, "cancel", "API-1234567890", "--json").stdout)
    assert refund["refund_amount"] == "5.00"
    app.set(
        "GET", "/api/v1/balance", '{"success": true, "data": {"balance": 12345678901234567.89}}'
    )
    assert json.loads(run(url, "balance", "--json").stdout) == "12345678901234567.89"
    assert run(url, "balance").stdout == "12345678901234567.89\n"


@pytest.mark.parametrize(
    ("args", "code", "kind", "text"),
    [
        (["order", "API-0"], 1, "NotFoundError", "Order not found"),
        (["buy", "nope.com", "x.com"], 1, "BadRequestError", ""),
        (["orders", "--page", "0"], 2, "UsageError", "must be an integer >= 1"),
        (["frobnicate"], 2, "UsageError", "invalid choice"),
        (["order"], 2, "UsageError", "required"),
        (
            ["wait", "API-0", "--timeout", "x"],
            2,
            "UsageError",
            "must be a finite number of seconds",
        ),
        (["order", ""], 2, "UsageError", "order_id must be a non-empty string"),
    ],
)
def test_errors_and_exit_codes(
    cli_sandbox: Sandbox, args: list[str], code: int, kind: str, text: str
) -> None:
    result = run(cli_sandbox, *args)
    assert result.returncode == code
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith("kopechka: ")
    assert text in result.stderr
    assert result.stdout == ""
    error = stderr_json(run(cli_sandbox, *args, "--json"))
    assert (error["type"], error["exit_code"]) == (kind, code)
    assert text in error["message"]
    if code == 1:
        assert error["status_code"] in {400, 404}


def test_json_errors_for_timeouts_keys_and_the_network(cli_sandbox: Sandbox) -> None:
    with cli_sandbox.client() as client:
        order_id = client.create_order("example.com", "x.com").order_id
    timeout = stderr_json(run(cli_sandbox, "wait", order_id, "--timeout", "0.3", *FAST, "--json"))
    assert (timeout["type"], timeout["exit_code"]) == ("WaitTimeoutError", 3)
    missing = stderr_json(run(cli_sandbox, "balance", "--json", env_key=False))
    assert missing["type"] == "UsageError"
    assert "--api-key" in missing["message"]
    dead = "http://127.0.0.1:9/api/v1"
    network = stderr_json(run(None, "--json", "balance", "--api-key", SECRET, "--base-url", dead))
    assert (network["type"], network["exit_code"]) == ("APIConnectionError", 1)


def test_wrong_key_and_missing_key(cli_sandbox: Sandbox) -> None:
    """In a real process: exit codes 1 and 2 as the shell sees them."""
    wrong = run_process(cli_sandbox, "balance", "--api-key", SECRET + "x")
    assert wrong.returncode == 1
    assert "Invalid API key" in wrong.stderr
    assert SECRET + "x" not in wrong.stderr
    for missing in (run_process(cli_sandbox, "balance", env_key=False),
                    run_process(cli_sandbox, "balance", "--api-key", " ", env_key=False)):  # fmt: skip
        assert missing.returncode == 2
        assert "--api-key" in missing.stderr
        assert "KOPECHKA_API_KEY" in missing.stderr
        assert "api_key=" not in missing.stderr  # the library's spelling, not the command's


def test_api_connection_error_is_one_line() -> None:
    result = run_process(
        None, "balance", "--api-key", SECRET, "--base-url", "http://127.0.0.1:9/api/v1"
    )
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "APIConnectionError" in result.stderr


# --- usage: never a traceback, exit 2, help everywhere ------------------------------------------

BAD_USAGE = [
    ["orders", "--limit", "0"],
    ["orders", "--limit", "abc"],
    ["orders", "--page", "-3"],
    ["orders", "--page", "1e3"],
    ["wait", "API-1", "--timeout", "inf"],
    ["wait", "API-1", "--timeout", "nan"],
    ["wait", "API-1", "--timeout", "-1"],
    ["wait", "API-1", "--timeout", "1e300"],
    ["buy", "example.com", "x.com", "--code", "--poll-interval", "0"],
    ["buy", "example.com"],
    ["balance", "--base-url", "http://[::1"],
    ["balance", "--base-url", "ftp://example.com/api"],
    ["balance", "--base-url", "http://example.com/api"],  # plain http to a remote host
    ["balance", "--base-url", ""],
    ["balance", "--api-key", "two words"],
    ["balance", "--frobnicate"],
    ["--json"],
]


def test_bad_usage_exits_2_in_one_line(cli_sandbox: Sandbox) -> None:
    results = [run(cli_sandbox, *args) for args in BAD_USAGE]
    for args, result in zip(BAD_USAGE, results, strict=True):
        assert result.returncode == 2, (args, result.stderr)
        if args != ["--json"]:
            assert result.stdout == "", args
            assert len(result.stderr.splitlines()) == 1, (args, result.stderr)
            assert result.stderr.startswith("kopechka: "), args


def test_bare_kopechka_prints_the_help() -> None:
    result = run_process(None)
    assert result.returncode == 2
    assert result.stdout.startswith("usage: kopechka")
    for command in ("balance", "buy", "orders", "wait", "demo"):
        assert f"    {command} " in result.stdout
    assert result.stderr == ""


def _actions(parser: argparse.ArgumentParser, prog: str) -> Iterator[tuple[str, argparse.Action]]:
    for action in parser._actions:
        yield prog, action
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _actions(sub, f"{prog} {name}")


# `kopechka sandbox` takes its options from kopechka.testing (the sandbox's own command), whose
# tests check them
ELSEWHERE = ("kopechka sandbox",)


def test_every_option_has_help() -> None:
    found = [(p, a) for p, a in _actions(build_parser(), "kopechka") if not p.startswith(ELSEWHERE)]
    assert len(found) > 40
    missing = [
        f"{prog}: {action.option_strings or action.dest}"
        for prog, action in found
        if not action.help or action.help == argparse.SUPPRESS
    ]
    assert missing == []


# --- printed server text is inert ----------------------------------------------------------------

HOSTILE = (
    "Nice\r\nkopechka: forged line\x1b]0;pwned\x07\x1b[2J\x1b[31mred\x1b[0m"
    "\u202eevil\u202c\x9b31m\x07\x00\x85next\u2028line\ttab"
)
FORBIDDEN = re.compile(
    r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)


@pytest.fixture
def hostile(canned: tuple[Canned, str]) -> tuple[Canned, str]:
    """A server whose every text tries to forge lines and drive the terminal."""
    app, url = canned
    text = json.dumps(HOSTILE)
    order = (
        f'{{"orderId":"API-1","email":{text},"domain":"example.com","site":{text},'
        f'"status":{text},"price":5.00,"createdAt":"2024-01-01T00:00:00Z"}}'
    )
    app.set("GET", "/api/v1/domains",
            f'{{"success":true,"data":[{{"id":"1","name":{text},"price":5.00,'
            f'"category":{text},"description":{text}}}]}}')  # fmt: skip
    app.set("GET", "/api/v1/orders/API-1", f'{{"success":true,"data":{order}}}')
    app.set("GET", "/api/v1/orders",
            f'{{"success":true,"data":[{order}],'
            '"pagination":{"page":1,"limit":20,"total":1,"pages":1}}')  # fmt: skip
    app.set("GET", "/api/v1/orders/API-1/messages",
            f'{{"success":true,"messages":[{{"id":{text},"from":{text},"subject":{text},'
            f'"content":{text},"receivedAt":"2024-01-01T00:00:00Z"}}],'
            f'"order":{{"id":"API-1","email":"e","domain":"d","status":"active",'
            f'"created_at":"2024-01-01T00:00:00Z"}}}}')  # fmt: skip
    app.set("POST", "/api/v1/orders", f'{{"success":false,"message":{text}}}', status=400)
    return app, url


INERT_COMMANDS = [
    ["domains"],
    ["order", "API-1"],
    ["orders"],
    ["messages", "API-1"],
    ["wait", "API-1", "--timeout", "5"],
    ["buy", "example.com", "x.com"],
]


def test_server_text_is_printed_inert(hostile: tuple[Canned, str]) -> None:
    _, url = hostile
    results = [run(url, *args) for args in INERT_COMMANDS]
    for args, result in zip(INERT_COMMANDS, results, strict=True):
        out = result.stdout + result.stderr
        assert "Nice" in out, args  # the text is shown...
        assert FORBIDDEN.search(out) is None, args  # ...with nothing that drives the terminal
        assert "pwned" not in out, args  # an escape sequence goes whole, parameters included
        assert not any(line.startswith("kopechka: forged") for line in out.splitlines()), args
    refused = results[-1]  # the purchase: one line, the server's words folded into it
    assert refused.returncode == 1
    assert len(refused.stderr.splitlines()) == 1
    assert refused.stderr.startswith("kopechka: BadRequestError (HTTP 400): Nice ")


def test_json_output_escapes_what_could_drive_a_terminal(hostile: tuple[Canned, str]) -> None:
    _, url = hostile
    result = run(url, "domains", "--json")
    assert FORBIDDEN.search(result.stdout.replace("\n", "")) is None
    assert json.loads(result.stdout)[0]["description"] == HOSTILE  # the data itself is intact
    refused = run(url, "buy", "example.com", "x.com", "--json")
    assert FORBIDDEN.search(refused.stderr.rstrip("\n")) is None
    assert stderr_json(refused)["message"] == HOSTILE


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain text", "plain text"),
        ("two\nlines", "two lines"),
        ("crlf\r\nand\rcr", "crlf and cr"),
        ("\x1b[2J\x1b[1;31mred\x1b[0m", "red"),
        ("\x1b]0;title\x07after", "after"),
        ("\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\", "link"),
        ("\x9b2Jeight-bit", "eight-bit"),
        ("\x9d0;title\x9cafter", "after"),
        ("\x1bPdcs\x1b\\after", "after"),
        ("a\x1b", "a"),
        ("bell\x07 null\x00 del\x7f c1\x85x", "bell null del c1 x"),
        ("\u202eevil\u202c \u2066iso\u2069 \u200fmark", "evil iso mark"),
        ("line\u2028sep\u2029para", "line sep para"),
        ("tab\there", "tab here"),
        ("Код 123 ✓ 🙂", "Код 123 ✓ 🙂"),
    ],
)
def test_inert_table(raw: str, shown: str) -> None:
    assert inert(raw) == shown


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=300))
def test_inert_leaves_no_control_and_no_line_break(text: str) -> None:
    shown = inert(text)
    assert FORBIDDEN.search(shown) is None
    assert "\n" not in shown
    assert len(shown.splitlines()) <= 1
    assert json.loads(json_text(text)) == text  # JSON keeps the data whole...
    assert FORBIDDEN.search(json_text(text, indent=None)) is None  # ...and escapes the rest


# --- the rest --------------------------------------------------------------------------------------


def test_plain_http_remote_is_usage_error() -> None:
    result = run(None, "balance", "--api-key", SECRET, "--base-url", "http://example.com/api")
    assert result.returncode == 2
    assert "clear text" in result.stderr


def test_demo_runs_offline_without_key() -> None:
    result = run(None, "demo")
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
    command = [KOPECHKA, "sandbox", "--port", "0", "--balance", "7"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        try:
            child = Child(proc)  # each line awaited with a bound: a silent server fails the test
            url = child.line().split()[-1]
            assert "API key: test-key" in child.line()
            assert "Ctrl-C" in child.line()  # serving: interrupting it now is a stop
            with KopechkaClient("test-key", base_url=url) as client:
                assert client.get_balance() == Decimal("7")
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                code = proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()  # or leaving the block would wait for it forever
                raise
    assert code == 0


def test_helpers_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert money(Decimal("5")) == "5.00"
    assert money(Decimal("0.125")) == "0.125"
    assert money(Decimal("1E+3")) == "1000.00"
    assert money(Decimal("9999999999999999999999999999")) == "9999999999999999999999999999.00"
    assert table(["A", "BB"], [["x", None]]) == "A  BB\nx  -"
    assert to_json({"a": [Decimal("1.50")]}) == {"a": ["1.50"]}
    assert main(["demo"]) == 0
    assert "Extracted code" in capsys.readouterr().out
    assert main([]) == 2
    assert capsys.readouterr().out.startswith("usage: kopechka")
    assert main(["--version"]) == 0


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
        for _ in range(10_000):  # bounded: a closed terminal ends it long before
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
