"""The pure decisions of ``_policy``: tables with fake time, no sockets, no sleeps."""

from __future__ import annotations

import argparse
import math

import pytest

from kopechka._policy import (
    MAX_RETRY_DELAY,
    MAX_TIMEOUT,
    MIN_RETRY_DELAY,
    Answer,
    Failure,
    Outcome,
    RetryPolicy,
    attempt_timeout,
    backoff_delay,
    body_too_large,
    check_timeout,
)
from kopechka._settings import checked_seconds, seconds_argument

POLICY = RetryPolicy(max_retries=3, max_retry_wait=60.0)


def answer(status: int, **headers: str) -> Answer:
    return Answer(status, {k.replace("_", "-"): v for k, v in headers.items()}, b"")


NEVER_SENT = Failure(timed_out=False, reached_server=False)
CONNECT_TIMEOUT = Failure(timed_out=True, reached_server=False)
READ_TIMEOUT = Failure(timed_out=True, reached_server=True)
DROPPED = Failure(timed_out=False, reached_server=True)


@pytest.mark.parametrize(
    ("outcome", "idempotent", "expected"),
    [
        (answer(200), True, None),
        (answer(404), True, None),
        (answer(400), False, None),
        (answer(501), True, None),
        (answer(500), True, 0.5),
        (answer(502), True, 0.5),
        (answer(503), True, 0.5),
        (answer(504), True, 0.5),
        (answer(500), False, None),   # POST/DELETE: the 5xx may have spent money
        (answer(503), False, None),
        (answer(429), False, 0.5),    # a refusal: retried for every method
        (answer(429, retry_after="3"), False, 3.0),
        (answer(429, retry_after="3"), True, 3.0),
        (answer(429, retry_after_ms="1500"), True, 1.5),
        (answer(429, retry_after="0"), True, MIN_RETRY_DELAY),   # never spin
        (answer(429, retry_after_ms="0"), False, MIN_RETRY_DELAY),
        (answer(429, retry_after="61"), True, None),   # beyond max_retry_wait: final at once
        (answer(429, retry_after="nan"), True, 0.5),   # unreadable: back off
        (answer(503, retry_after="30"), True, 0.5),    # Retry-After honoured on 429 only
        (NEVER_SENT, False, 0.5),
        (CONNECT_TIMEOUT, False, 0.5),
        (READ_TIMEOUT, False, None),   # may have reached the server: never re-sent
        (DROPPED, False, None),
        (READ_TIMEOUT, True, 0.5),
        (DROPPED, True, 0.5),
    ],
)  # fmt: skip
def test_retry_table(outcome: Outcome, idempotent: bool, expected: float | None) -> None:
    wait = POLICY.wait(outcome, idempotent=idempotent, retries_done=0, rand=lambda: 0.0)
    assert wait == expected


def test_retries_run_out() -> None:
    for done, expected in ((0, 0.5), (1, 1.0), (2, 2.0), (3, None)):
        assert (
            POLICY.wait(answer(500), idempotent=True, retries_done=done, rand=lambda: 0.0)
            == expected
        )
    assert RetryPolicy(0, 60.0).wait(answer(429), idempotent=True, retries_done=0) is None


@pytest.mark.parametrize(
    ("now", "deadline", "expected"),
    [(0.0, None, 3.0), (0.0, 10.0, 3.0), (6.9, 10.0, 3.0), (7.0, 10.0, None), (9.0, 10.0, None)],
)
def test_no_retry_wait_ends_past_the_deadline(
    now: float, deadline: float | None, expected: float | None
) -> None:
    wait = POLICY.wait(
        answer(429, retry_after="3"), idempotent=True, retries_done=0, now=now, deadline=deadline
    )
    assert wait == expected


def test_backoff_caps_and_jitters() -> None:
    assert backoff_delay(0, lambda: 0.0) == 0.5
    assert backoff_delay(0, lambda: 1.0) == 0.375
    assert backoff_delay(10, lambda: 0.0) == MAX_RETRY_DELAY
    assert backoff_delay(10**6, lambda: 0.0) == MAX_RETRY_DELAY  # no OverflowError


