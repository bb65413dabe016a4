"""The command line's money parts: ``kopechka sweep``, ``buy --max-price``, and ``buy``/``wait``
stopped by SIGTERM or SIGHUP in a real process (refund, one clear line, exit 128 + signal)."""

from __future__ import annotations

import json
import signal
from decimal import Decimal

import pytest

from kopechka._cli import main
from kopechka.testing import Sandbox

from . import children


@pytest.fixture
def env(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    monkeypatch.setenv("KOPECHKA_API_KEY", sandbox.api_key)
    monkeypatch.setenv("KOPECHKA_BASE_URL", sandbox.url)
    return sandbox


def test_sweep_is_a_dry_run_unless_commit(env: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    with env.client() as client:
        unused = client.create_order("example.com", "x.com")
        used = client.create_order("inbox.test", "x.com")
    env.deliver(used.order_id, content="code 111222")
    assert main(["sweep", "--older-than", "0"]) == 0
    out = capsys.readouterr().out
    assert "to cancel (dry run: --commit cancels them): 1" in out
    assert unused.order_id in out
    assert "would refund: 5.00" in out
    assert env.balance == Decimal("93.75")
    assert main(["sweep", "--older-than", "0", "--commit"]) == 0
    out = capsys.readouterr().out
    assert "cancelled: 1" in out
    assert "kept (with mail, or younger than 0 s): 1" in out
    assert "refunded: 5.00" in out
    assert env.balance == Decimal("98.75")


def test_sweep_json_has_one_shape(env: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sweep", "--json"]) == 0
    empty = json.loads(capsys.readouterr().out)
    with env.client() as client:
        young = client.create_order("example.com", "x.com")
    assert main(["--json", "sweep", "--commit"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == set(empty) == {
        "dry_run", "older_than", "cancelled", "refunded", "kept", "failed",
    }  # fmt: skip
    assert (report["dry_run"], report["older_than"], report["refunded"]) == (False, 300.0, "0.00")
    assert [o["order_id"] for o in report["kept"]] == [young.order_id]
    assert Decimal(report["kept"][0]["price"]) == 5  # money as a string


def test_sweep_exits_1_when_a_cancel_failed(
    env: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    with env.client() as client:
        stuck = client.create_order("example.com", "x.com")
    env.fail(500, method="DELETE", times=10)
    assert main(["sweep", "--older-than", "0", "--commit", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    (failed,) = report["failed"]
    assert failed["order"]["order_id"] == stuck.order_id
    assert failed["error"].startswith("InternalServerError: ")


@pytest.mark.parametrize("value", ["-5", "abc", "nan", "inf"])
def test_sweep_refuses_a_bad_age(
    env: Sandbox, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sweep", "--older-than", value]) == 2
    assert "--older-than" in capsys.readouterr().err
    assert env.requests == []


def test_buy_max_price(env: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["buy", "premium.example", "x.com", "--max-price", "5"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("kopechka: refused: premium.example is listed at 12")
    assert err.count("\n") == 1
    assert not any(r.method == "POST" for r in env.requests)
    assert main(["buy", "example.com", "x.com", "--max-price", "5.00", "--json"]) == 0
    assert Decimal(json.loads(capsys.readouterr().out)["order"]["price"]) == 5


@pytest.mark.parametrize("value", ["abc", "-1", "Infinity", "5.0.0"])
def test_buy_refuses_a_bad_max_price(env: Sandbox, value: str) -> None:
    assert main(["buy", "example.com", "x.com", "--max-price", value]) == 2


def test_lost_purchase_answer_is_one_clear_line(
    env: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    env.fail(path="/orders", method="POST", drop=True, execute=True)
    assert main(["buy", "example.com", "x.com", "--code", "--timeout", "5"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("kopechka: OrderOutcomeUnknownError: POST /orders may have bought")
    assert "none cancelled" in err  # the farm rule: it may be another process's order
    assert "kopechka sweep" in err
    assert err.count("\n") == 1
    assert env.balance == Decimal("95")


# --- signals, in real processes ---------------------------------------------------------------

SIGNALS = [
    (signal.SIGTERM, "stopped by SIGTERM"),
    (signal.SIGHUP, "stopped by SIGHUP"),
    (signal.SIGINT, "interrupted"),  # Ctrl-C, for comparison
]


@pytest.mark.parametrize(("signum", "said"), SIGNALS, ids=[s[1] for s in SIGNALS])
def test_buy_code_refunds_on_signal(sandbox: Sandbox, signum: int, said: str) -> None:
    buy = children.command(sandbox, "buy", "example.com", "x.com", "--code", "--timeout", "60")
    bought = buy.stderr_line()
    assert bought.startswith("bought API-")
    order_id = bought.split()[1].rstrip(":")
    buy.proc.send_signal(signum)
    code, out, err = buy.finish()
    assert code == 128 + signum
    assert out == ""
    assert err.splitlines() == [f"kopechka: {said}" + _refund_note(signum, order_id)]
    assert sandbox.balance == Decimal("100")
    assert sandbox.state.get_order(order_id)["status"] == "cancelled"


def _refund_note(signum: int, order_id: str) -> str:
    return f"; order {order_id} cancelled, 5.00 refunded"  # Ctrl-C says so as the others do


def test_wait_stops_on_sigterm_and_leaves_the_order(sandbox: Sandbox) -> None:
    with sandbox.client() as client:
        order = client.create_order("example.com", "x.com")
    wait = children.command(sandbox, "wait", order.order_id, "--code", "--timeout", "60")
    children.wait_until(lambda: any(r.path.endswith("/messages") for r in sandbox.requests))
    wait.proc.send_signal(signal.SIGTERM)
    code, out, err = wait.finish()
    assert (code, out, err) == (143, "", "kopechka: stopped by SIGTERM\n")
    assert sandbox.state.get_order(order.order_id)["status"] == "active"  # not the wait's to cancel
