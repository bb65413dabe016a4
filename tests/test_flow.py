"""The one pair of flow drivers (``_flow.run``, ``_flow.arun``): each test runs through both.

The flows themselves are table-tested in test_waitflow.py and test_money.py; here, only what a
driver owes every flow: results sent in, errors (interrupts and cancellations included) thrown
in for the flow to decide, the flow's own end passed on as it is."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator
from typing import Any

import pytest

from kopechka import _flow

Run = Callable[[Generator[Any, Any, Any], Callable[[Any], Any]], Any]


def run_sync(flow: Generator[Any, Any, Any], execute: Callable[[Any], Any]) -> Any:
    return _flow.run(flow, execute)


def run_async(flow: Generator[Any, Any, Any], execute: Callable[[Any], Any]) -> Any:
    async def awaited(op: Any) -> Any:
        return execute(op)

    return asyncio.run(_flow.arun(flow, awaited))


@pytest.fixture(params=[run_sync, run_async], ids=["sync", "async"])
def drive(request: pytest.FixtureRequest) -> Run:
    return request.param  # type: ignore[no-any-return]


def test_each_result_is_sent_back_and_the_return_value_is_the_result(drive: Run) -> None:
    def flow() -> Generator[int, int, list[int]]:
        got = [(yield 1), (yield 2), (yield 3)]
        return got

    seen: list[int] = []

    def execute(op: int) -> int:
        seen.append(op)
        return op * 10

    assert drive(flow(), execute) == [10, 20, 30]
    assert seen == [1, 2, 3]


@pytest.mark.parametrize(
    "error", [RuntimeError("x"), KeyboardInterrupt(), SystemExit(3), asyncio.CancelledError()]
)
def test_an_operations_error_is_thrown_in_and_the_flow_decides(
    drive: Run, error: BaseException
) -> None:
    caught: list[BaseException] = []

    def flow() -> Generator[str, str, str]:
        try:
            yield "fails"
        except BaseException as exc:
            caught.append(exc)
            return (yield "after")
        return "not reached"

    def execute(op: str) -> str:
        if op == "fails":
            raise error
        return f"{op} ok"

    assert drive(flow(), execute) == "after ok"
    assert caught == [error]


@pytest.mark.parametrize("error", [LookupError("not handled"), KeyboardInterrupt()])
def test_an_error_the_flow_does_not_catch_ends_it_as_it_is(
    drive: Run, error: BaseException
) -> None:
    cleaned: list[bool] = []

    def flow() -> Generator[str, Any, str]:
        try:
            yield "fails"
        finally:
            cleaned.append(True)
        return "not reached"

    def execute(op: str) -> str:
        raise error

    with pytest.raises(type(error)) as info:
        drive(flow(), execute)
    assert info.value is error
    assert cleaned == [True]


def test_what_the_flow_raises_the_driver_raises(drive: Run) -> None:
    def flow() -> Generator[str, Any, str]:
        answer = yield "look"
        raise ValueError(answer)

    with pytest.raises(ValueError, match="looked"):
        drive(flow(), lambda op: op + "ed")


def test_a_flow_that_needs_nothing_runs_no_operation(drive: Run) -> None:
    def flow() -> Generator[str, Any, str]:
        return "done"
        yield "never"  # a generator all the same

    def execute(op: str) -> str:
        raise AssertionError("no operation was yielded")

    assert drive(flow(), execute) == "done"
