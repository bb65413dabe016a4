"""``kopechka mcp`` as a program: over stdio in a subprocess, its shutdown, its options, HTTP."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

if tuple(sys.version_info) < (3, 11):  # a call: mypy (set to 3.10) still checks the rest
    pytest.skip("the mcp extra needs Python 3.11 or newer", allow_module_level=True)

from kopechka import KopechkaClient
from kopechka._cli import main
from kopechka.testing import Sandbox
from mcp import Client, StdioServerParameters

from .agents import run

SIGNUPS = 20


def _env(sb: Sandbox | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KOPECHKA_")}
    if sb is not None:
        env |= {"KOPECHKA_API_KEY": sb.api_key, "KOPECHKA_BASE_URL": sb.url}
    return env


def _delivering(sb: Sandbox) -> None:
    """Each sign-up gets its code at once; other orders get no mail."""

    def hook(order: dict[str, Any]) -> None:
        if str(order["site"]).startswith("signup-"):
            sb.deliver(
                order["orderId"], subject="Confirm", content=f"Your code is {order['orderId'][-6:]}"
            )

    sb.on_order(hook)


def _orders(sb: Sandbox) -> list[tuple[str, str, int]]:
    """(site, status, messages) of every order of the account."""
    with sb.client() as kc:
        return [
            (o.site, str(o.status), len(kc.get_messages(o.order_id).messages))
            for o in kc.iter_orders()
        ]


def test_a_scripted_agent_signs_up_20_times_and_leaves_nothing_unused(tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    with Sandbox() as sb:
        _delivering(sb)
        params = StdioServerParameters(
            command=sys.executable,
            args=[
                "-m",
                "kopechka",
                "mcp",
                "--budget",
                "40",
                "--max-open",
                "3",
                "--journal",
                str(journal),
            ],
            env=_env(sb),
        )

        async def agent() -> None:
            async with Client(params) as c:
                for n in range(SIGNUPS):
                    quote = await c.call_tool(
                        "quote_address", {"domain": "inbox.test", "site": f"signup-{n}.example"}
                    )
                    assert quote.structured_content is not None
                    assert quote.structured_content["allowed"], quote
                    cid = quote.structured_content["confirmation_id"]
                    bought = await c.call_tool(
                        "buy_address", {"confirmation_id": cid, "user_approved": True}
                    )
                    assert not bought.is_error, bought
                    assert bought.structured_content is not None
                    order_id = bought.structured_content["order_id"]
                    waited = await c.call_tool(
                        "wait_for_code", {"order_id": order_id, "timeout": 10}
                    )
                    assert waited.structured_content is not None
                    assert waited.structured_content["code"] == order_id[-6:], waited
                for _ in range(2):  # the user gives up on two sign-ups: the server refunds them
                    quote = await c.call_tool(
                        "quote_address", {"domain": "inbox.test", "site": "abandoned.example"}
                    )
                    assert quote.structured_content is not None
                    cid = quote.structured_content["confirmation_id"]
                    await c.call_tool(
                        "buy_address", {"confirmation_id": cid, "user_approved": True}
                    )

        started = time.monotonic()
        run(agent)
        elapsed = time.monotonic() - started
        orders = _orders(sb)
        assert len(orders) == SIGNUPS + 2
        unused_charged = [o for o in orders if o[2] == 0 and o[1] != "cancelled"]
        assert unused_charged == []
        assert sum(1 for o in orders if o[1] == "cancelled") == 2
        assert sb.balance == Decimal("100.00") - SIGNUPS * Decimal("1.25")
    records = [json.loads(line) for line in journal.read_text(encoding="utf-8").splitlines()]
    assert [r["event"] for r in records].count("purchase") == SIGNUPS + 2
    assert records[-1] == records[-1] | {"event": "stop", "refunded": 2, "failed": 0}
    assert elapsed < 45, elapsed


class Raw:
    """``kopechka mcp`` in a subprocess, spoken to in JSON-RPC lines."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kopechka", "mcp", *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        )  # fmt: skip
        self.lines: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.next_id = 0

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def send(
        self, method: str, params: dict[str, Any] | None = None, *, notify: bool = False
    ) -> int:
        self.next_id += 1
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params or {}}
        if not notify:
            message["id"] = self.next_id
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")
        self.proc.stdin.flush()
        return self.next_id

    def answer(self, request_id: int) -> dict[str, Any]:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            message = json.loads(self.lines.get(timeout=deadline - time.monotonic()))
            if message.get("id") == request_id:
                return message  # type: ignore[no-any-return]
        raise AssertionError("no answer")

    def call(self, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        answer = self.answer(self.send("tools/call", {"name": tool, "arguments": arguments}))
        return answer["result"]  # type: ignore[no-any-return]

    def start(self) -> None:
        init = self.answer(self.send("initialize", {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "raw", "version": "1"},
        }))  # fmt: skip
        assert init["result"]["serverInfo"]["name"] == "kopechka"
        self.send("notifications/initialized", notify=True)


@contextmanager
def raw(args: list[str], env: dict[str, str]) -> Iterator[Raw]:
    server = Raw(args, env)
    try:
        yield server
    finally:
        if server.proc.poll() is None:
            server.proc.kill()
        server.proc.wait()
        for stream in (server.proc.stdin, server.proc.stdout, server.proc.stderr):
            if stream is not None:
                stream.close()


DELAY = 0.8  # seconds each refund's request is held: three in a row would outlast SHUTDOWN_LIMIT


