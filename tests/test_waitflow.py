"""The wait as a pure flow, table-tested with fake time: no sockets, no sleeps.

Each row scripts what the server answers and checks what the wait did (its trace of commands on the
fake clock) and how it ended. Every row runs through both drivers (``_flow.run`` and ``_flow.arun``),
so the two faces share each rule by construction."""

from __future__ import annotations

import asyncio
import copy
import math
import re
from dataclasses import dataclass, field
from typing import Any

import pytest

from kopechka import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    Message,
    MessageList,
    NotFoundError,
    OrderClosedError,
    RateLimitError,
    WaitCancelledError,
    WaitTimeoutError,
    _flow,
)
from kopechka import _waitflow as wf

START = 1000.0
MAX_COMMANDS = 10_000  # a spinning wait would run past this on the fake clock


def message(mid: str, subject: str = "Code", content: str | None = None) -> dict[str, Any]:
    return {"id": mid, "from": "no-reply@site.com", "subject": subject,
            "content": f"your code is {mid[1:]}4321" if content is None else content,
            "receivedAt": "2024-01-01T00:00:00Z"}  # fmt: skip


def listing(*messages: dict[str, Any], status: str = "active") -> MessageList:
    return MessageList.model_validate({
        "messages": list(messages),
        "order": {"id": "o", "email": "e@x", "domain": "x", "status": status,
                  "created_at": "2024-01-01T00:00:00Z"},
    })  # fmt: skip


HELLO = message("m1", "Hello", "welcome aboard")
CODE = message("m2", "Your code", "code 246810")
LATER = message("m3", "Your code", "code 135790")


@dataclass
class World:
    """The server and the clock, scripted. Each list's last reply repeats forever."""

    fetches: list[object]
    polls: list[object] = field(default_factory=lambda: [True])
    fetch_cost: float = 0.0
    stop_at: float | None = None
    now: float = START
    trace: list[str] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    def _log(self, entry: str) -> None:
        self.trace.append(entry)
        assert len(self.trace) < MAX_COMMANDS, "the wait spins"

    def _next(self, replies: list[object]) -> object:
        reply = replies.pop(0) if len(replies) > 1 else replies[0]
        if isinstance(reply, Exception):
            raise reply
        return reply

    def fetch(self, deadline: float) -> object:
        assert self.now < deadline, "a request started after the deadline"
        self._log(f"fetch@{self.now - START:g}")
        self.now += self.fetch_cost
        return self._next(self.fetches)

    def poll(self, deadline: float) -> object:
        assert self.now < deadline
        self._log("poll")
        return self._next(self.polls)

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self._log(f"sleep {seconds:g}")
        self.now += seconds

    def stopped(self) -> bool:
        return self.stop_at is not None and self.now >= self.stop_at


def execute(world: World, command: wf.Command) -> object:
    """What the scripted server and clock make of one command (as a face's executor would)."""
    if isinstance(command, wf.Fetch):
        return world.fetch(command.deadline)
    if isinstance(command, wf.StartPolling):
        return world.poll(command.deadline)
    world.sleep(command.seconds)
    return None


def run_sync(world: World, wanted: wf.Wanted) -> wf.Found:
    flow = wf.wait_flow(wanted, world.clock, world.stopped)
    return _flow.run(flow, lambda command: execute(world, command))


def run_async(world: World, wanted: wf.Wanted) -> wf.Found:
    async def execute_async(command: wf.Command) -> object:
        return execute(world, command)

    flow = wf.wait_flow(wanted, world.clock, world.stopped)
    return asyncio.run(_flow.arun(flow, execute_async))


@pytest.fixture(params=[run_sync, run_async], ids=["sync", "async"])
def run(request: pytest.FixtureRequest) -> Any:
    return request.param


def want(**arguments: Any) -> wf.Wanted:
    arguments.setdefault("timeout", 10.0)
    arguments.setdefault("poll_interval", 2.0)
    return wf.Wanted.of("API-1", **arguments)


