"""The sandbox's JSON: money goes out with the digits it holds, and any text survives the trip."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kopechka.testing._jsonio import dumps, loads, loads_object
from kopechka.testing._state import SandboxError


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (Decimal("5.00"), b"5.00"),
        (Decimal("150.75"), b"150.75"),
        (Decimal("12345678901234567.89"), b"12345678901234567.89"),
        (Decimal("0"), b"0"),
        (Decimal("1E+3"), b"1E+3"),
        ({"a": [1, True, None, 1.5, "é\n"]}, '{"a":[1,true,null,1.5,"é\\n"]}'.encode()),
        ("\ud800", b'"\\ud800"'),  # a lone surrogate from a JSON escape stays that escape
    ],
)
def test_dumps_writes(value: object, written: bytes) -> None:
    assert dumps(value) == written


@pytest.mark.parametrize(
    "value", [Decimal("NaN"), Decimal("Infinity"), float("nan"), float("inf"), {1: "x"}, object()]
)
def test_dumps_refuses_what_json_cannot_hold(value: object) -> None:
    with pytest.raises((ValueError, TypeError)):
        dumps(value)


@given(st.decimals(allow_nan=False, allow_infinity=False))
def test_any_decimal_round_trips_with_its_digits(value: Decimal) -> None:
    back = json.loads(dumps({"v": value}), parse_float=Decimal, parse_int=Decimal)["v"]
    assert str(back) == str(value)


@given(st.text())
def test_any_text_round_trips(text: str) -> None:
    assert json.loads(dumps([text])) == [text]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"[" * 200_000 + b"]" * 200_000, "nested"),
        (b'{"a": NaN}', "JSON"),
        (b'{"a": -Infinity}', "JSON"),
        (b"\xff\xfe\x00", "JSON"),
        (b'{"a": 1', "JSON"),
        (b"1" * 5000, "JSON"),  # past Python's int-to-str digit limit
    ],
)
def test_loads_refuses_with_400(raw: bytes, message: str) -> None:
    with pytest.raises(SandboxError, match=message) as info:
        loads(raw)
    assert info.value.status == 400


def test_loads_reads_fractions_as_decimal() -> None:
    assert loads(b'{"price": 5.00, "n": 3}') == {"price": Decimal("5.00"), "n": 3}
    assert str(loads(b"[5.00]")[0]) == "5.00"
    assert loads_object(b"  ") == {}
    with pytest.raises(SandboxError, match="object"):
        loads_object(b"[]")
