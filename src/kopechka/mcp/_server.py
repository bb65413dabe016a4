"""The MCP face of a ``Session``: tools, resources and a prompt on the SDK's ``MCPServer``.

Owns the protocol surface only: each tool is a thin adapter that checks nothing the session or the
client's ledger does not, runs the session's blocking call in a worker thread, and turns its dict
into a result (structured content plus the same as JSON text) or its ``RefusalError`` into an error
result of one sentence. Input schemas are flat (no ``anyOf``/``oneOf``) and refuse unknown
arguments (``additionalProperties: false``); every tool carries annotations that say what it does.
It must not decide anything about money, and nothing it returns carries the key or a header.
"""

from __future__ import annotations

import functools
import json
import os
import weakref
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

import anyio.to_thread
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.tools import Tool
from mcp.shared.exceptions import NoBackChannelError
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema

from .._client import KopechkaClient
from .._format import inert
from .._version import __version__
from ._journal import Journal, scrubbed
from ._options import Guards
from ._session import MAX_WAIT, MIN_SWEEP_AGE, RefusalError, Session

__all__ = ["create_server", "session_of", "shutdown"]

_SESSIONS: weakref.WeakKeyDictionary[MCPServer[Any], Session] = weakref.WeakKeyDictionary()

INSTRUCTIONS = (
    "Disposable e-mail addresses for sign-ups, under spend guards set by the operator. Flow: "
    "list_domains, quote_address(domain, site), show the user the price, "
    "buy_address(confirmation_id), use the e-mail on the site, wait_for_code(order_id) until it "
    "returns a code (no_mail_yet is not a failure: call it again, never buy a second address "
    "for it). A refused call is final: tell the user what it says."
)

FLOW = """# Kopechka: signing up with a disposable address

1. `list_domains`: the domains on sale, their prices, and which the operator allows.
2. `quote_address(domain, site)`: the price, the guards' verdict and a `confirmation_id`
   (short-lived, bound to that domain, site and price).
3. Show the user the price; `buy_address(confirmation_id)` buys it (the user approves it when the
   operator asks for approval). You get `order_id` and `email`.
4. Enter the e-mail on the site, then `wait_for_code(order_id)`. `no_mail_yet` is not a failure:
   call it again with the same `order_id`. Never buy a second address for the same sign-up.
5. Unused? `cancel_order(order_id)` refunds it (orders without mail are refunded on shutdown too).

A refusal is one sentence: tell the user what it says and do not retry with other arguments.
"""


# --- results ----------------------------------------------------------------------------------


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BalanceOut(_Out):
    balance: str = Field(description="The account's balance, as the server writes it.")


class DomainOut(_Out):
    name: str
    price: str
    allowed: bool = Field(description="Whether the operator's guards allow buying on it.")


class DomainsOut(_Out):
    domains: list[DomainOut]


class OrderOut(_Out):
    order_id: str
    email: str
    domain: str
    site: str
    status: str
    price: str
    created_at: str
    end_time: str | None


class OrdersOut(_Out):
    orders: list[OrderOut]
    page: int
    pages: int
    total: int


class QuoteOut(_Out):
    confirmation_id: str | None = Field(description="Pass it to buy_address; null when refused.")
    price: str | None
    allowed: bool
    reason: str | None = Field(description="Why the guards refuse it, when they do.")
    budget_left: str | None


class BoughtOut(_Out):
    order_id: str
    email: str
    price: str


class MessageOut(_Out):
    id: str
    sender: str
    subject: str
    received_at: str
    content: str | None = Field(description="The body, only when asked for.")


class WaitOut(_Out):
    status: Literal["code", "message", "no_mail_yet", "order_closed"]
    code: str | None
    message: MessageOut | None
    messages_seen: int
    next_step: str


class MessagesOut(_Out):
    order_id: str
    status: str
    messages: list[MessageOut]


class CancelOut(_Out):
    order_id: str
    refunded: str


class SweepOut(_Out):
    dry_run: bool
    cancelled: int
    refunded: str
    kept: int
    failed: int


def _result(data: dict[str, Any]) -> CallToolResult:
    """The one builder of what a tool returns: scrubbed of the key (a server may name an order by
    it), as structured content and the same as JSON text."""
    data = scrubbed(data)
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=data)


def _refused(sentence: str) -> CallToolResult:
    text = scrubbed(sentence)
    return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)


async def _run(call: Callable[[], dict[str, Any]]) -> CallToolResult:
    """Run a session call in a worker thread (abandoned on cancel: waits watch ``stop``)."""
    try:
        return _result(await anyio.to_thread.run_sync(call, abandon_on_cancel=True))
    except RefusalError as refusal:
        return _refused(str(refusal))