FOUND = [
    pytest.param(World([listing(CODE)]), want(), "m2", ["fetch@0"], id="mail at once"),
    pytest.param(
        World([listing(), listing(CODE)]),
        want(),
        "m2",
        ["fetch@0", "sleep 2", "fetch@2"],
        id="mail after one interval",
    ),
    pytest.param(
        World([listing(HELLO, CODE)]),
        want(subject="code"),
        "m2",
        ["fetch@0"],
        id="subject filter skips the first message",
    ),
    pytest.param(
        World([listing(HELLO), listing(HELLO, CODE)]),
        want(subject=re.compile("^Your")),
        "m2",
        ["fetch@0", "poll", "fetch@0"],
        id="mail exists: start-polling once, look again at once",
    ),
    pytest.param(
        World([listing(CODE), listing(CODE), listing(CODE, LATER)]),
        want(skip_existing=True),
        "m3",
        ["fetch@0", "poll", "fetch@0", "sleep 2", "fetch@2"],
        id="skip_existing ignores what the first look saw",
    ),
    pytest.param(
        World([listing(HELLO), listing(HELLO, CODE)]),
        want(need_code=True),
        "m2",
        ["fetch@0", "poll", "fetch@0"],
        id="a code is wanted: mail without one is passed over",
    ),
    pytest.param(
        World([listing(HELLO, CODE)]),
        want(pattern=r"\d{6}", sender="SITE"),
        "m2",
        ["fetch@0"],
        id="pattern and sender together",
    ),
    pytest.param(
        World([RateLimitError("slow", retry_after=0.0), listing(CODE)]),
        want(),
        "m2",
        ["fetch@0", "sleep 2", "fetch@2"],
        id="429 Retry-After 0 waits the poll interval",
    ),
    pytest.param(
        World([RateLimitError("slow", retry_after=5.0), listing(CODE)]),
        want(),
        "m2",
        ["fetch@0", "sleep 5", "fetch@5"],
        id="429 Retry-After longer than the interval",
    ),
    pytest.param(
        World(
            [InternalServerError("x", status_code=503), APIConnectionError("down"), listing(CODE)]
        ),
        want(),
        "m2",
        ["fetch@0", "sleep 2", "fetch@2", "sleep 2", "fetch@4"],
        id="5xx and network outlasted",
    ),
    pytest.param(
        World(
            [listing(HELLO), listing(HELLO), listing(HELLO, CODE)],
            polls=[BadRequestError("no", status_code=400), True],
        ),
        want(subject="code"),
        "m2",
        ["fetch@0", "poll", "sleep 2", "fetch@2", "poll", "fetch@2"],
        id="start-polling refused is tried again next round",
    ),
    pytest.param(
        World([listing(HELLO), listing(HELLO), listing(HELLO, CODE)]),
        want(subject="code"),
        "m2",
        ["fetch@0", "poll", "fetch@0", "sleep 2", "fetch@2"],
        id="start-polling is called once",
    ),
]


@pytest.mark.parametrize(("world", "wanted", "found", "trace"), FOUND)
def test_found(run: Any, world: World, wanted: wf.Wanted, found: str, trace: list[str]) -> None:
    world = copy.deepcopy(world)  # each row runs through both drivers
    assert run(world, wanted).message.id == found
    assert world.trace == trace


def test_the_code_is_returned_with_the_message(run: Any) -> None:
    got = run(World([listing(CODE)]), want(need_code=True, code_pattern=r"code (\d+)"))
    assert got.code == "246810"


FAILED = [
    pytest.param(
        World([listing()]),
        want(timeout=5),
        WaitTimeoutError,
        ["fetch@0", "sleep 2", "fetch@2", "sleep 2", "fetch@4", "sleep 1"],
        id="timeout: the deadline caps the last pause",
    ),
    pytest.param(
        World([listing()], fetch_cost=1.5),
        want(timeout=4),
        WaitTimeoutError,
        ["fetch@0", "sleep 2", "fetch@3.5"],
        id="slow answers count against the deadline",
    ),
    pytest.param(
        World([RateLimitError("slow", retry_after=0.0)]),
        want(timeout=2, poll_interval=0.5),
        WaitTimeoutError,
        [
            "fetch@0",
            "sleep 0.5",
            "fetch@0.5",
            "sleep 0.5",
            "fetch@1",
            "sleep 0.5",
            "fetch@1.5",
            "sleep 0.5",
        ],
        id="429 Retry-After 0 forever never spins",
    ),
    pytest.param(
        World([RateLimitError("slow", retry_after=30.0)]),
        want(timeout=5),
        WaitTimeoutError,
        ["fetch@0", "sleep 5"],
        id="429 Retry-After past the deadline",
    ),
    pytest.param(
        World([listing(HELLO, status="cancelled")]),
        want(subject="code"),
        OrderClosedError,
        ["fetch@0"],
        id="cancelled order",
    ),
    pytest.param(
        World([listing(), listing(HELLO, status="expired")]),
        want(need_code=True),
        OrderClosedError,
        ["fetch@0", "sleep 2", "fetch@2"],
        id="expired order",
    ),
    pytest.param(
        World([AuthenticationError("bad key", status_code=401)]),
        want(),
        AuthenticationError,
        ["fetch@0"],
        id="401 raised",
    ),
    pytest.param(
        World([NotFoundError("no such order", status_code=404)]),
        want(),
        NotFoundError,
        ["fetch@0"],
        id="404 raised",
    ),
    pytest.param(
        World([BadRequestError("bad", status_code=400)]),
        want(),
        BadRequestError,
        ["fetch@0"],
        id="400 on the messages raised",
    ),
    pytest.param(
        World([listing(HELLO)], polls=[AuthenticationError("bad key", status_code=401)]),
        want(subject="code"),
        AuthenticationError,
        ["fetch@0", "poll"],
        id="401 on start-polling raised",
    ),
    pytest.param(
        World([listing(HELLO)], stop_at=START + 3),
        want(subject="code"),
        WaitCancelledError,
        ["fetch@0", "poll", "fetch@0", "sleep 2", "fetch@2", "sleep 2"],
        id="stopped during a sleep",
    ),
    pytest.param(
        World([listing(HELLO)], stop_at=START + 4.5),
        want(subject="code", timeout=5),
        WaitCancelledError,
        ["fetch@0", "poll", "fetch@0", "sleep 2", "fetch@2", "sleep 2", "fetch@4", "sleep 1"],
        id="stopped during the last sleep: cancelled, not timed out",
    ),
    pytest.param(
        World([listing(HELLO)], stop_at=START),
        want(),
        WaitCancelledError,
        [],
        id="stopped before the first look: no request",
    ),
]


