"""The suite runs in a clean environment whatever the shell exports (conftest's autouse fixture)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .conftest import leaking_variables

ROOT = Path(__file__).resolve().parent.parent

DIRTY = {
    "KOPECHKA_API_KEY": "sk-from-the-shell",
    "KOPECHKA_BASE_URL": "http://127.0.0.1:9/api/v1",
    "KOPECHKA_NEW_SETTING": "1",
    "http_proxy": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "all_proxy": "socks5://127.0.0.1:9",
    "NO_PROXY": "*",
    "no_proxy": "*",
    "REQUESTS_CA_BUNDLE": "/nonexistent/ca.pem",
    "CURL_CA_BUNDLE": "/nonexistent/ca.pem",
    "SSL_CERT_FILE": "/nonexistent/ca.pem",
}


def test_probe_sees_a_clean_environment() -> None:
    assert leaking_variables(os.environ) == []


def test_a_dirty_shell_does_not_reach_the_tests() -> None:
    env = {**os.environ, **DIRTY, "KOPECHKA_AXIOS_NODE_PATH": "/kept/for/the/suite"}
    assert leaking_variables(env) == sorted(DIRTY)
    probe = f"{Path(__file__).relative_to(ROOT)}::test_probe_sees_a_clean_environment"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", probe],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
