"""The command line's money parts: ``kopechka sweep``, ``buy --max-price``, and exits on signals.

Kept apart from ``_cli`` (parsing, output, exit codes) so that each side stays small; ``_cli`` calls
``add_options``, ``guard``, ``stopped_line`` and the ``sweep`` handler. It must not be imported by
``kopechka/__init__``.
"""

from __future__ import annotations

import argparse
import contextlib
import threading
from collections.abc import Sequence
from contextlib import AbstractContextManager
from decimal import Decimal
from typing import Any

from ._client import KopechkaClient
from ._format import inert, money, order_rows, to_json
from ._mail import Mailbox
from ._money import SweepReport, check_cap
from ._settings import seconds_argument
from ._signals import Terminated, exit_on_signals

__all__ = ["add_options", "guard", "stopped_line", "sweep"]


_seconds = seconds_argument()


def _amount(raw: str) -> Decimal:
    try:
        cap = check_cap("--max-price", raw)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    assert cap is not None
    return cap


def add_options(
    sub: Any, common: Sequence[argparse.ArgumentParser], buy: argparse.ArgumentParser
) -> None:
    """Add ``sweep`` to the subcommands and ``--max-price`` to ``buy``."""
    buy.add_argument(
        "--max-price", type=_amount, metavar="AMOUNT",
        help="refuse a domain listed above AMOUNT (a higher charge is cancelled and refunded)",
    )  # fmt: skip
    text = "cancel unused orders (no mail, older than --older-than): a dry run unless --commit"
    parser = sub.add_parser("sweep", parents=common, help=text, description=text)
    parser.add_argument(
        "--older-than", type=_seconds, default=300.0, metavar="SECONDS",
        help="only orders created at least SECONDS ago (default 300)",
    )  # fmt: skip
    parser.add_argument("--commit", action="store_true", help="cancel them (default: only list)")


def sweep(client: KopechkaClient, a: argparse.Namespace) -> tuple[object, str]:
    """The ``sweep`` command: run it, and set exit code 1 when something failed."""
    report = client.sweep(older_than=a.older_than, dry_run=not a.commit)
    if report.failed:
        a.exit_code = 1
    return report_json(report, a.older_than), report_text(report, a.older_than)


def report_json(report: SweepReport, older_than: float) -> dict[str, Any]:
    """The one JSON shape of ``kopechka sweep --json``."""
    return {
        "dry_run": report.dry_run,
        "older_than": older_than,
        "cancelled": to_json(report.cancelled),
        "refunded": money(report.refunded),
        "kept": to_json(report.kept),
        "failed": [
            {"order": to_json(order), "error": f"{type(error).__name__}: {inert(str(error))}"}
            for order, error in report.failed
        ],
    }


def report_text(report: SweepReport, older_than: float) -> str:
    """``kopechka sweep`` for people: what was (or would be) cancelled, kept, and what failed."""
    verb = "to cancel (dry run: --commit cancels them)" if report.dry_run else "cancelled"
    parts = [f"{verb}: {len(report.cancelled)}"]
    if report.cancelled:
        parts.append(order_rows(report.cancelled))
    parts.append(f"kept (with mail, or younger than {older_than:g} s): {len(report.kept)}")
    if report.failed:
        parts.append(f"failed: {len(report.failed)}")
        parts += [
            f"{order.order_id}  {type(error).__name__}: {inert(str(error))}"
            for order, error in report.failed
        ]
    refund = "would refund" if report.dry_run else "refunded"
    parts.append(f"{refund}: {money(report.refunded)}")
    return "\n".join(parts)


def guard() -> AbstractContextManager[object]:
    """SIGTERM and SIGHUP unwind the command as Ctrl-C does (only the main thread has signals)."""
    if threading.current_thread() is threading.main_thread():
        return exit_on_signals()
    return contextlib.nullcontext()


def stopped_line(stop: Terminated | str, a: argparse.Namespace) -> str:
    """The one line a command ends with on a signal (a timeout, Ctrl-C), saying what became of
    a bought order."""
    box: Mailbox | None = getattr(a, "mailbox", None)
    if box is None:
        return str(stop)
    if box.cancellation is not None:
        what = f"order {box.order_id} cancelled, {money(box.cancellation.refund_amount)} refunded"
    elif box.cancel_error is not None:
        error = inert(str(box.cancel_error))
        what = f"order {box.order_id} NOT refunded ({error}): run kopechka sweep"
    else:
        what = f"order {box.order_id} kept"
    return f"{stop}; {what}"