@pytest.mark.parametrize(("world", "wanted", "error", "trace"), FAILED)
def test_failed(
    run: Any, world: World, wanted: wf.Wanted, error: type[Exception], trace: list[str]
) -> None:
    world = copy.deepcopy(world)
    with pytest.raises(error) as info:
        run(world, wanted)
    assert type(info.value) is error
    assert world.trace == trace


def test_errors_carry_the_messages_seen(run: Any) -> None:
    for world, error in [
        (World([listing(HELLO)]), WaitTimeoutError),
        (World([listing(HELLO, status="expired")]), OrderClosedError),
        (World([listing(HELLO)], stop_at=START + 1), WaitCancelledError),
    ]:
        with pytest.raises(error) as info:
            run(world, want(subject="code"))
        assert [m.id for m in info.value.messages] == ["m1"]  # type: ignore[attr-defined]


def test_timeout_names_its_last_failure(run: Any) -> None:
    last = InternalServerError("down", status_code=503)
    with pytest.raises(WaitTimeoutError, match=r"within 3 s \(0 seen\)") as info:
        run(World([last]), want(timeout=3))
    assert info.value.__cause__ is last


def test_closed_error_names_the_status(run: Any) -> None:
    with pytest.raises(OrderClosedError, match="is cancelled") as info:
        run(World([listing(status="cancelled")]), want())
    assert info.value.status == "cancelled"


def test_each_message_is_judged_once(run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    judged: list[str] = []
    real = wf.matches

    def counting(message: Message, **filters: Any) -> bool:
        judged.append(message.id)
        return real(message, **filters)

    monkeypatch.setattr(wf, "matches", counting)
    world = World([listing(HELLO, LATER | {"subject": "News"})])
    with pytest.raises(WaitTimeoutError):
        run(world, want(timeout=5, poll_interval=1, subject="code"))
    assert world.trace.count("fetch@2") == 1  # several looks...
    assert sorted(judged) == ["m1", "m3"]  # ...each message judged once


def test_every_request_must_end_by_the_deadline() -> None:
    deadlines: list[float] = []
    world = World([listing()])

    def noting(command: wf.Command) -> object:
        if isinstance(command, wf.Fetch):
            deadlines.append(command.deadline)
        return execute(world, command)

    with pytest.raises(WaitTimeoutError):
        _flow.run(wf.wait_flow(want(timeout=7), world.clock), noting)
    assert set(deadlines) == {START + 7}


def test_an_unexpected_exception_ends_the_wait_as_it_is(run: Any) -> None:
    with pytest.raises(KeyError):
        run(World([KeyError("a bug")]), want())


def test_async_driver_closes_the_flow_when_cancelled() -> None:
    closed: list[bool] = []

    def flow() -> Any:
        try:
            yield wf.Sleep(60)
        finally:
            closed.append(True)

    async def main() -> None:
        task = asyncio.create_task(
            _flow.arun(flow(), lambda command: asyncio.sleep(command.seconds))
        )
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert closed == [True]


@pytest.mark.parametrize(
    "arguments",
    [
        {"timeout": 0},
        {"timeout": -1},
        {"timeout": True},
        {"timeout": "5"},
        {"poll_interval": 0},
        {"timeout": math.inf},  # a wait must end: an unusable timeout, not "forever"
        {"poll_interval": math.nan},
        {"poll_interval": 1e300},  # no sleep takes it
        {"subject": 5},
        {"sender": b"x"},
        {"pattern": 1},
        {"code_pattern": 1.5},
    ],
)
def test_arguments_checked(arguments: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be"):
        want(**arguments)


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, True),
        ({"subject": "CODE"}, True),
        ({"subject": "hello"}, False),
        ({"sender": re.compile(r"@site\.com$")}, True),
        ({"pattern": r"\b246810\b"}, True),
        ({"pattern": "135790"}, False),
        ({"subject": "code", "sender": "other"}, False),
    ],
)
def test_matches(filters: dict[str, Any], expected: bool) -> None:
    assert wf.matches(Message.model_validate(CODE), **filters) is expected


def test_html_content_is_also_searched_as_text() -> None:
    html = Message.model_validate(message("m9", content="<p>code <b>77</b>88</p>"))
    assert wf.matches(html, pattern=r"code 7788")