@pytest.mark.parametrize(
    ("timeout", "now", "deadline", "expected"),
    [
        ((10.0, 30.0), 0.0, None, (10.0, 30.0)),
        ((10.0, 30.0), 0.0, 100.0, (10.0, 30.0)),
        ((10.0, 30.0), 95.0, 100.0, (5.0, 5.0)),
        ((2.0, 30.0), 80.0, 100.0, (2.0, 20.0)),
        ((10.0, 30.0), 100.0, 100.0, None),
        ((10.0, 30.0), 101.0, 100.0, None),
    ],
)
def test_attempt_timeout_shrinks_to_the_deadline(
    timeout: tuple[float, float], now: float, deadline: float | None, expected: object
) -> None:
    assert attempt_timeout(timeout, now=now, deadline=deadline) == expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [(5, (5.0, 5.0)), (0.5, (0.5, 0.5)), ((1, 2.5), (1.0, 2.5)), (MAX_TIMEOUT, (MAX_TIMEOUT,) * 2)],
)
def test_timeouts_accepted(given: object, expected: tuple[float, float]) -> None:
    assert check_timeout(given) == expected


@pytest.mark.parametrize(
    "given",
    [0, -1, math.inf, math.nan, 1e300, MAX_TIMEOUT * 2, (1, math.inf), (1, 0), (1,), (1, 2, 3),
     True, "5", None, (1, "2")],
)  # fmt: skip
def test_unusable_timeouts_refused(given: object) -> None:
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        check_timeout(given)


@pytest.mark.parametrize(
    ("headers", "read", "expected"),
    [
        ({}, 0, False),
        ({}, 100, False),
        ({}, 101, True),
        ({"Content-Length": "100"}, 0, False),
        ({"content-length": "101"}, 0, True),
        ({"Content-Length": "9" * 40}, 0, True),
        ({"Content-Length": "abc"}, 0, False),   # unreadable: the reader's count decides
        ({"Content-Length": "-5"}, 0, False),
        ({"Content-Length": "²"}, 0, False),
    ],
)  # fmt: skip
def test_body_cap(headers: dict[str, str], read: int, expected: bool) -> None:
    assert body_too_large(headers, read, 100) is expected


@pytest.mark.parametrize(
    ("timeout", "now", "deadline", "expected"),
    [
        ((10.0, 30.0), 0.0, None, 40.0),
        ((10.0, 30.0), 0.0, 100.0, 40.0),
        ((10.0, 30.0), 95.0, 100.0, 5.0),  # not 10 (5 + 5): a wait's timeout is a hard bound
        ((10.0, 30.0), 100.0, 100.0, 0.0),
    ],
)
def test_attempt_budget_never_runs_past_the_deadline(
    timeout: tuple[float, float], now: float, deadline: float | None, expected: float
) -> None:
    from kopechka._policy import attempt_budget

    assert attempt_budget(timeout, now=now, deadline=deadline) == expected


@pytest.mark.parametrize(
    ("value", "positive", "most", "expected"),
    [
        (0, False, math.inf, 0.0),
        (0, True, math.inf, None),
        (2.5, True, 3.0, 2.5),
        (3, False, 3.0, 3.0),
        (3.0001, False, 3.0, None),
        (-0.001, False, math.inf, None),
        (math.inf, False, math.inf, None),
        (math.nan, False, math.inf, None),
        (True, False, math.inf, None),
        ("1", False, math.inf, None),
        (None, False, math.inf, None),
    ],
)
def test_checked_seconds_is_the_one_rule_for_seconds(
    value: object, positive: bool, most: float, expected: float | None
) -> None:
    """Every "number of seconds" a caller gives (close_timeout, sweep's older_than, the command
    lines' --timeout and the like) goes through one check: a real, finite number, >= 0 or > 0,
    at most a bound."""
    if expected is None:
        with pytest.raises(ValueError, match=r"^span must be a finite number of seconds"):
            checked_seconds("span", value, positive=positive, most=most)
        return
    got = checked_seconds("span", value, positive=positive, most=most)
    assert got == expected
    assert type(got) is float


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x", "must be a finite number of seconds > 0 and <= 60, got 'x'"),
        ("0", "must be a finite number of seconds > 0 and <= 60, got '0'"),
        ("nan", "must be a finite number of seconds > 0 and <= 60, got 'nan'"),
        ("61", "must be a finite number of seconds > 0 and <= 60, got '61'"),
    ],
)
def test_seconds_argument_says_why_in_argparse_terms(text: str, message: str) -> None:
    parse = seconds_argument(positive=True, most=60)
    assert parse("60") == 60.0
    with pytest.raises(argparse.ArgumentTypeError) as refused:
        parse(text)
    assert str(refused.value) == message
