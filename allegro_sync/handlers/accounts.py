"""Accounts (design.md A1-A11): connecting, settings, switching off, deleting.

Pure decisions (``validate_patch``, ``account_json``) sit beside the functions that apply them in
one transaction. The admin API and the CLI both call these.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import asyncpg
import structlog
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    Strict,
    StrictBool,
    StringConstraints,
    ValidationError,
    WithJsonSchema,
    model_validator,
)

from allegro_sync.adapters.allegro.client import AllegroRestClient
from allegro_sync.adapters.allegro.crypto import TokenCipher
from allegro_sync.adapters.allegro.errors import AllegroError
from allegro_sync.adapters.allegro.oauth import TokenSet
from allegro_sync.adapters.allegro.offer_journal import OfferJournal
from allegro_sync.adapters.allegro.order_journal import (
    JournalStart,
    OrderJournal,
    read_journal_start,
)
from allegro_sync.adapters.allegro.tokens import store_tokens
from allegro_sync.adapters.broker.publisher import OutgoingMessage
from allegro_sync.adapters.broker.topology import EVENTS_EXCHANGE
from allegro_sync.adapters.postgres import accounts as store
from allegro_sync.adapters.postgres import catalog, event_log, journal_cursors, outbox
from allegro_sync.contract import ACCOUNT_DISABLED, AccountDisabled
from allegro_sync.handlers.account_options import validate_choices

log = structlog.get_logger(__name__)

SANDBOX_STOCK_WARNING = "stock control needs a production account"
# One address as an SMTP envelope and a To header take it (RFC 5322 addr-spec, dot-atom form):
# no display name, no comma or semicolon that would make it two, no blank or line break.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
EMAIL_PATTERN = rf"^{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*\.[A-Za-z]{{2,63}}$"

# orders_from (A9): Allegro's guaranteed order history, and the slack for clocks ahead of ours
ORDERS_FROM_HISTORY = timedelta(days=365)
ORDERS_FROM_AHEAD = timedelta(hours=1)

Email = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=254, pattern=EMAIL_PATTERN)
]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class AfterSales(BaseModel):
    """The after-sales conditions offers are listed with (A6)."""

    model_config = ConfigDict(extra="forbid")
    return_policy_id: Text | None = None
    implied_warranty_id: Text | None = None
    warranty_id: Text | None = None


class Address(BaseModel):
    """The seller's address / item location (A6)."""

    model_config = ConfigDict(extra="forbid")
    street: Text | None = None
    city: Text
    post_code: Annotated[str, StringConstraints(strip_whitespace=True, max_length=16)]
    province: Text | None = None
    country_code: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] = "PL"


class ShippingSender(BaseModel):
    """The sender printed on labels of parcels sent with Allegro, and the pickup address."""

    model_config = ConfigDict(extra="forbid")
    name: Text | None = None
    company: Text | None = None
    street: Text
    postal_code: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=16)
    ]
    city: Text
    country_code: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] = "PL"
    phone: Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^\+?[0-9 ]{6,20}$")]
    email: Email

    @model_validator(mode="after")
    def _named(self) -> ShippingSender:
        if not self.name and not self.company:
            raise ValueError("a sender needs a name or a company")
        return self


Size = Annotated[float, Strict(), Field(gt=0, le=1000)]


class DefaultPackage(BaseModel):
    """The package of a parcel whose request names none (centimetres, kilograms)."""

    model_config = ConfigDict(extra="forbid")
    type: Literal["PACKAGE", "DOX", "PALLET", "OTHER"] = "PACKAGE"
    length: Size
    width: Size
    height: Size
    weight: Size


class AccountPatch(BaseModel):
    """What ``PATCH /accounts/{id}`` accepts; unknown keys and wrong types are refused."""

    model_config = ConfigDict(extra="forbid")
    name: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
        | None
    ) = None
    active: StrictBool | None = None
    orders_from: AwareDatetime | None = None
    auto_create_orders: StrictBool | None = None
    send_order_emails: StrictBool | None = None
    bind_offers_by_ean: StrictBool | None = None
    stock_control: StrictBool | None = None
    raise_quantity_on_erp_sync: StrictBool | None = None
    auto_renew: StrictBool | None = None
    renew_with_current_price: StrictBool | None = None
    do_not_renew_default: StrictBool | None = None
    send_customer_card: StrictBool | None = None
    only_customers_with_nip: StrictBool | None = None
    sync_prices: StrictBool | None = None
    price_list: Text | None = None
    default_category_id: Text | None = None
    after_sales: AfterSales | None = None
    shipping_rates_id: Text | None = None
    address: Address | None = None
    extra_order_email_recipients: list[Email] | None = Field(default=None, max_length=20)
    order_message_channel: Literal["email", "message_centre"] | None = None
    mark_sent_on_tracking: StrictBool | None = None
    update_offers_from_products: StrictBool | None = None
    shipping_sender: ShippingSender | None = None
    default_package: DefaultPackage | None = None


