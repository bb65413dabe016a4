"""A status filter outside the four the server filters on is refused before any request, on both
faces and in ``kopechka orders``: the server answers a misspelt filter with no orders, which a
script looking for active orders to refund would read as "there are none"."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from kopechka import OrderStatus
from kopechka._cli import main
from kopechka.testing import Sandbox

from .faces import Face

LISTED = "pending, active, cancelled, expired"


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as sb:
        yield sb


@pytest.mark.parametrize("status", ["actve", "Active", "bogus", "completed", OrderStatus.COMPLETED])
def test_a_status_outside_the_four_is_refused_before_any_request(
    face: Face, sandbox: Sandbox, status: object
) -> None:
    with face.sandbox_client(sandbox) as client:
        client.create_order("example.com", "x.com")
        before = len(sandbox.requests)
        with pytest.raises(ValueError, match=LISTED):
            client.list_orders(status=status)
        with pytest.raises(ValueError, match=LISTED):
            client.iter_orders(status=status)
        assert len(sandbox.requests) == before


@pytest.mark.parametrize(
    "status", ["pending", "active", "cancelled", "expired", OrderStatus.ACTIVE]
)
def test_each_of_the_four_filters(face: Face, sandbox: Sandbox, status: object) -> None:
    with face.sandbox_client(sandbox) as client:
        order = client.create_order("example.com", "x.com")
        client.get_order(order.order_id)  # active from here on
        got = [o.order_id for o in client.iter_orders(status=status)]
        assert got == ([order.order_id] if str(status) == "active" else [])
        page = client.list_orders(status=status)
        assert [o.order_id for o in page.orders] == got
    assert sandbox.requests[-1].query["status"] == str(status)


def test_kopechka_orders_refuses_a_bogus_status_as_a_usage_error(
    sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["orders", "--status", "bogus", "--base-url", sandbox.url, "--api-key", "k"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "'pending', 'active', 'cancelled', 'expired'" in err, err
    assert "bogus" in err
    assert sandbox.requests == []