_SDK_PREFIX = "Error executing tool "


def _argument_sentence(tool: str, text: str) -> str:
    """The SDK's argument-validation error (several lines) as one sentence naming the fields."""
    lines = text.splitlines()[1:]
    problems = []
    for field_name, why in zip(lines[::2], lines[1::2], strict=False):
        reason = why.strip().split(" [type=")[0].rstrip(".")
        problems.append(f"{field_name.strip()}: {reason}")
    detail = "; ".join(problems[:5]) or "they do not fit its schema"
    return (
        f"The arguments of {tool} were refused ({inert(detail)[:400]}); call it with only the "
        "arguments its schema lists, within their bounds."
    )


async def _one_sentence(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
    """Argument errors, which the SDK writes over several lines, become one sentence."""
    result = await call_next(ctx)
    if ctx.method != "tools/call" or not isinstance(result, dict) or not result.get("isError"):
        return result
    content = result.get("content")
    block = content[0] if isinstance(content, list) and content else None
    text = block.get("text") if isinstance(block, dict) else None
    if not isinstance(text, str) or not text.startswith(_SDK_PREFIX):
        return result
    tool = text[len(_SDK_PREFIX) :].split(":", 1)[0]
    if "validation error" in text.split("\n", 1)[0]:
        said = _argument_sentence(tool, text)
    else:  # a failure of our own: the SDK keeps its text on the server
        said = f"{tool} failed unexpectedly; tell the user, and do not retry with other arguments."
    sentence = {"type": "text", "text": said}
    return {**result, "content": [sentence]}


# --- schemas ----------------------------------------------------------------------------------


class _FlatSchema(GenerateJsonSchema):
    """Optional arguments as their own type (no ``anyOf`` with null), without a null default."""

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        result = super().default_schema(schema)
        if result.get("default", 0) is None:
            result.pop("default")
        return result


def _tool(fn: Callable[..., Awaitable[Any]], annotations: ToolAnnotations) -> Tool:
    """A tool whose arguments refuse unknown names, with a flat input schema."""
    tool = Tool.from_function(
        fn, name=fn.__name__, title=annotations.title, annotations=annotations,
        structured_output=True,
    )  # fmt: skip
    strict = _forbid_extra(tool.fn_metadata.arg_model)
    tool.fn_metadata.arg_model = strict
    tool.parameters = strict.model_json_schema(by_alias=True, schema_generator=_FlatSchema)
    return tool


def _forbid_extra(model: type[BaseModel]) -> Any:
    strict = create_model(model.__name__, __base__=model)
    strict.model_config["extra"] = "forbid"
    strict.model_rebuild(force=True)
    return strict


def _hints(
    title: str, *, read_only: bool, idempotent: bool, destructive: bool = False
) -> ToolAnnotations:
    return ToolAnnotations(
        title=title, read_only_hint=read_only, destructive_hint=destructive,
        idempotent_hint=idempotent, open_world_hint=True,
    )  # fmt: skip


# --- tools ------------------------------------------------------------------------------------

OrderId = Annotated[str, Field(min_length=1, max_length=200, description="From buy_address.")]
Timeout = Annotated[
    float, Field(gt=0, le=MAX_WAIT, description=f"Seconds to wait, at most {MAX_WAIT:.0f}.")
]


def _reads(session: Session) -> list[Tool]:
    async def get_balance() -> Annotated[CallToolResult, BalanceOut]:
        """The Kopechka account's balance."""
        return await _run(session.balance)

    async def list_domains() -> Annotated[CallToolResult, DomainsOut]:
        """The domains on sale, their prices, and whether the operator allows buying on each."""
        return await _run(session.domains)

    async def list_orders(
        status: Annotated[str | None, Field(max_length=40, description="e.g. active")] = None,
        page: Annotated[int, Field(ge=1, le=10_000)] = 1,
    ) -> Annotated[CallToolResult, OrdersOut]:
        """The orders this session bought (newest first, 20 a page)."""
        return await _run(functools.partial(session.list_orders, status, page))

    async def get_order(order_id: OrderId) -> Annotated[CallToolResult, OrderOut]:
        """One order this session bought, as the server has it now."""
        return await _run(functools.partial(session.get_order, order_id))

    read = _hints("", read_only=True, idempotent=True)
    return [
        _tool(get_balance, read.model_copy(update={"title": "Balance"})),
        _tool(list_domains, read.model_copy(update={"title": "Domains on sale"})),
        _tool(list_orders, read.model_copy(update={"title": "This session's orders"})),
        _tool(get_order, read.model_copy(update={"title": "One order"})),
    ]


class Approval(BaseModel):
    """What the user is asked before a live purchase."""

    approve: bool = Field(description="Buy this address?")


async def _approved(
    ctx: Context[Any, Any], session: Session, summary: str, said: bool
) -> str | None:
    """``None`` when the user approved the purchase, else the sentence of the refusal."""
    if not session.guards.confirm:
        return None
    caps = ctx.client_capabilities
    if caps is not None and caps.elicitation is not None and ctx.session.can_send_request:
        try:
            answer = await ctx.elicit(f"Approve this purchase? {summary}", schema=Approval)
        except (NoBackChannelError, RuntimeError, ValueError, ValidationError):
            answer = None
        if answer is not None:
            if answer.action == "accept" and answer.data.approve:
                return None
            return "The user did not approve this purchase, so nothing was bought; do not retry."
    if said:
        return None
    return (
        f"This purchase needs the user's approval: show the user {summary} and call buy_address "
        "again with user_approved=true only if they agree; nothing was bought."
    )


def _money_tools(session: Session) -> list[Tool]:
    async def quote_address(
        domain: Annotated[
            str, Field(min_length=1, max_length=253, description="From list_domains.")
        ],
        site: Annotated[str, Field(min_length=1, max_length=253, description="e.g. github.com")],
    ) -> Annotated[CallToolResult, QuoteOut]:
        """The dry run of a purchase: the price, whether the guards allow it (and why not), the
        budget left, and a short-lived confirmation_id for buy_address. Buys nothing."""
        return await _run(functools.partial(session.quote, domain, site))

    async def buy_address(
        ctx: Context[Any, Any],
        confirmation_id: Annotated[str, Field(min_length=1, max_length=100)],
        user_approved: Annotated[
            bool, Field(description="True only if the user approved this quote's price.")
        ] = False,
    ) -> Annotated[CallToolResult, BoughtOut]:
        """Buy the address quoted by quote_address (once per quote). Spends money: a refusal is
        final, tell the user. Returns the order_id and the e-mail address to sign up with."""
        try:  # a quote the user has not approved yet stays usable
            quote = session.take_quote(confirmation_id, keep=True)
            summary = f"a {quote.domain} address for {quote.site} at {quote.price}"
            sentence = await _approved(ctx, session, summary, user_approved)
            if sentence is not None:
                return _refused(sentence)
            quote = session.take_quote(confirmation_id)
        except RefusalError as refused:
            return _refused(str(refused))
        return await _run(functools.partial(session.buy, quote))

    async def cancel_order(order_id: OrderId) -> Annotated[CallToolResult, CancelOut]:
        """Cancel an order this session bought: refunded in full if it received no mail."""
        return await _run(functools.partial(session.cancel, order_id))

    async def sweep(
        dry_run: bool = True,
        older_than: Annotated[
            float,
            Field(
                ge=MIN_SWEEP_AGE,
                le=86_400,
                description=f"Seconds, at least {MIN_SWEEP_AGE:.0f}: younger orders may be in use.",
            ),
        ] = 300.0,
    ) -> Annotated[CallToolResult, SweepOut]:
        """Find (dry_run=true, the default) or cancel the account's unused orders older than
        older_than seconds (at least 300): how lost purchase answers get their money back. This
        session's own orders are never swept (cancel_order them); younger orders may be another
        sign-up still waiting for mail, so they are left alone."""
        return await _run(functools.partial(session.sweep, dry_run, older_than))

    return [
        _tool(quote_address, _hints("Quote an address", read_only=True, idempotent=False)),
        _tool(buy_address, _hints("Buy an address", read_only=False, idempotent=False)),
        _tool(
            cancel_order,
            _hints("Cancel (refund) an order", read_only=False, idempotent=True, destructive=True),
        ),
        _tool(
            sweep,
            _hints("Sweep unused orders", read_only=False, idempotent=False, destructive=True),
        ),
    ]


def _mail_tools(session: Session) -> list[Tool]:
    async def wait_for_code(
        order_id: OrderId, timeout: Timeout = 30.0
    ) -> Annotated[CallToolResult, WaitOut]:
        """Wait for the verification code. Returns data, never an error, for "code", "no mail yet"
        (call again with the same order_id; never buy another address for it) and "order closed"."""
        return await _run(functools.partial(session.wait, order_id, timeout, code=True))

    async def wait_for_message(
        order_id: OrderId,
        timeout: Timeout = 30.0,
        subject: Annotated[str | None, Field(max_length=200)] = None,
        sender: Annotated[str | None, Field(max_length=200)] = None,
    ) -> Annotated[CallToolResult, WaitOut]:
        """Wait for a message (optionally by subject or sender text). "no mail yet" is data, not
        an error: call again with the same order_id."""
        call = functools.partial(
            session.wait, order_id, timeout, code=False, subject=subject, sender=sender
        )
        return await _run(call)

    async def get_messages(
        order_id: OrderId, include_body: bool = False
    ) -> Annotated[CallToolResult, MessagesOut]:
        """The mail an order received; the bodies only with include_body=true."""
        return await _run(functools.partial(session.messages, order_id, include_body))

    read = _hints("", read_only=True, idempotent=True)
    return [
        _tool(wait_for_code, read.model_copy(update={"title": "Wait for a code"})),
        _tool(wait_for_message, read.model_copy(update={"title": "Wait for a message"})),
        _tool(get_messages, read.model_copy(update={"title": "An order's mail"})),
    ]


# --- the server -------------------------------------------------------------------------------


def _resources(server: MCPServer[Any], session: Session) -> None:
    def as_json(read: Callable[[], dict[str, Any]]) -> Callable[[], str]:
        def text() -> str:
            return json.dumps(scrubbed(read()), ensure_ascii=False)

        return text

    spend = "Bought, refunded, open, unknown (lost answers, counted as spent), budget left."
    server.resource("kopechka://spend", name="spend", mime_type="application/json",
                    description=spend)(as_json(session.spend))  # fmt: skip
    server.resource("kopechka://orders/active", name="active-orders",
                    mime_type="application/json",
                    description="This session's orders not known to be closed.",
                    )(as_json(session.active))  # fmt: skip

    def flow() -> str:
        return FLOW

    how = "How to sign up with a disposable address, step by step."
    server.resource("kopechka://docs/flow", name="flow", mime_type="text/markdown",
                    description=how)(flow)  # fmt: skip

    def sign_up_with_disposable_address(site: str) -> str:
        return (
            f"Sign up on {site} with a disposable e-mail address from Kopechka. {FLOW}\n"
            f"Start with list_domains, then quote_address for site {site!r}."
        )

    server.prompt(
        name="sign_up_with_disposable_address", title="Sign up with a disposable address",
        description="The steps to sign up on a site with a disposable address, within the guards.",
    )(sign_up_with_disposable_address)  # fmt: skip


def create_server(
    client: KopechkaClient,
    guards: Guards,
    *,
    journal: str | os.PathLike[str] | Journal | None = None,
) -> MCPServer[Any]:
    """Make the ``kopechka`` MCP server over ``client``, under the operator's ``guards``.

    Serve it with the SDK (``server.run("stdio")``, ``server.streamable_http_app()``, or an
    in-memory ``mcp.Client(server)`` in tests); call ``shutdown(server)`` when it stops, to refund
    the orders it bought that received no mail.

    Args:
        client: The client its tools use, made with ``budget=guards.budget`` (the ledger enforces
            the budget and counts lost purchase answers as spent).
        guards: What the operator allows.
        journal: A file to append purchases, refunds and lost answers to (JSON lines).

    Returns:
        The server; ``serverInfo`` carries kopechka's version.

    Raises:
        ValueError: The client's budget is not ``guards.budget``.
        OSError: The journal cannot be opened.
    """
    if journal is not None and not isinstance(journal, Journal):
        journal = Journal(journal)
    session = Session(client, guards, journal)
    tools = _reads(session) + _money_tools(session) + _mail_tools(session)
    server: MCPServer[Any] = MCPServer(
        "kopechka", title="Kopechka disposable e-mail", version=__version__,
        instructions=INSTRUCTIONS, tools=tools, log_level="WARNING", middleware=[_one_sentence],
    )  # fmt: skip
    _resources(server, session)
    _SESSIONS[server] = session
    return server


def session_of(server: MCPServer[Any]) -> Session:
    """The session behind a server made by ``create_server``."""
    return _SESSIONS[server]


def shutdown(server: MCPServer[Any], limit: float = 1.8) -> dict[str, int]:
    """Refund, in parallel and within about ``limit`` seconds, every order the server bought that
    received no mail; later purchases are refused.

    Args:
        server: A server made by ``create_server``.
        limit: Seconds the refunds may take in all.

    Returns:
        Counts: ``refunded``, ``kept`` (mail came, or already closed), ``failed``.
    """
    return _SESSIONS[server].shutdown(limit)
