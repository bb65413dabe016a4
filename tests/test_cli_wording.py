"""What the command line says when a newcomer meets its edges: a wait that times out after ``buy``
says what became of the order; options that do nothing without ``--wait``/``--code`` are
refused; an unknown option points to its command's help; a connection error names the host
tried; every time printed says its zone. Run in-process through ``main(argv)``."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from decimal import Decimal

import pytest

from kopechka._cli import main
from kopechka.testing import Sandbox

from . import vendor_examples as vendor
from .conftest import Canned


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    with Sandbox() as sb:
        monkeypatch.setenv("KOPECHKA_API_KEY", sb.api_key)
        monkeypatch.setenv("KOPECHKA_BASE_URL", sb.url)
        yield sb


def test_a_timed_out_buy_code_says_it_refunded(
    env: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["buy", "example.com", "x.com", "--code", "--timeout", "0.3", "--poll-interval",
                 "0.1"])  # fmt: skip
    err = capsys.readouterr().err.splitlines()
    assert code == 3, err
    assert err[0].startswith("bought API-")
    order_id = err[0].split()[1].rstrip(":")
    assert err[1].startswith("kopechka: timed out: ")
    assert err[1].endswith(f"; order {order_id} cancelled, 5.00 refunded"), err
    assert env.balance == Decimal("100")


def test_a_timed_out_wait_on_an_order_says_nothing_of_a_refund(
    env: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    with env.client() as client:
        order = client.create_order("example.com", "x.com")
    assert main(["wait", order.order_id, "--timeout", "0.3", "--poll-interval", "0.1"]) == 3
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("kopechka: timed out: ")
    assert "refund" not in line


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--timeout", "5"], "--timeout needs"),
        (["--poll-interval", "1"], "--poll-interval needs"),
        (["--timeout", "5", "--poll-interval", "1"], "--timeout and --poll-interval need"),
    ],
)
def test_buy_refuses_wait_options_without_a_wait(
    env: Sandbox, capsys: pytest.CaptureFixture[str], extra: list[str], named: str
) -> None:
    assert main(["buy", "example.com", "x.com", *extra]) == 2
    err = capsys.readouterr().err
    assert f"{named} --wait or --code (see: kopechka buy --help)" in err, err
    assert env.requests == []  # nothing bought
    assert main(["buy", "--help"]) == 0
    assert "needs --wait or --code" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize(
    ("argv", "help_of"),
    [
        (["buy", "example.com", "x.com", "--bogus"], "kopechka buy"),
        (["orders", "--nope", "1"], "kopechka orders"),
        (["sweep", "--olden", "5"], "kopechka sweep"),
        (["--bogus", "balance"], "kopechka balance"),
        (["--bogus"], "kopechka"),
    ],
)
def test_an_unknown_option_points_to_its_commands_help(
    env: Sandbox, capsys: pytest.CaptureFixture[str], argv: list[str], help_of: str
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("kopechka: unrecognized arguments: "), err
    assert err.rstrip().endswith(f"(see: {help_of} --help)"), err
    assert env.requests == []


def test_a_connection_error_names_the_host_tried(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("KOPECHKA_API_KEY", "k")
    assert main(["balance", "--base-url", f"http://127.0.0.1:{port}/api/v1"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("kopechka: APIConnectionError: "), err
    assert f"(host 127.0.0.1:{port})" in err, err
    assert main(["balance", "--base-url", f"http://127.0.0.1:{port}/api/v1", "--json"]) == 1
    assert json.loads(capsys.readouterr().err)["error"]["host"] == f"127.0.0.1:{port}"


def test_profile_and_order_print_times_in_utc_saying_so(
    canned: tuple[Canned, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    app, url = canned
    app.set("GET", "/api/v1/profile", vendor.PROFILE)
    moscow = vendor.ORDER.replace('"2024-01-01T00:10:00Z"', '"2024-01-01T03:10:00+03:00"')
    app.set("GET", "/api/v1/orders/API-1234567890", moscow)
    monkeypatch.setenv("KOPECHKA_API_KEY", "k")
    monkeypatch.setenv("KOPECHKA_BASE_URL", url)
    assert main(["profile"]) == 0
    profile = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in profile if line.endswith(" UTC")] == [
        "created_at", "updated_at"
    ]  # fmt: skip
    assert main(["order", "API-1234567890"]) == 0
    order = capsys.readouterr().out.splitlines()
    times = {line.split()[0]: line.split(None, 1)[1] for line in order if line.endswith(" UTC")}
    assert times == {
        "created_at": "2024-01-01 00:00:00 UTC",
        "end_time": "2024-01-01 00:10:00 UTC",  # sent at +03:00, shown in UTC
    }