@pytest.mark.parametrize("how", ["SIGTERM", "stdin closed", "stdin closed, then SIGTERM"])
def test_shutdown_refunds_every_order_without_mail_in_parallel(tmp_path: Path, how: str) -> None:
    journal = tmp_path / "journal.jsonl"
    with (
        Sandbox() as sb,
        raw(["--budget", "50", "--no-confirm", "--journal", str(journal)], _env(sb)) as srv,
    ):
        srv.start()
        ids = []
        for n in range(4):
            quote = srv.call("quote_address", {"domain": "example.com", "site": f"s{n}.example"})
            bought = srv.call(
                "buy_address", {"confirmation_id": quote["structuredContent"]["confirmation_id"]}
            )
            ids.append(bought["structuredContent"]["order_id"])
        sb.deliver(ids[0], content="code 123456")  # mail came: paid for, kept
        srv.send(
            "tools/call",
            {"name": "wait_for_code", "arguments": {"order_id": ids[1], "timeout": 50}},
        )
        time.sleep(0.3)  # that wait is under way in a worker thread
        sb.fail(delay=DELAY, path="/orders", times=None)  # every refund's request waits DELAY
        assert sb.balance == Decimal("80.00")
        started = time.monotonic()
        if how == "SIGTERM":
            srv.proc.send_signal(signal.SIGTERM)
        else:
            assert srv.proc.stdin is not None
            srv.proc.stdin.close()
        if how.endswith("then SIGTERM"):  # as an impatient client does, while the refunds run
            time.sleep(0.4)
            srv.proc.send_signal(signal.SIGTERM)
        code = srv.proc.wait(timeout=15)
        elapsed = time.monotonic() - started
        assert code == (128 + signal.SIGTERM if how == "SIGTERM" else 0)
        assert sb.balance == Decimal("95.00")  # three refunded, the one with mail kept
        sent = [r.at for r in sb.requests if r.method == "DELETE" and r.at >= started]
    # in parallel: the three refunds were all sent before the first could be answered (one after
    # another, each would wait for the one before: DELAY apart); the load of the machine aside
    assert len(sent) == 3
    assert max(sent) - min(sent) < DELAY, sent
    assert elapsed < 10, elapsed  # the process's own end, on a loaded machine, is not ours to time
    records = [json.loads(line) for line in journal.read_text(encoding="utf-8").splitlines()]
    refunds = {
        r["order_id"] for r in records if r["event"] == "refund" and r.get("on") == "shutdown"
    }
    assert refunds == set(ids[1:])
    assert records[-1]["event"] == "stop"


def test_live_mode_needs_a_budget_and_http_beyond_loopback_a_token(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KOPECHKA_API_KEY", "some-key")
    assert main(["mcp"]) == 2
    err = capsys.readouterr().err
    assert "--budget" in err
    assert "some-key" not in err
    monkeypatch.delenv("KOPECHKA_API_KEY")
    assert main(["mcp", "--sandbox", "--http", "--host", "0.0.0.0"]) == 2
    assert "--token" in capsys.readouterr().err
    assert main(["mcp", "--budget", "-1"]) == 2
    assert "Traceback" not in capsys.readouterr().err


def test_the_public_main_is_the_command_lines_mcp(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``kopechka.mcp.main(argv)`` runs ``kopechka mcp`` through the one parser: the arguments
    after ``mcp``, or ``sys.argv[2:]``."""
    import kopechka.mcp

    monkeypatch.setenv("KOPECHKA_API_KEY", "some-key")
    assert kopechka.mcp.main([]) == 2
    assert "--budget" in capsys.readouterr().err
    monkeypatch.setattr(sys, "argv", ["kopechka", "mcp", "--max-open", "0"])
    assert kopechka.mcp.main() == 2
    assert "--max-open" in capsys.readouterr().err


def test_without_the_extra_the_command_names_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in [n for n in sys.modules if n == "mcp" or n.startswith(("mcp.", "kopechka.mcp._"))]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "mcp", None)
    assert main(["mcp", "--sandbox"]) == 2
    err = capsys.readouterr().err
    assert 'pip install "kopechka[mcp]"' in err
    assert 'pip install ".[mcp]"' in err
    assert "Traceback" not in err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _post(url: str, token: str | None) -> int:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}})  # fmt: skip
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, data=body.encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        error.close()
        return int(error.code)


def test_streamable_http_on_loopback_with_a_bearer_token(tmp_path: Path) -> None:
    port = _free_port()
    journal = tmp_path / "journal.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kopechka", "mcp", "--sandbox", "--http", "--port", str(port), "--token", "t0k3n",
         "--journal", str(journal)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_env(),
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/mcp"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        assert _post(url, None) == 401
        assert _post(url, "wrong") == 401
        assert _post(url, "t0k3n") == 200
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=15)
        assert proc.stderr is not None
        proc.stderr.close()
    assert code == 128 + signal.SIGTERM
    events = [
        json.loads(line)["event"] for line in journal.read_text(encoding="utf-8").splitlines()
    ]
    assert events == [
        "start",
        "stop",
    ]  # the shutdown ran: its refunds, then the journal's last line


def test_the_client_module_stays_free_of_the_sdk() -> None:
    code = "import kopechka, kopechka._cli, kopechka.mcp, sys; print('mcp' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True
    )
    assert result.stdout.strip() == "False"
    assert KopechkaClient is not None


def test_on_python_3_10_the_command_says_what_it_needs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "version_info", (3, 10, 14, "final", 0))
    assert main(["mcp", "--sandbox"]) == 2
    assert "needs Python 3.11 or newer" in capsys.readouterr().err
