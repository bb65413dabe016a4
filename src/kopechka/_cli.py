"""The ``kopechka`` command: quick tasks on the API, the sandbox server, and the demo.

Owns argument parsing, output (aligned tables, or ``--json``) and exit codes: 0 success, 1 API
error, 2 usage error, 3 wait timed out. It must not be imported by ``kopechka/__init__``:
bots that only import the client do not pay for argparse or the sandbox. Errors are one line on
stderr (one JSON object with ``--json``), never a traceback, and never the API key. Whatever the
server or a mail says is printed inert (``_format.inert``). With ``--json`` each command has one
shape whatever its options. Each command is one function ``cmd_<name>``, listed in ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TextIO
from urllib.parse import urlsplit

from . import _cli_money, _extract, _waitflow  # noqa: F401 - see below
from ._client import KopechkaClient
from ._config import ENV_API_KEY
from ._exceptions import (
    APIConnectionError,
    APIError,
    APIStatusError,
    KopechkaError,
    SpendLimitError,
    WaitTimeoutError,
)
from ._format import (
    domain_rows,
    fields,
    inert,
    json_text,
    message_rows,
    money,
    order_rows,
)
from ._settings import seconds_argument
from ._signals import Terminated
from ._version import __version__
from ._wire import ORDER_FILTERS

# ``_waitflow`` and ``_extract`` (which a client loads on its first wait) are loaded with the
# command: their dataclasses are made by ``exec``, and on CPython 3.11 a Ctrl-C that lands in
# an ``exec`` ends the process by SIGINT at exit even when caught, so ``buy --code`` interrupted
# in its first wait would not exit 130 after refunding.

__all__ = ["console_main", "main"]

EXIT_OK, EXIT_API, EXIT_USAGE, EXIT_TIMEOUT, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
MAX_TIMEOUT = 86_400.0
WAIT_TIMEOUT, POLL_INTERVAL = 120.0, 2.0


class UsageError(Exception):
    """Bad usage: a missing or malformed argument, an unknown command, no key (exit 2)."""


class Progress:
    """Shows how long a wait has run, on a terminal only; silent when stderr is not a terminal."""

    def __init__(self, what: str, stream: TextIO) -> None:
        self._what, self._stream = inert(what), stream
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


# --- commands: each returns (data for --json, text for people) -----------------------------------

Output = tuple[object, str]
Handler = Callable[[KopechkaClient, argparse.Namespace], Output]


def cmd_profile(client: KopechkaClient, a: argparse.Namespace) -> Output:
    """``profile``: an object (the ``Profile``)."""
    profile = client.get_profile()
    return profile, fields(profile)


def cmd_balance(client: KopechkaClient, a: argparse.Namespace) -> Output:
    """``balance``: a string of the server's digits."""
    balance = client.get_balance()
    return balance, money(balance)


def cmd_domains(client: KopechkaClient, a: argparse.Namespace) -> Output:
    """``domains``: a list of ``Domain``."""
    domains = client.get_domains()
    return domains, domain_rows(domains)


def cmd_orders(client: KopechkaClient, a: argparse.Namespace) -> Output:
    """``orders``: a list of ``Order``, one page or (``--all``) every page."""
    if a.all:
        orders = list(client.iter_orders(status=a.status, domain=a.domain))
        return orders, order_rows(orders) + f"\n{len(orders)} orders"
    page = client.list_orders(page=a.page, limit=a.limit, status=a.status, domain=a.domain)
    p = page.pagination
    footer = f"\npage {p.page} of {max(p.pages, 1)} ({p.total} orders; --all for every page)"
    return page.orders, order_rows(page.orders) + footer


def cmd_order(client: KopechkaClient, a: argparse.Namespace) -> Output:
    """``order ID``: an object (the ``Order``)."""
    order = client.get_order(a.order_id)
    return order, fields(order)


def _wait(client: KopechkaClient, order_id: str, a: argparse.Namespace) -> tuple[Any, Any, str]:
    """Wait for mail: (the message or None, the code or None, the text for people)."""
    timeout = WAIT_TIMEOUT if a.timeout is None else a.timeout
    interval = POLL_INTERVAL if a.poll_interval is None else a.poll_interval
    with Progress(f"waiting for mail on {order_id}", sys.stderr):
        if a.code:
            code = client.wait_for_code(order_id, timeout=timeout, poll_interval=interval)
            return None, code, inert(code)
        message = client.wait_for_message(order_id, timeout=timeout, poll_interval=interval)
    return message, None, fields(message)


