"""Each optional extra's ImportError says how to install it both ways: from a checkout
(``pip install ".[async]"``, all that works until the package is on PyPI) and from PyPI."""

from __future__ import annotations

import subprocess
import sys

import pytest

BLOCK = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}")
        return None
sys.meta_path.insert(0, Block())
try:
    {statement}
except ImportError as exc:
    print(exc)
"""


@pytest.mark.parametrize(
    ("statement", "blocked", "extra"),
    [
        ("from kopechka import AsyncKopechkaClient", ("httpx", "httpx2"), "async"),
        ("import kopechka.contrib.redis", ("redis",), "redis"),
        ("import kopechka.contrib.otel", ("opentelemetry",), "otel"),
    ],
)
def test_an_extras_import_error_says_both_ways_to_install_it(
    statement: str, blocked: tuple[str, ...], extra: str
) -> None:
    code = BLOCK.format(blocked=set(blocked), statement=statement)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert f'pip install ".[{extra}]"' in out.stdout, out.stdout + out.stderr
    assert f'pip install "kopechka[{extra}]"' in out.stdout, out.stdout