NOT_NULLABLE = frozenset(
    name
    for name, field in AccountPatch.model_fields.items()
    if name
    not in {
        "orders_from",
        "default_category_id",
        "after_sales",
        "shipping_rates_id",
        "address",
        "shipping_sender",
        "default_package",
    }
)


class PatchError(Exception):
    """A refused change: ``status`` 422 (invalid) or 409 (not allowed now), with the field."""

    def __init__(self, status: int, field: str, detail: str) -> None:
        super().__init__(f"{field}: {detail}")
        self.status = status
        self.field = field
        self.detail = detail


def parse_patch(body: Any) -> dict[str, Any]:
    """Validate a PATCH body; the fields given (null allowed where a setting can be cleared)."""
    if not isinstance(body, dict) or not body:
        raise PatchError(422, "body", "expected a JSON object with at least one field")
    try:
        patch = AccountPatch.model_validate(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error["loc"]) or "body"
        message = "unknown field" if error["type"] == "extra_forbidden" else error["msg"]
        raise PatchError(422, field, message) from None
    given = patch.model_dump(include=set(body), mode="json")
    for name, value in given.items():
        if value is None and name in NOT_NULLABLE:
            raise PatchError(422, name, "may not be null")
    if "orders_from" in given and patch.orders_from is not None:
        given["orders_from"] = patch.orders_from
    return given


def check_orders_from(orders_from: datetime, now: datetime) -> None:
    """``orders_from`` within what Allegro can still give and not in the future.

    Allegro guarantees checkout forms of the last 12 months only (allegro-api.md 6.1): an
    earlier date would promise orders the backfill cannot read. A date in the future would
    silently hold back every order bought before it; ``ORDERS_FROM_AHEAD`` allows for clocks
    that disagree a little.
    """
    earliest = now - ORDERS_FROM_HISTORY
    if orders_from < earliest:
        raise PatchError(
            422,
            "orders_from",
            f"must be within the last {ORDERS_FROM_HISTORY.days} days (Allegro keeps orders "
            f"for 12 months): {earliest.date().isoformat()} or later",
        )
    if orders_from > now + ORDERS_FROM_AHEAD:
        raise PatchError(
            422,
            "orders_from",
            "must not be in the future: orders bought before it would never reach the ERP",
        )