def cmd_buy(client: KopechkaClient, a: argparse.Namespace) -> Output:
    """``buy``: ``{"order", "message", "code"}``, the last two ``null`` unless waited for."""
    if not (a.wait or a.code):
        order = client.create_order(a.domain, a.site, max_price=a.max_price)
        return {"order": order, "message": None, "code": None}, fields(order)
    with client.mailbox(a.domain, a.site, max_price=a.max_price) as box:
        a.mailbox = box  # for the line printed on a signal
        if not a.json:
            print(inert(f"bought {box.order_id}: {box.email}"), file=sys.stderr, flush=True)
        message, code, text = _wait(client, box.order_id, a)
    return {"order": box.order, "message": message, "code": code}, text


def cmd_messages(client: KopechkaClient, a: argparse.Namespace) -> Output:
    """``messages ID``: an object (the ``MessageList``: messages and order)."""
    found = client.get_messages(a.order_id)
    return found, message_rows(found.messages)


def cmd_wait(client: KopechkaClient, a: argparse.Namespace) -> Output:
    """``wait ID``: ``{"order_id", "message", "code"}``, one of the last two ``null``."""
    message, code, text = _wait(client, a.order_id, a)
    return {"order_id": a.order_id, "message": message, "code": code}, text


def cmd_cancel(client: KopechkaClient, a: argparse.Namespace) -> Output:
    """``cancel ID``: an object (the ``Cancellation``)."""
    cancellation = client.cancel_order(a.order_id)
    return cancellation, fields(cancellation)


def cmd_poll(client: KopechkaClient, a: argparse.Namespace) -> Output:
    """``poll ID``: an object (the ``PollingStatus``)."""
    status = client.start_polling(a.order_id)
    return status, fields(status)


COMMANDS: dict[str, Handler] = {
    "profile": cmd_profile,
    "balance": cmd_balance,
    "domains": cmd_domains,
    "orders": cmd_orders,
    "order": cmd_order,
    "buy": cmd_buy,
    "messages": cmd_messages,
    "wait": cmd_wait,
    "cancel": cmd_cancel,
    "poll": cmd_poll,
    "sweep": _cli_money.sweep,
}


# --- parsing --------------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """Raises ``UsageError`` instead of printing and exiting, so ``main`` reports it (as JSON
    with ``--json``) and returns 2."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see: {self.prog} --help)")


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


seconds = seconds_argument(positive=True, most=MAX_TIMEOUT)
"""An argparse type: a number of seconds, > 0 and at most a day."""


def _common(suppress: bool) -> _Parser:
    """The options accepted before and after the subcommand."""
    default: Any = argparse.SUPPRESS if suppress else None
    common = _Parser(add_help=False)
    common.add_argument(
        "--api-key", default=default, metavar="KEY",
        help=f"API key; better: set ${ENV_API_KEY} (a command line is visible to other users)",
    )  # fmt: skip
    common.add_argument(
        "--base-url", default=default, metavar="URL",
        help="API root (else $KOPECHKA_BASE_URL, else the vendor's)",
    )  # fmt: skip
    common.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS if suppress else False,
        help="print JSON for machines (errors too, on stderr)",
    )  # fmt: skip
    return common


def _wait_options(parser: argparse.ArgumentParser, need: str = "") -> None:
    parser.add_argument("--code", action="store_true", help="print only the one-time code")
    parser.add_argument(
        "--timeout", type=seconds, metavar="S",
        help=f"give up after S seconds (default {WAIT_TIMEOUT:g}; exit 3){need}",
    )  # fmt: skip
    parser.add_argument(
        "--poll-interval", type=seconds, metavar="S",
        help=f"seconds between looks at the mailbox (default {POLL_INTERVAL:g}){need}",
    )  # fmt: skip


