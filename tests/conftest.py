"""Shared fixtures: a clean environment for every test, a sandbox on loopback, a client bound to it
whose waits are recorded, not slept, and a canned server that answers fixed bodies (the vendor
documentation's own examples)."""

from __future__ import annotations

import os
import random
import signal
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import pytest
from hypothesis import settings

from kopechka import KopechkaClient
from kopechka.testing import Sandbox
from kopechka.testing._app import Reply
from kopechka.testing._server import AppServer

from .faces import FACES, Face

# Property tests assert behaviour, not speed: no per-example deadline on a shared machine. In CI the
# examples are derandomized so a run is reproducible; locally each run explores new inputs.
settings.register_profile("kopechka", deadline=None, derandomize=bool(os.environ.get("CI")))
settings.register_profile("thorough", deadline=None, max_examples=3000)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "kopechka"))

# A suite started in the background of a non-interactive shell (``cmd &``, as CI runs its lanes)
# inherits SIGINT ignored, and so would every child it starts: the tests that press Ctrl-C on a
# child would wait for nothing. Ctrl-C means what it means at a terminal, for the suite and its
# children (an ignored signal stays ignored across exec; a handled one is reset to the default).
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--shuffle", metavar="SEED", default=None,
        help="run the tests in an order drawn from SEED (the same on every xdist worker)",
    )  # fmt: skip


def pytest_report_header(config: pytest.Config) -> str | None:
    seed = config.getoption("--shuffle")
    return None if seed is None else f"kopechka: tests shuffled with --shuffle {seed}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With ``--shuffle SEED``: the suite passes in any order, and this draws one."""
    seed = config.getoption("--shuffle")
    if seed is not None:
        random.Random(seed).shuffle(items)


# What the library (and requests, httpx) reads from the environment: a developer's shell that sets any
# of them must not change what a test sees. Matched case-insensitively (http_proxy and HTTP_PROXY).
_ENVIRONMENT = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUESTS_CA_BUNDLE",
                "CURL_CA_BUNDLE", "SSL_CERT_FILE")  # fmt: skip
# Set by .ci/run for the suite's own tools; the library never reads them.
_SUITE_TOOLS = frozenset({"KOPECHKA_AXIOS_NODE_PATH"})


def leaking_variables(environ: Mapping[str, str]) -> list[str]:
    """The variables of ``environ`` that could change what the library does."""
    return sorted(
        name
        for name in environ
        if (name.upper().startswith("KOPECHKA_") and name not in _SUITE_TOOLS)
        or name.upper() in _ENVIRONMENT
    )


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts without KOPECHKA_* and proxy/CA variables (subprocesses inherit that)."""
    for name in leaking_variables(os.environ):
        monkeypatch.delenv(name)


class Sleeps(list[float]):
    """A ``sleep`` that records how long it was asked to wait and returns at once."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@dataclass
class Canned:
    """Answers each (method, path) with a fixed reply and records what it received."""

    routes: dict[tuple[str, str], Reply] = field(default_factory=dict)
    received: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def set(
        self,
        method: str,
        path: str,
        body: bytes | str,
        status: int = 200,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        raw = body.encode() if isinstance(body, str) else body
        default = [("Content-Type", "application/json")]
        self.routes[(method, path)] = Reply(
            status, raw, headers if headers is not None else default
        )

    def handle(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> Reply:
        path = target.split("?", 1)[0]
        with self.lock:
            self.received.append((method, target, dict(headers), body))
        reply = self.routes.get((method, path))
        if reply is None:
            return Reply(404, b'{"success": false, "message": "no canned answer"}')
        return Reply(reply.status, reply.body, list(reply.headers))


@pytest.fixture(params=sorted(FACES))
def face(request: pytest.FixtureRequest) -> Face:
    """Each test that asks for it runs once per face: ``KopechkaClient`` and
    ``AsyncKopechkaClient`` (see ``tests/faces.py``)."""
    return FACES[request.param]


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as sb:
        yield sb


@pytest.fixture
def client(sandbox: Sandbox, sleeps: Sleeps) -> Iterator[KopechkaClient]:
    with sandbox.client(sleep=sleeps, timeout=(2.0, 5.0)) as c:
        yield c


@pytest.fixture
def canned() -> Iterator[tuple[Canned, str]]:
    app = Canned()
    with AppServer(app) as server:
        yield app, server.root_url + "/api/v1"


@pytest.fixture
def canned_client(
    canned: tuple[Canned, str], sleeps: Sleeps
) -> Iterator[tuple[Canned, KopechkaClient]]:
    app, url = canned
    with KopechkaClient("test-key", base_url=url, sleep=sleeps, timeout=(2.0, 5.0)) as c:
        yield app, c
