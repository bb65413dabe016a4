"""The sandbox's admin routes move money and time: a token that guards nothing (empty) or little
(short, while other machines can reach it) is refused, by ``Sandbox`` and ``kopechka sandbox``."""

from __future__ import annotations

import subprocess
import sys

import pytest
import requests

from kopechka.testing import Sandbox

COMMAND = [sys.executable, "-m", "kopechka", "sandbox", "--port", "0"]


@pytest.mark.parametrize(
    ("host", "token"),
    [("0.0.0.0", ""), ("0.0.0.0", "   "), ("0.0.0.0", "s3cret"), ("0.0.0.0", "x" * 15),
     ("127.0.0.1", ""), ("localhost", " ")],
)  # fmt: skip
def test_a_token_that_guards_little_is_refused(host: str, token: str) -> None:
    with pytest.raises(ValueError, match="admin_token must"):
        Sandbox(host=host, admin_token=token)


def test_an_empty_token_never_opens_the_admin_routes() -> None:
    """Had it reached the routes (set on the app past the constructor's check), it would replace
    the loopback Host check: a page of another site (DNS rebinding: Host names it) would reach
    them with an empty header. An empty token guards nothing, so the loopback rule applies."""
    with Sandbox(host="127.0.0.1") as sb:
        sb.app.admin_token = ""
        state = sb.root_url + "/_sandbox/state"
        rebound = {"Host": "evil.example", "X-Sandbox-Token": ""}
        assert requests.get(state, headers=rebound, timeout=5).status_code == 403
        assert requests.get(state, timeout=5).status_code == 200


@pytest.mark.filterwarnings("ignore:.*beyond loopback:RuntimeWarning")
def test_a_long_enough_token_beyond_loopback_is_kept() -> None:
    token = "t" * 16
    with Sandbox(host="0.0.0.0", admin_token=token) as sb:
        state = sb.root_url + "/_sandbox/state"
        assert requests.get(state, timeout=5).status_code == 401
        headers = {"X-Sandbox-Token": token}
        assert requests.get(state, headers=headers, timeout=5).status_code == 200


@pytest.mark.parametrize("token", ["", "short"])
def test_the_command_refuses_it_in_one_line(token: str) -> None:
    with subprocess.Popen(
        [*COMMAND, "--host", "0.0.0.0", "--admin-token", token],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) as proc:  # fmt: skip
        try:
            out, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:  # it serves, with the admin routes open: the bug
            proc.kill()
            out, err = proc.communicate()
    assert proc.returncode == 2, out
    assert err.startswith("kopechka: --admin-token must"), err
    assert err.count("\n") == 1