def decide_changes(account: asyncpg.Record, given: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The columns to write for a validated patch, with the rules that depend on the account."""
    changes = dict(given)
    if "orders_from" in changes and not account["recently_added"]:
        raise PatchError(409, "orders_from", "can be set only within 7 days of adding the account")
    if changes.get("orders_from") is not None:
        check_orders_from(changes["orders_from"], now)
    if given.get("bind_offers_by_ean") and not account["bind_offers_by_ean"]:
        changes["bind_offers_by_ean_since"] = now  # O3: only events after this bind
    if given.get("sync_prices") and not account["sync_prices"]:
        changes["sync_prices_since"] = now  # P2: offers bound after this follow prices
    if given.get("active") is True and not account["active"]:
        changes["deactivation_reason"] = None
    if given.get("active") is False and account["active"]:
        changes["deactivation_reason"] = "deactivated by the user"
    return changes


def _iso(value: datetime) -> str:
    return value.isoformat()


# A timestamp in the account view: ISO 8601 with its offset, as ``datetime.isoformat`` writes it.
Timestamp = Annotated[
    datetime,
    PlainSerializer(_iso, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class AccountView(BaseModel):
    """The public representation of an account (design.md section 4); never any token. The
    admin API and the CLI answer with it, and the admin OpenAPI document's ``Account`` schema
    is made from it (``daemon/api/openapi.py``)."""

    model_config = ConfigDict(extra="forbid", title="Account")

    id: int
    allegro_user_id: str
    login: str
    name: str
    sandbox: bool
    active: bool
    deactivation_reason: str | None
    created_at: Timestamp
    warnings: list[str]
    orders_from: Timestamp | None
    orders_from_editable: bool
    auto_create_orders: bool
    send_order_emails: bool
    bind_offers_by_ean: bool
    stock_control: bool
    raise_quantity_on_erp_sync: bool
    auto_renew: bool
    renew_with_current_price: bool
    do_not_renew_default: bool
    send_customer_card: bool
    only_customers_with_nip: bool
    sync_prices: bool
    price_list: str
    default_category_id: str | None
    after_sales: dict[str, Any]
    shipping_rates_id: str | None
    address: dict[str, Any] | None
    extra_order_email_recipients: list[str]
    allowed_extra_emails: list[str]
    order_message_channel: Literal["email", "message_centre"]
    mark_sent_on_tracking: bool
    update_offers_from_products: bool
    shipping_sender: dict[str, Any] | None
    default_package: dict[str, Any] | None


def account_json(row: asyncpg.Record) -> dict[str, Any]:
    """The account's ``AccountView`` as JSON values."""
    warnings = [SANDBOX_STOCK_WARNING] if row["sandbox"] else []
    after_sales = row["after_sales"] or {
        "return_policy_id": None,
        "implied_warranty_id": None,
        "warranty_id": None,
    }
    view = AccountView(
        id=row["id"],
        allegro_user_id=row["allegro_user_id"],
        login=row["login"],
        name=row["name"],
        sandbox=row["sandbox"],
        active=row["active"],
        deactivation_reason=row["deactivation_reason"],
        created_at=row["created_at"],
        warnings=warnings,
        orders_from=row["orders_from"],
        orders_from_editable=bool(row["recently_added"]),
        auto_create_orders=row["auto_create_orders"],
        send_order_emails=row["send_order_emails"],
        bind_offers_by_ean=row["bind_offers_by_ean"],
        stock_control=row["stock_control"],
        raise_quantity_on_erp_sync=row["raise_quantity_on_erp_sync"],
        auto_renew=row["auto_renew"],
        renew_with_current_price=row["renew_with_current_price"],
        do_not_renew_default=row["do_not_renew_default"],
        send_customer_card=row["send_customer_card"],
        only_customers_with_nip=row["only_customers_with_nip"],
        sync_prices=row["sync_prices"],
        price_list=row["price_list"],
        default_category_id=row["default_category_id"],
        after_sales=after_sales,
        shipping_rates_id=row["shipping_rates_id"],
        address=row["address"],
        extra_order_email_recipients=list(row["extra_order_email_recipients"]),
        allowed_extra_emails=list(row["allowed_extra_emails"]),
        order_message_channel=row["order_message_channel"],
        mark_sent_on_tracking=row["mark_sent_on_tracking"],
        update_offers_from_products=row["update_offers_from_products"],
        shipping_sender=row["shipping_sender"],
        default_package=row["default_package"],
    )
    return view.model_dump(mode="json")


async def order_journal_start(
    allegro: AllegroRestClient, *, sandbox: bool, access_token: str
) -> JournalStart | None:
    """The order journal's latest event now, for an account being connected (None when
    Allegro does not say: the journal then starts at its first read, and the order sweep,
    which starts at the connection, covers a purchase made in between)."""
    try:
        return await read_journal_start(allegro, sandbox=sandbox, access_token=access_token)
    except AllegroError as exc:
        log.warning("order_journal_start_unknown", error=str(exc))
        return None


def account_email(me: Mapping[str, Any]) -> str | None:
    """The account's main e-mail address in a ``GET /me`` answer (None when it gives none)."""
    email = me.get("email")
    if not isinstance(email, str) or not email.strip():
        return None
    return email.strip()


async def connect_account(
    conn: asyncpg.Connection,
    cipher: TokenCipher,
    *,
    allegro_user_id: str,
    login: str,
    sandbox: bool,
    tokens: TokenSet,
    order_journal: JournalStart | None = None,
    email: str | None = None,
) -> tuple[int, bool]:
    """Store a newly authorised account or reconnect (and reactivate) an existing one.

    ``order_journal`` (read with the new token before this transaction) is where its order
    journal starts, stored with the account: a purchase made between connecting and the
    poller's first read is not skipped; its offer journal starts at the oldest retained event,
    as read now (``journal_cursors.read_at``). A reconnected account keeps the cursors it has
    and goes on from where it stopped (purchases made while it was off become orders, README "Orders
    while an account is off"). ``email`` (``GET /me``) is the From of its ``order.message``
    e-mails.
    """
    account_id, created = await store.upsert_connected(
        conn, allegro_user_id=allegro_user_id, sandbox=sandbox, login=login, email=email
    )
    await store_tokens(conn, cipher, account_id, tokens)
    read_at = None
    if order_journal is not None:
        read_at = order_journal.read_at
        await journal_cursors.start(
            conn, account_id, OrderJournal.name, order_journal.event_id, read_at
        )
    # the offer journal starts at its oldest retained event, read as of now (Allegro's time of
    # the order journal's start): a daemon offline for longer than the journal keeps before
    # its first poll still sees the gap (issue 18)
    await journal_cursors.start(conn, account_id, OfferJournal.name, None, read_at)
    await event_log.write(
        conn,
        account_id,
        "accounts",
        "info",
        "account_connected" if created else "account_reconnected",
        f"Allegro account {login} {'connected' if created else 'reconnected and activated'}"
        + (" (sandbox)" if sandbox else ""),
    )
    return account_id, created


async def disable_account(conn: asyncpg.Connection, account_id: int, reason: str) -> bool:
    """Switch the account off because its tokens died or the seller is blocked (A10).

    Writes the event-log entries (accounts, and ``account_deactivated`` in offers) and
    announces ``account.disabled``; a second call for the same outage changes nothing.
    """
    row = await store.deactivate(conn, account_id, reason)
    if row is None:
        return False
    await event_log.write(
        conn, account_id, "accounts", "error", "account_disabled", f"Account switched off: {reason}"
    )
    await event_log.write(
        conn,
        account_id,
        "offers",
        "warning",
        "account_deactivated",
        "Account deactivated: offers are not synchronised until it is connected again",
    )
    await outbox.enqueue(
        conn,
        OutgoingMessage(
            exchange=EVENTS_EXCHANGE,
            routing_key=ACCOUNT_DISABLED,
            message_id=f"account.disabled:{account_id}:{row['at']}",
            payload=AccountDisabled(
                account_id=account_id, login=row["login"], reason=reason
            ).body(),
        ),
    )
    return True


async def record_refusal(
    conn: asyncpg.Connection,
    account_id: int,
    category: event_log.Category,
    action: str,
    message: str,
    trace_id: str | None,
) -> None:
    """Allegro refused an action of an account that stays on (A10): say so at the attempt."""
    await event_log.write(
        conn,
        account_id,
        category,
        "error",
        "allegro_refused",
        f"Allegro refused to {action}" + (f": {message}" if message else ""),
        details={"action": action, "trace_id": trace_id},
    )


async def change_settings(
    pool: asyncpg.Pool, allegro: AllegroRestClient, account_id: int, body: Any
) -> asyncpg.Record:
    """Validate and apply a settings change (API ``PATCH`` and CLI ``set`` alike).

    Choices that must exist on Allegro are checked before any row is locked.
    """
    given = parse_patch(body)
    async with pool.acquire() as conn:
        if await store.get(conn, account_id) is None:
            raise PatchError(404, "id", f"account {account_id} does not exist")
    problem = await validate_choices(allegro, account_id, given)
    if problem is not None:
        raise PatchError(422, *problem)
    async with pool.acquire() as conn, conn.transaction():
        account = await store.get(conn, account_id, for_update=True)
        if account is None:
            raise PatchError(404, "id", f"account {account_id} does not exist")
        if "price_list" in given and not await catalog.price_list_exists(conn, given["price_list"]):
            raise PatchError(422, "price_list", f"unknown price list {given['price_list']!r}")
        changes = decide_changes(account, given, datetime.now(UTC))
        await store.update(conn, account_id, changes)
        await event_log.write(
            conn,
            account_id,
            "accounts",
            "info",
            "settings_changed",
            "Settings changed: " + ", ".join(sorted(given)),
            details={"fields": sorted(given)},
        )
        updated = await store.get(conn, account_id)
    assert updated is not None
    return updated


async def delete_account(conn: asyncpg.Connection, account_id: int) -> None:
    """Delete the account (A4), refused while any of its offers is bound to a product."""
    if await store.get(conn, account_id, for_update=True) is None:
        raise PatchError(404, "id", f"account {account_id} does not exist")
    bound = await store.count_bound_offers(conn, account_id)
    if bound:
        raise PatchError(
            409,
            "id",
            f"the account has {bound} offer{'s' if bound != 1 else ''} bound to products;"
            " unbind them before deleting the account",
        )
    await store.delete(conn, account_id)
