"""``kopechka sandbox``: the offline API served from the command line, for tests in any language.

Owns the subcommand's options (one for every ``Sandbox`` argument, each with help), their checks,
the start banner and the access log. ``kopechka._cli`` calls ``add_arguments`` on its subparser
(which loads neither the sandbox nor the client) and ``run`` with the parsed arguments. Every bad
value, a port in use or an address that cannot be bound is one line on stderr
(``kopechka: --port: ...``) and exit 2, never a traceback. It must not parse anything but its own
options.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
import warnings
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._admin import TOKEN_HEADER
from ._automail import AutoMail
from ._server import check_admin_token, is_loopback_host
from ._state import MAX_DURATION_MINUTES, SandboxDomain, amount

if TYPE_CHECKING:
    from ._sandbox import Sandbox

__all__ = ["add_arguments", "run"]

EXIT_OK, EXIT_USAGE = 0, 2
_PORT = re.compile(r"[0-9]{1,5}")


class UsageError(Exception):
    """A bad option value: one line for the user."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``kopechka sandbox`` options to its subparser.

    Args:
        parser: The subparser of the ``sandbox`` command.
    """
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1); "
        f"anything else is reachable from other machines and makes the admin routes require "
        f"the {TOKEN_HEADER} header (printed at start)")  # fmt: skip
    add("--port", default="8025", help="port to listen on (default 8025; 0 for a free one)")
    if "--api-key" not in parser._option_string_actions:  # the command may share its own
        add("--api-key", metavar="KEY", help="the key the sandbox accepts (default test-key)")
    add("--balance", default="100.00", metavar="AMOUNT",
        help="the account's starting balance, served as written (default 100.00)")  # fmt: skip
    add("--domains", action="append", metavar="NAME=PRICE|@FILE",
        help="a domain on sale, e.g. my.test=2.50 (repeat, or comma-separate), or @file.json "
        'holding [{"name": ..., "price": "2.50", "category": ..., "description": ...}]; '
        "default: example.com 5.00 and three others")  # fmt: skip
    add("--order-duration", default="10", metavar="MINUTES",
        help="minutes an order lives before it expires (default 10)")  # fmt: skip
    add("--rate-limit", metavar="N[/SECONDS]",
        help="answer 429 with Retry-After past N requests per SECONDS (default 1); no limit "
        "by default")  # fmt: skip
    _auto_mail_arguments(parser)
    add("--seed", help="seed for random faults and automatic codes (reproducible runs)")
    add("--virtual-time", action="store_true",
        help="a clock that moves only through POST /_sandbox/advance (orders never expire on "
        "their own)")  # fmt: skip
    add("--admin-token", metavar="TOKEN", help=f"require this {TOKEN_HEADER} on the admin "
        "routes (made up at start when --host is not loopback, where it needs 16 "
        "characters or more)")  # fmt: skip
    add("--access-log", action=argparse.BooleanOptionalAction, default=None,
        help="one line per request on stderr, the key masked (default: on when stderr is a "
        "terminal)")  # fmt: skip


def _auto_mail_arguments(parser: argparse.ArgumentParser) -> None:
    fields = "placeholders {site} {domain} {email} {order_id} {code}"
    parser.add_argument(
        "--auto-mail",
        metavar="SECONDS",
        help="each new order gets a verification mail SECONDS after it is bought",
    )
    parser.add_argument(
        "--auto-mail-sender",
        metavar="TEMPLATE",
        help=f"its sender (default no-reply@{{site}}; {fields})",
    )
    parser.add_argument(
        "--auto-mail-subject", metavar="TEMPLATE", help="its subject (default 'Your {site} code')"
    )
    parser.add_argument(
        "--auto-mail-content", metavar="TEMPLATE",
        help="its body (default 'Your {site} verification code is {code}. It expires ...')",
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    """Serve the sandbox until interrupted.

    Args:
        args: The parsed command line.

    Returns:
        0 when stopped by Ctrl-C, 2 for a bad option value or an address that cannot be bound.
    """
    from ._sandbox import Sandbox  # noqa: PLC0415 - the client and server load only to serve

    try:
        sandbox = Sandbox(**_options(args))
    except (UsageError, ValueError) as exc:
        return _usage(str(exc))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            sandbox.start()
        except OSError as exc:
            where = f"{args.host}:{args.port}"
            return _usage(f"cannot listen on {where}: {exc.strerror or exc}")
    for warning in caught:
        print(f"kopechka: warning: {warning.message}", file=sys.stderr, flush=True)
    try:  # from the banner on, Ctrl-C is a stop (it may come before the loop is reached)
        _banner(sandbox)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("stopped", flush=True)
    finally:
        sandbox.stop()
    return EXIT_OK


def _usage(text: str) -> int:
    print(f"kopechka: {' '.join(text.split())}", file=sys.stderr)
    return EXIT_USAGE


def _banner(sandbox: Sandbox) -> None:
    print(f"Kopechka sandbox serving at {sandbox.url}", flush=True)
    print(f"API key: {sandbox.api_key}   admin routes: {sandbox.root_url}/_sandbox/   "
          f"OpenAPI: {sandbox.openapi_url}", flush=True)  # fmt: skip
    host, port = sandbox.bound_address
    if not is_loopback_host(host):
        print(f"Listening on {host} port {port}: reachable from other machines", flush=True)
    if sandbox.admin_token is not None:
        print(f"Admin token: {sandbox.admin_token}   (send it as {TOKEN_HEADER})", flush=True)
    print("Press Ctrl-C to stop.", flush=True)


def _access_log(line: str) -> None:
    sys.stderr.write(line + "\n")  # one write: lines of threads writing at once never mix
    sys.stderr.flush()


# --- option values -------------------------------------------------------------------------------


def _options(a: argparse.Namespace) -> dict[str, Any]:
    access = a.access_log if a.access_log is not None else sys.stderr.isatty()
    options: dict[str, Any] = {
        "host": a.host, "port": _port(a.port), "api_key": getattr(a, "api_key", None) or "test-key",
        "balance": _flag("--balance", amount, a.balance, "balance"),
        "order_duration": _whole("--order-duration", a.order_duration, 1, MAX_DURATION_MINUTES),
        "rate_limit": _rate_limit(a.rate_limit), "auto_mail": _auto_mail(a),
        "seed": _seed(a.seed), "virtual_time": a.virtual_time, "admin_token": a.admin_token,
        "access_log": _access_log if access else None,
    }  # fmt: skip
    if a.domains:
        options["domains"] = [d for value in a.domains for d in _domains(value)]
    if not options["api_key"].isascii() or not options["api_key"].isprintable():
        raise UsageError("--api-key: must be printable ASCII")
    if not a.host.strip():
        raise UsageError("--host: must be an address or a name")
    try:
        check_admin_token(a.admin_token, a.host, "--admin-token")
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return options


def _flag(flag: str, parse: Any, *values: Any) -> Any:
    try:
        return parse(*values)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def _port(text: str) -> int:
    if not _PORT.fullmatch(text.strip()) or int(text) > 65535:
        raise UsageError(f"--port: must be 0 to 65535, got {text!r}")
    return int(text)


def _whole(flag: str, text: str, low: int, high: int) -> int:
    if not re.fullmatch(r"[0-9]{1,9}", text.strip()) or not low <= int(text) <= high:
        raise UsageError(f"{flag}: must be a whole number from {low} to {high}, got {text!r}")
    return int(text)


def _seconds(flag: str, text: str, *, positive: bool = False) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{flag}: must be a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        bound = "above 0" if positive else "from 0"
        raise UsageError(f"{flag}: must be a finite number of seconds {bound}, got {text!r}")
    return value


def _rate_limit(text: str | None) -> tuple[int, float] | None:
    if text is None:
        return None
    count, _, per = text.partition("/")
    return _whole("--rate-limit", count, 1, 10**6), _seconds(
        "--rate-limit", per or "1", positive=True
    )


def _auto_mail(a: argparse.Namespace) -> AutoMail | None:
    given = {"sender": a.auto_mail_sender, "subject": a.auto_mail_subject,
             "content": a.auto_mail_content}  # fmt: skip
    templates: dict[str, str] = {k: v for k, v in given.items() if v is not None}
    if a.auto_mail is None and not templates:
        return None
    delay = 1.0 if a.auto_mail is None else _seconds("--auto-mail", a.auto_mail)
    mail: AutoMail = _flag("--auto-mail", lambda: AutoMail(delay=delay, **templates))
    return mail


def _seed(text: str | None) -> int | str | None:
    if text is None:
        return None
    return int(text) if re.fullmatch(r"-?[0-9]{1,30}", text) else text


def _domains(value: str) -> list[SandboxDomain]:
    if value.startswith("@"):
        return _domains_file(Path(value[1:]))
    found = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        name, sep, price = item.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"--domains: expected NAME=PRICE, got {item!r}")
        found.append(_domain(name.strip(), price.strip()))
    return found


def _domain(
    name: str, price: object, category: object = None, description: object = None
) -> SandboxDomain:
    if not 1 <= len(name) <= 253:
        raise UsageError(f"--domains: a domain name is 1 to 253 characters: {name!r}")
    extra: dict[str, Any] = {}
    for key, value in (("category", category), ("description", description)):
        if value is not None and not isinstance(value, str):
            raise UsageError(f"--domains: the {key} of {name} must be text")
        if value:
            extra[key] = value
    return SandboxDomain(name, _flag("--domains", amount, price, f"the price of {name}"), **extra)


def _domains_file(path: Path) -> list[SandboxDomain]:
    try:
        entries = json.loads(path.read_bytes(), parse_float=Decimal)
    except OSError as exc:
        raise UsageError(f"--domains: cannot read {path}: {exc.strerror or exc}") from None
    except (ValueError, RecursionError):
        raise UsageError(f"--domains: {path} is not JSON") from None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise UsageError(f"--domains: {path} must hold a list of objects with name and price")
    found = []
    for entry in entries:
        name = entry.get("name")
        if not isinstance(name, str) or "price" not in entry:
            raise UsageError(f"--domains: every entry of {path} needs a name and a price")
        found.append(_domain(name, entry["price"], entry.get("category"), entry.get("description")))
    return found
