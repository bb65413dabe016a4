"""Every public error comes back from a Celery task's JSON result as itself: the class, the
message and every attribute JSON can carry (the live response is dropped), through Celery's own
code for it (``Backend.prepare_exception`` on the worker's side, ``exception_to_python`` on the
submitter's: ``cls(*args)``), with the default ``result_serializer = "json"``.

The backend is Celery's in-memory cache backend: no broker, no worker, nothing to start; one test
also runs a real worker (in a thread of a child process, on the in-memory broker) that raises the
error in a task.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from celery import Celery

from kopechka import APIStatusError, KopechkaError, SpendLimitError

from ..test_pickle import MAKERS


@pytest.fixture(scope="module")
def app() -> Iterator[Celery]:
    app = Celery("farm-json", backend="cache+memory://", set_as_current=False)
    assert app.conf.result_serializer == "json"  # Celery's default, kept
    yield app
    app.close()


def _through_json(app: Celery, error: BaseException, task_id: str) -> Any:
    app.backend.mark_as_failure(task_id, error)  # as a worker stores a task's exception
    return app.AsyncResult(task_id).result  # as the submitter reads it back


def _attributes(error: BaseException) -> dict[str, Any]:
    return {k: v for k, v in vars(error).items() if k != "response"}


@pytest.mark.parametrize("cls", list(MAKERS), ids=lambda c: c.__name__)
def test_an_error_comes_back_from_a_json_result(app: Celery, cls: type[KopechkaError]) -> None:
    error = MAKERS[cls]()
    back: Any = _through_json(app, error, f"task-{cls.__name__}")
    assert type(back) is cls, back  # not Exception("<class 'kopechka.BadRequestError'>(...)")
    assert str(back) == str(error)
    assert back.args == error.args
    assert _attributes(back) == _attributes(error)
    if isinstance(error, APIStatusError):
        assert vars(back)["response"] is None


def test_an_unknown_price_comes_back(app: Celery) -> None:
    error = SpendLimitError("example.com is not listed", price=None, cap=Decimal("5.00"))
    back = _through_json(app, error, "task-unlisted")
    assert (type(back), back.price, back.cap, back.order) == (
        SpendLimitError, None, Decimal("5.00"), None,
    )  # fmt: skip


def test_every_error_is_rebuilt_from_its_args_alone() -> None:
    for cls, make in MAKERS.items():
        error = make()
        again = cls(*error.args)
        assert (type(again), again.args, str(again)) == (cls, error.args, str(error))
        assert _attributes(again) == _attributes(error), cls


_WORKER = """
import json
from celery import Celery
from celery.contrib.testing.worker import start_worker
from kopechka import BadRequestError

app = Celery("farm-json-worker", broker="memory://", backend="cache+memory://")

@app.task(name="refused")
def refused():
    body = {"message": "Insufficient balance"}
    raise BadRequestError("Insufficient balance", status_code=400, body=body)

with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
    try:
        refused.delay().get(timeout=60)
    except Exception as exc:
        shown = {"type": type(exc).__name__, "str": str(exc)}
        shown.update({k: v for k, v in vars(exc).items() if k in ("status_code", "body")})
        print(json.dumps(shown))
"""


@pytest.mark.slow
def test_a_real_worker_hands_the_error_back() -> None:
    """A worker (solo, in-memory broker, in a thread) in a process of its own: Celery sets up
    the process's logging for it."""
    out = subprocess.run(
        [sys.executable, "-c", _WORKER], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {
        "type": "BadRequestError",
        "str": "400: Insufficient balance",
        "status_code": 400,
        "body": {"message": "Insufficient balance"},
    }
