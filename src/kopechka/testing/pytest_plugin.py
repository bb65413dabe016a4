"""pytest fixtures for testing code that uses kopechka, without network and without spending money.

Registered through the ``pytest11`` entry point, so any project that installs kopechka has them:

* ``kopechka_sandbox``: a running ``Sandbox`` (fresh for each test);
* ``kopechka_client``: a ``KopechkaClient`` bound to it.

Configure the sandbox of one test with a marker, whose keyword arguments go to ``Sandbox``::

    @pytest.mark.kopechka_sandbox(balance="3", rate_limit=(5, 1.0))
    def test_low_balance(kopechka_client): ...

    @pytest.mark.kopechka_sandbox(auto_mail=0.5, virtual_time=True)
    def test_code_arrives(kopechka_client): ...

The sandbox is imported inside the fixtures, so merely having the plugin costs a test run nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from kopechka import KopechkaClient
    from kopechka.testing import Sandbox


def pytest_configure(config: pytest.Config) -> None:
    """Declare the ``kopechka_sandbox`` marker."""
    config.addinivalue_line(
        "markers",
        "kopechka_sandbox(**options): Sandbox arguments for the kopechka_sandbox fixture: "
        "api_key, balance, domains, order_duration, rate_limit, auto_mail (seconds, or an "
        "AutoMail: each new order gets a verification mail), seed, virtual_time",
    )


@pytest.fixture
def kopechka_sandbox(request: pytest.FixtureRequest) -> Iterator[Sandbox]:
    """A running offline Kopechka API on loopback, fresh for each test."""
    from kopechka.testing import Sandbox  # noqa: PLC0415 - imported only when a test asks

    marker = request.node.get_closest_marker("kopechka_sandbox")
    options = dict(marker.kwargs) if marker else {}
    with Sandbox(**options) as sandbox:
        yield sandbox


@pytest.fixture
def kopechka_client(kopechka_sandbox: Sandbox) -> Iterator[KopechkaClient]:
    """A ``KopechkaClient`` bound to ``kopechka_sandbox``, closed after the test."""
    with kopechka_sandbox.client() as client:
        yield client
