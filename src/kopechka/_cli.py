"""The ``kopechka`` command: quick tasks on the API, the sandbox server, and the demo.

Owns argument parsing, output (aligned tables, or ``--json``) and exit codes: 0 success, 1 API
error, 2 usage error, 3 wait timed out. It must not be imported by ``kopechka/__init__``:
bots that only import the client do not pay for argparse or the sandbox. Errors are one line on
stderr, never a traceback, and never the API key.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from . import _cli_money
from ._client import KopechkaClient
from ._exceptions import (
    APIError,
    APIStatusError,
    KopechkaError,
    SpendLimitError,
    WaitTimeoutError,
)
from ._format import domain_rows, fields, message_rows, money, order_rows, to_json
from ._signals import Terminated
from ._version import __version__

__all__ = ["console_main", "main"]

EXIT_OK, EXIT_API, EXIT_USAGE, EXIT_TIMEOUT = 0, 1, 2, 3


class Progress:
    """Shows how long a wait has run, on a terminal only; silent when stderr is not a terminal."""

    def __init__(self, what: str, stream: TextIO) -> None:
        self._what, self._stream = what, stream
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Progress:
        if self._stream.isatty():
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        if self._thread.is_alive():
            self._thread.join()
            self._stream.write("\r\x1b[K")
            self._stream.flush()

    def _run(self) -> None:
        started = time.monotonic()
        while not self._done.wait(0.5):
            elapsed = time.monotonic() - started
            self._stream.write(f"\r{self._what}... {elapsed:4.0f} s")
            self._stream.flush()


# --- commands -------------------------------------------------------------------------------------

Handler = Callable[[KopechkaClient, argparse.Namespace], tuple[object, str]]


def _orders(client: KopechkaClient, a: argparse.Namespace) -> tuple[object, str]:
    if a.all:
        orders = list(client.iter_orders(status=a.status, domain=a.domain))
        return orders, order_rows(orders) + f"\n{len(orders)} orders"
    page = client.list_orders(page=a.page, limit=a.limit, status=a.status, domain=a.domain)
    p = page.pagination
    footer = f"\npage {p.page} of {max(p.pages, 1)} ({p.total} orders; --all for every page)"
    return page, order_rows(page.orders) + footer


def _wait(client: KopechkaClient, order_id: str, a: argparse.Namespace) -> tuple[object, str]:
    with Progress(f"waiting for mail on {order_id}", sys.stderr):
        if a.code:
            code = client.wait_for_code(order_id, timeout=a.timeout, poll_interval=a.poll_interval)
            return {"order_id": order_id, "code": code}, code
        message = client.wait_for_message(
            order_id, timeout=a.timeout, poll_interval=a.poll_interval
        )
    return message, fields(message)


def _buy(client: KopechkaClient, a: argparse.Namespace) -> tuple[object, str]:
    if not (a.wait or a.code):
        order = client.create_order(a.domain, a.site, max_price=a.max_price)
        return order, fields(order)
    with client.mailbox(a.domain, a.site, max_price=a.max_price) as box:
        a.mailbox = box  # for the line printed on a signal
        print(f"bought {box.order_id}: {box.email}", file=sys.stderr)
        data, text = _wait(client, box.order_id, a)
    return {"order": to_json(box.order), "result": to_json(data)}, text


COMMANDS: dict[str, Handler] = {
    "profile": lambda c, a: (p := c.get_profile(), fields(p)),
    "balance": lambda c, a: (b := c.get_balance(), money(b)),
    "domains": lambda c, a: (d := c.get_domains(), domain_rows(d)),
    "orders": _orders,
    "order": lambda c, a: (o := c.get_order(a.order_id), fields(o)),
    "buy": _buy,
    "messages": lambda c, a: (m := c.get_messages(a.order_id), message_rows(m.messages)),
    "wait": lambda c, a: _wait(c, a.order_id, a),
    "cancel": lambda c, a: (x := c.cancel_order(a.order_id), fields(x)),
    "poll": lambda c, a: (p := c.start_polling(a.order_id), fields(p)),
    "sweep": _cli_money.sweep,
}


# --- parsing --------------------------------------------------------------------------------------


def _common(suppress: bool) -> argparse.ArgumentParser:
    """The options accepted before and after the subcommand."""
    default: Any = argparse.SUPPRESS if suppress else None
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--api-key", default=default, help="API key (else $KOPECHKA_API_KEY)")
    common.add_argument("--base-url", default=default, help="API root (else $KOPECHKA_BASE_URL)")
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS if suppress else False,
        help="print JSON for machines instead of tables",
    )  # fmt: skip
    return common


def _wait_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--code", action="store_true", help="print only the one-time code")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds (default 120)")
    parser.add_argument("--poll-interval", type=float, default=2.0, help=argparse.SUPPRESS)


def build_parser() -> argparse.ArgumentParser:
    """The whole command line."""
    parser = argparse.ArgumentParser(
        prog="kopechka", parents=[_common(False)],
        description="Kopechka temporary e-mail from the command line.",
        epilog="Exit codes: 0 success, 1 API error, 2 usage error, 3 wait timed out.",
    )  # fmt: skip
    parser.add_argument("--version", action="version", version=f"kopechka {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = [_common(True)]

    def add(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=common, help=text, description=text)

    add("profile", "show the account behind the key")
    add("balance", "show the balance")
    add("domains", "list the domains on sale with their prices")
    orders = add("orders", "list your orders")
    orders.add_argument("--status", help="only orders with this status")
    orders.add_argument("--domain", help="only orders on this domain")
    orders.add_argument("--all", action="store_true", help="every page, not just one")
    orders.add_argument("--page", type=int, default=1)
    orders.add_argument("--limit", type=int, default=20)
    for name, text in (("order", "show one order"), ("messages", "list an order's mail"),
                       ("cancel", "cancel an order (refunded if no mail came)"),
                       ("poll", "start polling for new mail on an order")):  # fmt: skip
        add(name, text).add_argument("order_id", metavar="ID")
    buy = add("buy", "buy an address; with --wait or --code, wait for its mail")
    buy.add_argument("domain", metavar="DOMAIN")
    buy.add_argument("site", metavar="SITE")
    buy.add_argument("--wait", action="store_true", help="wait for the first mail and show it")
    _wait_options(buy)
    wait = add("wait", "wait for mail on an order")
    wait.add_argument("order_id", metavar="ID")
    _wait_options(wait)
    _cli_money.add_options(sub, common, buy)
    sandbox = sub.add_parser("sandbox", help="serve the offline sandbox API until interrupted")
    from .testing import _command  # noqa: PLC0415 - light: the sandbox loads only when it runs

    _command.add_arguments(sandbox)
    sub.add_parser("demo", help="the whole flow on an embedded sandbox (no network, no key)")
    return parser


# --- running --------------------------------------------------------------------------------------


def _fail(code: int, text: str) -> int:
    print(f"kopechka: {text}", file=sys.stderr)
    return code


def _run(a: argparse.Namespace) -> int:
    if a.command == "demo":
        from . import _demo  # noqa: PLC0415 - the sandbox loads only for the commands that use it

        return _demo.run(sys.stdout)
    if a.command == "sandbox":
        from .testing import _command  # noqa: PLC0415 - the sandbox loads only for this command

        return _command.run(a)
    with KopechkaClient(a.api_key, base_url=a.base_url) as client:
        data, text = COMMANDS[a.command](client, a)
    print(json.dumps(to_json(data), indent=2, ensure_ascii=False) if a.json else text)
    return int(getattr(a, "exit_code", EXIT_OK))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``kopechka`` command; returns the exit code.

    Args:
        argv: The arguments, without the program name (``sys.argv[1:]`` when ``None``).

    Returns:
        0 success, 1 API error, 2 usage error, 3 wait timed out.
    """
    args = build_parser().parse_args(argv)
    try:
        with _cli_money.guard():
            return _run(args)
    except Terminated as stop:  # SIGTERM, SIGHUP: unwound as Ctrl-C is, exit 128 + signal
        return _fail(128 + stop.signum, _cli_money.stopped_line(stop, args))
    except SpendLimitError as exc:
        return _fail(EXIT_API, f"refused: {exc}")
    except WaitTimeoutError as exc:
        return _fail(EXIT_TIMEOUT, f"timed out: {exc}")
    except APIStatusError as exc:
        return _fail(EXIT_API, f"{type(exc).__name__} (HTTP {exc.status_code}): {exc.message}")
    except APIError as exc:
        return _fail(EXIT_API, f"{type(exc).__name__}: {exc.message}")
    except (KopechkaError, ValueError) as exc:
        return _fail(EXIT_USAGE, str(exc))
    except KeyboardInterrupt:
        return _fail(130, "interrupted")
    except BrokenPipeError:  # the reader went away (| head): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_API
    except Exception as exc:  # one line, never a traceback
        return _fail(EXIT_API, f"unexpected {type(exc).__name__}: {exc}")


def console_main() -> None:
    """The console-script entry point: ``main()`` with its exit code."""
    sys.exit(main())
