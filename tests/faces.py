"""The two faces of the client, for suites that hold for both: each such test runs once against
``KopechkaClient`` and once against ``AsyncKopechkaClient``, with the same body.

The async face is driven from the test's plain code through ``AsyncView``: each call runs on the
view's own event loop, in a background thread, so a test reads the same for both faces (timers in
other threads included). A ``sleep=`` recorder given to the async face is wrapped in a coroutine.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

import requests

from kopechka import AsyncKopechkaClient, AsyncMailbox, KopechkaClient
from kopechka._httpx import httpx
from kopechka.testing import Sandbox

T = TypeVar("T")


class AsyncView:
    """An ``AsyncKopechkaClient`` used from plain code: its coroutines run on a loop of its own."""

    def __init__(self, make: Callable[[], AsyncKopechkaClient]) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.client = make()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the view's loop and return its result (or raise its error)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=300)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.client, name)
        if name == "iter_orders":
            return lambda *a, **k: iter(self.run(_collect(attribute(*a, **k))))
        if name == "mailbox":
            return lambda *a, **k: MailboxView(self, attribute(*a, **k))
        if inspect.iscoroutinefunction(attribute):
            return lambda *a, **k: self.run(attribute(*a, **k))
        return attribute

    def __repr__(self) -> str:
        return repr(self.client)

    def close(self) -> None:
        if self._thread.is_alive():
            self.run(self.client.close())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop.close()

    def __enter__(self) -> AsyncView:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


async def _collect(orders: Any) -> list[Any]:
    return [order async for order in orders]


class MailboxView:
    """An ``AsyncMailbox`` used from plain code, ``with`` block included."""

    def __init__(self, view: AsyncView, box: AsyncMailbox) -> None:
        self._view, self.box = view, box

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.box, name)
        if inspect.iscoroutinefunction(attribute):
            return lambda *a, **k: self._view.run(attribute(*a, **k))
        return attribute

    def __enter__(self) -> MailboxView:
        self._view.run(self.box.__aenter__())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._view.run(self.box.__aexit__(exc_type, exc, tb))


def _awaitable(sleep: Callable[[float], object]) -> Callable[[float], Any]:
    async def asleep(seconds: float) -> None:
        sleep(seconds)

    return asleep


@dataclass(frozen=True)
class Face:
    """How to make a client of one face, and what differs between the faces' arguments."""

    name: str

    @property
    def is_async(self) -> bool:
        return self.name == "async"

    def client(self, **kwargs: Any) -> Any:
        """A client (sync) or an ``AsyncView`` (async) made with ``kwargs``."""
        if not self.is_async:
            return KopechkaClient(**kwargs)
        if "sleep" in kwargs:
            kwargs["sleep"] = _awaitable(kwargs["sleep"])
        return AsyncView(lambda: AsyncKopechkaClient(**kwargs))

    def sandbox_client(self, sandbox: Sandbox, **kwargs: Any) -> Any:
        """A client bound to the sandbox, with its key."""
        kwargs.setdefault("api_key", sandbox.api_key)
        return self.client(base_url=sandbox.url, **kwargs)

    @contextmanager
    def broken_connection(self) -> Iterator[dict[str, Any]]:
        """Client arguments whose sending raises ``KeyError``: a bug, not the network."""
        if not self.is_async:

            class Broken(requests.Session):
                def request(self, *args: Any, **kwargs: Any) -> Any:
                    raise KeyError("a bug, not the network")

            with Broken() as session:
                yield {"session": session}
            return

        class BrokenTransport(httpx.AsyncBaseTransport):
            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                raise KeyError("a bug, not the network")

        yield {"http_client": httpx.AsyncClient(transport=BrokenTransport())}


FACES = {name: Face(name) for name in ("sync", "async")}