def _order_commands(add: Callable[[str, str], argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """The commands on orders; returns ``buy``'s parser (the money options extend it)."""
    orders = add("orders", "list your orders")
    orders.add_argument("--status", choices=ORDER_FILTERS, help="only orders with this status")
    orders.add_argument("--domain", help="only orders on this domain")
    orders.add_argument("--all", action="store_true", help="every page, not just one")
    orders.add_argument("--page", type=positive_int, default=1, help="which page (default 1)")
    orders.add_argument(
        "--limit", type=positive_int, default=20, help="orders per page (default 20)"
    )
    for name, text in (("order", "show one order"), ("messages", "list an order's mail"),
                       ("cancel", "cancel an order (refunded if no mail came)"),
                       ("poll", "start polling for new mail on an order")):  # fmt: skip
        add(name, text).add_argument("order_id", metavar="ID", help="the order's id (API-...)")
    buy = add("buy", "buy an address; with --wait or --code, wait for its mail")
    buy.add_argument("domain", metavar="DOMAIN", help="a domain on sale (see: kopechka domains)")
    buy.add_argument("site", metavar="SITE", help="the site you sign up on")
    buy.add_argument("--wait", action="store_true", help="wait for the first mail and show it")
    _wait_options(buy, need="; needs --wait or --code")
    wait = add("wait", "wait for mail on an order")
    wait.add_argument("order_id", metavar="ID", help="the order's id (API-...)")
    _wait_options(wait)
    return buy


def build_parser() -> argparse.ArgumentParser:
    """The whole command line."""
    parser = _Parser(
        prog="kopechka", parents=[_common(False)],
        description="Kopechka temporary e-mail from the command line.",
        epilog="Exit codes: 0 success, 1 API error, 2 usage error, 3 wait timed out.",
    )  # fmt: skip
    parser.add_argument("--version", action="version", version=f"kopechka {__version__}")
    sub = parser.add_subparsers(
        dest="command", metavar="COMMAND", help="what to do (kopechka COMMAND --help for more)"
    )
    common = [_common(True)]

    def add(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, parents=common, help=text, description=text)

    add("profile", "show the account behind the key")
    add("balance", "show the balance")
    add("domains", "list the domains on sale with their prices")
    _cli_money.add_options(sub, common, _order_commands(add))
    sandbox = sub.add_parser("sandbox", help="serve the offline sandbox API until interrupted")
    from .testing import _command  # noqa: PLC0415 - light: the sandbox loads only when it runs

    _command.add_arguments(sandbox)
    sub.add_parser("demo", help="the whole flow on an embedded sandbox (no network, no key)")
    from .mcp import _options as mcp_options  # noqa: PLC0415 - light: the SDK loads only to serve

    mcp_options.add_arguments(add("mcp", "serve AI agents over MCP, under spend guards"))
    return parser


# --- running --------------------------------------------------------------------------------------


def _fail(
    as_json: bool, code: int, kind: str, text: str, line: str | None = None, **extra: Any
) -> int:
    """Report an error on stderr: one inert line (``line``, else ``text``), or one JSON object
    ``{"error": {"type", "message", "exit_code", ...}}`` with ``--json``."""
    if as_json:
        error = {"type": kind, "message": text, "exit_code": code, **extra}
        print(json_text({"error": error}, indent=None), file=sys.stderr)
    else:
        print(f"kopechka: {inert(line or text)}", file=sys.stderr)
    return code


def _client(a: argparse.Namespace) -> KopechkaClient:
    key = a.api_key if a.api_key is not None else os.environ.get(ENV_API_KEY)
    if key is None or not key.strip():
        raise UsageError(
            f"no API key: pass --api-key KEY or set the environment variable {ENV_API_KEY}"
        )
    client = KopechkaClient(key, base_url=a.base_url)
    a.host = urlsplit(client.base_url).netloc  # named in a connection error
    return client


def _order_fate(text: str, args: argparse.Namespace | int) -> str:
    """``text``, and what became of the order ``buy`` bought, if it bought one."""
    if not isinstance(args, argparse.Namespace):
        return text
    return _cli_money.stopped_line(text, args)


def _run(a: argparse.Namespace) -> int:
    if a.command == "demo":
        from . import _demo  # noqa: PLC0415 - the sandbox loads only for the commands that use it

        return _demo.run(sys.stdout)
    if a.command == "sandbox":
        from .testing import _command  # noqa: PLC0415 - the sandbox loads only for this command

        return _command.run(a)
    if a.command == "mcp":
        return _run_mcp(a)
    with _client(a) as client:
        data, text = COMMANDS[a.command](client, a)
    print(json_text(data) if a.json else text)
    return int(getattr(a, "exit_code", EXIT_OK))


MCP_MISSING = (
    'kopechka mcp needs the mcp extra: pip install "kopechka[mcp]" '
    '(from a checkout: pip install ".[mcp]")'
)


def _run_mcp(a: argparse.Namespace) -> int:
    from .mcp import _options as mcp_options  # noqa: PLC0415 - light: no SDK

    try:  # bad usage is said before the SDK is even looked for
        plan = mcp_options.plan_of(a)
    except (mcp_options.UsageError, ValueError) as exc:
        raise UsageError(f"mcp: {exc}") from None
    if tuple(sys.version_info) < (3, 11):  # a call: mypy, set to 3.10, still checks what follows
        raise UsageError("kopechka mcp needs Python 3.11 or newer (its extra, mcp, too)")
    try:
        from .mcp import _command as mcp_command  # noqa: PLC0415 - the SDK is an extra
    except ImportError as exc:
        if (exc.name or "").split(".")[0] not in {"mcp", "mcp_types", "anyio", "uvicorn"}:
            raise
        raise UsageError(MCP_MISSING) from None
    return mcp_command.run(a, plan)


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace | int:
    """The parsed arguments, or the exit code when there is nothing to run (help, version)."""
    try:
        args, unknown = parser.parse_known_args(argv)
    except SystemExit as exc:  # --help and --version print, then exit
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    if args.command is None and not unknown:  # a bare `kopechka`: the help, as a usage error
        parser.print_help()
        return EXIT_USAGE
    where = f"{parser.prog} {args.command}" if args.command else parser.prog
    if unknown:  # under a command, that command's help lists what it takes
        raise UsageError(f"unrecognized arguments: {' '.join(unknown)} (see: {where} --help)")
    if args.command == "buy" and not (args.wait or args.code):
        options = (("--timeout", args.timeout), ("--poll-interval", args.poll_interval))
        given = [name for name, value in options if value is not None]
        if given:
            need = "need" if len(given) > 1 else "needs"
            raise UsageError(f"{' and '.join(given)} {need} --wait or --code (see: {where} --help)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``kopechka`` command; returns the exit code.

    Args:
        argv: The arguments, without the program name (``sys.argv[1:]`` when ``None``).

    Returns:
        0 success, 1 API error, 2 usage error, 3 wait timed out, 130 interrupted.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in argv
    args: argparse.Namespace | int = EXIT_USAGE
    try:
        args = _parse(build_parser(), argv)
        if isinstance(args, int):
            return args
        with _cli_money.guard():
            return _run(args)
    except Terminated as stop:  # SIGTERM, SIGHUP: unwound as Ctrl-C is, exit 128 + signal
        namespace = args if isinstance(args, argparse.Namespace) else argparse.Namespace()
        line = _cli_money.stopped_line(stop, namespace)
        return _fail(as_json, 128 + stop.signum, "Terminated", line)
    except SpendLimitError as exc:
        return _fail(as_json, EXIT_API, "SpendLimitError", f"refused: {exc}")
    except UsageError as exc:
        return _fail(as_json, EXIT_USAGE, "UsageError", str(exc))
    except WaitTimeoutError as exc:
        line = _order_fate(f"timed out: {exc}", args)
        return _fail(as_json, EXIT_TIMEOUT, type(exc).__name__, line)
    except APIStatusError as exc:
        kind, status = type(exc).__name__, exc.status_code
        line = f"{kind} (HTTP {status}): {exc.message}"
        return _fail(as_json, EXIT_API, kind, exc.message, line, status_code=status)
    except APIConnectionError as exc:  # where it tried: a typo in --base-url shows at once
        kind, host = type(exc).__name__, getattr(args, "host", None)
        text = exc.message if host is None else f"{exc.message} (host {host})"
        return _fail(as_json, EXIT_API, kind, text, f"{kind}: {text}", host=host)
    except APIError as exc:
        kind = type(exc).__name__
        return _fail(as_json, EXIT_API, kind, exc.message, f"{kind}: {exc.message}")
    except (KopechkaError, ValueError) as exc:
        return _fail(as_json, EXIT_USAGE, "UsageError", str(exc))
    except KeyboardInterrupt:
        line = _order_fate("interrupted", args)
        return _fail(as_json, EXIT_INTERRUPTED, "Interrupted", line)
    except BrokenPipeError:  # the reader went away (| head): stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_API
    except Exception as exc:  # one line, never a traceback
        text = f"unexpected {type(exc).__name__}: {exc}"
        return _fail(as_json, EXIT_API, "UnexpectedError", text)


def mcp_main(argv: list[str] | None = None) -> int:
    """Run ``kopechka mcp`` with these arguments (``kopechka mcp --help`` lists them): what
    ``kopechka.mcp.main`` is, one parser for the whole command.

    Args:
        argv: The arguments after ``mcp``; ``None``: ``sys.argv[2:]``.

    Returns:
        The exit code.
    """
    return main(["mcp", *(sys.argv[2:] if argv is None else argv)])


def console_main() -> None:
    """The console-script entry point: ``main()`` with its exit code."""
    for stream in (sys.stdout, sys.stderr):  # a text the terminal cannot encode is escaped
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    sys.exit(main())
