"""``kopechka sandbox`` in real subprocesses: a flag for every Sandbox argument, an access log with the
key masked, loud binding beyond loopback, and bad values as one line with exit 2."""

from __future__ import annotations

import argparse
import inspect
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from kopechka.testing import Sandbox
from kopechka.testing._command import add_arguments

from ..children import Child

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
COMMAND = [sys.executable, "-m", "kopechka", "sandbox"]


@dataclass
class Served:
    url: str
    root: str
    banner: list[str]
    proc: subprocess.Popen[str]


@contextmanager
def serve(*args: str) -> Iterator[Served]:
    command = [*COMMAND, "--port", "0", *args]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        try:
            assert proc.stdout is not None
            child = Child(proc)  # each line awaited with a bound: a silent server fails the test
            banner = [child.line()]
            while banner[-1] and not banner[-1].startswith("Press Ctrl-C"):
                banner.append(child.line())
            url = banner[0].split()[-1]
            yield Served(url, url.removesuffix("/api/v1"), banner, proc)
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()  # or leaving the block would wait for it forever
                raise


def stop(served: Served) -> tuple[int, str]:
    served.proc.send_signal(signal.SIGINT)
    code = served.proc.wait(timeout=10)
    assert served.proc.stderr is not None
    return code, served.proc.stderr.read()


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--balance", "abc"], "--balance: balance must be an amount"),
        (["--balance", "-5"], "--balance:"),
        (["--port", "99999"], "--port: must be 0 to 65535"),
        (["--port", "http"], "--port: must be 0 to 65535"),
        (["--rate-limit", "ten"], "--rate-limit:"),
        (["--rate-limit", "5/0"], "--rate-limit:"),
        (["--order-duration", "0"], "--order-duration:"),
        (["--domains", "nonsense"], "--domains: expected NAME=PRICE"),
        (["--domains", "a.test=free"], "--domains:"),
        (["--domains", "@/nonexistent/domains.json"], "--domains: cannot read"),
        (["--auto-mail", "nan"], "--auto-mail:"),
        (["--auto-mail-content", "{nope}"], "--auto-mail:"),
        (
            ["--host", "no-such-host.invalid", "--port", "0"],
            "cannot listen on no-such-host.invalid",
        ),
    ],
)
def test_bad_values_are_one_line_and_exit_2(args: list[str], says: str) -> None:
    result = subprocess.run(
        [*COMMAND, *args], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"kopechka: {says}"), result.stderr
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_port_in_use_is_one_line_and_exit_2(busy_port: int) -> None:
    result = subprocess.run(
        [*COMMAND, "--port", str(busy_port)], capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert (
        result.stderr
        == f"kopechka: cannot listen on 127.0.0.1:{busy_port}: Address already in use\n"
    )


def test_every_flag_reaches_the_sandbox(tmp_path: Path) -> None:
    with serve(
        "--api-key", "cli-secret-key", "--balance", "10.00", "--domains", "cheap.test=2.50",
        "--domains", "pricey.test=7.00,mid.test=3", "--order-duration", "1",
        "--rate-limit", "4/60", "--auto-mail", "0", "--auto-mail-sender", "bot@{site}",
        "--auto-mail-subject", "S {site}", "--auto-mail-content", "C {code} {email}",
        "--seed", "42", "--access-log",
    ) as served:  # fmt: skip
        key = {"X-API-Key": "cli-secret-key"}
        with requests.Session() as s:
            domains = s.get(served.url + "/domains", headers=key, timeout=5)
            assert b'"name":"cheap.test","price":2.50' in domains.content
            assert [d["name"] for d in domains.json()["data"]] == [
                "cheap.test",
                "pricey.test",
                "mid.test",
            ]
            order = s.post(served.url + "/orders", json={"domain": "cheap.test", "site": "x.example"},
                           headers=key, timeout=5).json()["data"]  # fmt: skip
            message = s.get(
                f"{served.url}/orders/{order['orderId']}/messages", headers=key, timeout=5
            )
            mail = message.json()["messages"][0]
            assert (mail["from"], mail["subject"]) == ("bot@x.example", "S x.example")
            assert mail["content"].endswith(" " + order["email"])
            detail = s.get(f"{served.url}/orders/{order['orderId']}", headers=key, timeout=5)
            assert detail.json()["data"]["duration"] == 1
            assert s.get(served.url + "/balance", headers=key, timeout=5).status_code == 429
        code, stderr = stop(served)
    assert code == 0
    assert "API key: cli-secret-key" in served.banner[1]
    log = [line for line in stderr.splitlines() if '"' in line]
    assert len(log) == 5
    stamps = [datetime.strptime(line.split()[0], "%Y-%m-%dT%H:%M:%S.%f%z") for line in log]
    assert stamps == sorted(stamps)  # each line says when, in UTC
    assert all(abs(datetime.now(timezone.utc) - t) < timedelta(minutes=5) for t in stamps)
    assert log[0].split(" ", 1)[1].startswith('127.0.0.1 "GET /api/v1/domains" 200 ')
    assert log[-1].split(" ", 1)[1].startswith('127.0.0.1 "GET /api/v1/balance" 429 ')
    assert all(line.endswith("key=***") for line in log)
    assert "cli-secret-key" not in stderr


def test_the_seed_makes_codes_repeat() -> None:
    def code() -> str:
        with serve("--seed", "7", "--auto-mail", "0") as served:
            h = {"X-API-Key": "test-key"}
            order = requests.post(served.url + "/orders", json={"domain": "example.com", "site": "s"},
                                  headers=h, timeout=5).json()["data"]  # fmt: skip
            got = requests.get(
                f"{served.url}/orders/{order['orderId']}/messages", headers=h, timeout=5
            )
            return str(got.json()["messages"][0]["content"])

    assert code() == code()


def test_domains_from_a_json_file(tmp_path: Path) -> None:
    listing = tmp_path / "domains.json"
    listing.write_text(json.dumps([
        {"name": "file.test", "price": "1.50", "category": "own", "description": "from a file"},
        {"name": "num.test", "price": 0.25},
    ]))  # fmt: skip
    with serve("--domains", f"@{listing}") as served:
        got = requests.get(served.url + "/domains", headers={"X-API-Key": "test-key"}, timeout=5)
    assert b'"price":1.50,"category":"own","description":"from a file"' in got.content
    assert b'"name":"num.test","price":0.25,' in got.content


def test_binding_beyond_loopback_warns_and_prints_the_token() -> None:
    with serve("--host", "0.0.0.0") as served:
        token_line = next(line for line in served.banner if line.startswith("Admin token:"))
        token = token_line.split()[2]
        assert any("reachable from other machines" in line for line in served.banner)
        state = served.root + "/_sandbox/state"
        assert requests.get(state, timeout=5).status_code == 401
        assert requests.get(state, headers={"X-Sandbox-Token": token}, timeout=5).status_code == 200
        code, stderr = stop(served)
    assert code == 0
    assert stderr.startswith("kopechka: warning: the kopechka sandbox listens on 0.0.0.0")


def test_virtual_time_stands_still_until_advanced() -> None:
    with serve("--virtual-time", "--no-access-log") as served:
        state = served.root + "/_sandbox/state"
        first = requests.get(state, timeout=5).json()["data"]["now"]
        time.sleep(1.1)
        assert requests.get(state, timeout=5).json()["data"]["now"] == first
        moved = requests.post(served.root + "/_sandbox/advance", json={"minutes": 2}, timeout=5)
        assert moved.json()["data"]["now"] != first
        code, stderr = stop(served)
    assert (code, stderr) == (0, "")  # no access log when told so


def test_a_flag_with_help_for_every_sandbox_argument() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    dests = {a.dest: a for a in parser._actions if a.dest != "help"}
    arguments = set(inspect.signature(Sandbox).parameters)
    assert arguments - {"domains", "auto_mail"} <= set(dests)
    assert {
        "domains",
        "auto_mail",
        "auto_mail_sender",
        "auto_mail_subject",
        "auto_mail_content",
    } <= set(dests)
    assert all(action.help for action in dests.values())


def test_a_shared_api_key_option_is_not_added_twice() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--api-key", help="the command's own")
    add_arguments(parser)
    assert parser.parse_args(["--api-key", "k"]).api_key == "k"
