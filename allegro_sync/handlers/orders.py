"""Orders (design.md O1, O4): paid purchases become ERP orders, exactly once.

An order event only says that something happened to a checkout form; the form itself, read
fresh from Allegro, is the truth (events may be duplicated, reordered or repeated). The handler
stores the form and its lines and decides from the stored state and the account's settings:

- ``order.created`` goes out once per checkout form for ever (message id
  ``order.created:<checkout_form_id>``, and ``orders.announced_at`` set in the same transaction),
  when the account creates orders automatically, the form is READY_FOR_PROCESSING (paid online, or
  cash on delivery) and it was bought at or after the account's orders-from date.
- ``order.cancelled`` goes out once, for an announced order whose form became CANCELLED.
- Merged checkout forms: when a buyer pays several purchases at once, Allegro creates a new form
  carrying the same line items (same line-item ids). Rule: a line item belongs to one order. The
  new form takes the lines over and the old forms are marked ``superseded_by`` it; a superseded
  form is never announced, and a form whose line items were already announced with another order
  is not announced again (an event-log warning says so).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import structlog
from pydantic import BaseModel, ConfigDict, Field

from allegro_sync.adapters.allegro.checkout_forms import read_checkout_forms
from allegro_sync.adapters.allegro.client import AllegroRestClient
from allegro_sync.adapters.allegro.errors import AllegroNotFound
from allegro_sync.adapters.broker.consumer import Route
from allegro_sync.adapters.broker.publisher import ConfirmingPublisher, OutgoingMessage
from allegro_sync.adapters.broker.topology import EVENTS_EXCHANGE, JOURNAL_EXCHANGE
from allegro_sync.adapters.postgres import outbox
from allegro_sync.handlers import event_log
from allegro_sync.handlers.customers import (
    card_from_checkout_form,
    card_payload,
    decide_customer,
    upsert_customer,
)
from allegro_sync.handlers.order_mails import queue_order_mail

log = structlog.get_logger(__name__)

READY = "READY_FOR_PROCESSING"
CANCELLED = "CANCELLED"
CASH_ON_DELIVERY = "CASH_ON_DELIVERY"


# --- messages -------------------------------------------------------------------------------


class _Loose(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class _FormRef(_Loose):
    id: uuid.UUID


class _OfferRef(_Loose):
    id: str


class _EventLine(_Loose):
    offer: _OfferRef


class _EventOrder(_Loose):
    checkout_form: _FormRef = Field(alias="checkoutForm")
    line_items: list[_EventLine] = Field(default_factory=list, alias="lineItems")


class OrderEvent(_Loose):
    """An entry of ``GET /order/events`` (only what the handler relies on is checked)."""

    id: str
    occurred_at: datetime = Field(alias="occurredAt")
    type: str
    order: _EventOrder


class OrderEventMessage(_Loose):
    """``allegro.order_event``, as the order journal poller publishes it: with the checkout form
    read for the page (on the form's last event of the page), or marked as covered by a later
    event of the same page."""

    account_id: int
    event: OrderEvent
    form: dict[str, Any] | None = None
    form_read_at: datetime | None = None
    covered_by_later_event: bool = False


class OrderBackfillMessage(_Loose):
    """``allegro.order_backfill``: a checkout form found by the orders-from backfill, with the
    form as the listing showed it (the handler need not read it again)."""

    account_id: int
    checkout_form_id: uuid.UUID
    form: dict[str, Any] | None = None
    form_read_at: datetime | None = None


@dataclass(frozen=True)
class PreparedOrder:
    """A message with the checkout form read from Allegro (None: nothing to do)."""

    account_id: int
    checkout_form_id: uuid.UUID
    form: Mapping[str, Any] | None
    read_at: datetime
    event_id: str | None = None
    occurred_at: datetime | None = None
    offer_ids: tuple[str, ...] = ()


# --- pure decisions -------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderDecision:
    """What to announce for a checkout form."""

    announce: bool
    cancel: bool
    reason: str


def bought_at(form: Mapping[str, Any]) -> datetime | None:
    """When the purchase was made: the earliest line item's ``boughtAt``."""
    times = [_parse_time(i.get("boughtAt")) for i in form.get("lineItems") or []]
    found = [t for t in times if t is not None]
    return min(found) if found else None


def is_paid_or_cod(form: Mapping[str, Any]) -> bool:
    """Ready to ship: paid online, or cash on delivery (O1)."""
    payment = form.get("payment") or {}
    if payment.get("type") == CASH_ON_DELIVERY:
        return True
    return bool(payment.get("paidAmount")) or bool(payment.get("finishedAt"))


def decide_order(
    form: Mapping[str, Any],
    *,
    auto_create_orders: bool,
    orders_from: datetime | None,
    announced: bool,
    cancelled: bool,
    superseded: bool,
    lines_announced_elsewhere: bool,
) -> OrderDecision:
    """Announce, cancel, or neither, for the form as it is now."""
    status = form.get("status")
    if status == CANCELLED:
        if announced and not cancelled:
            return OrderDecision(False, True, "cancelled by the buyer or Allegro")
        return OrderDecision(False, False, "cancelled before it was sent")
    if announced:
        return OrderDecision(False, False, "already sent")
    if superseded:
        return OrderDecision(False, False, "superseded by a merged checkout form")
    if lines_announced_elsewhere:
        return OrderDecision(False, False, "its line items were already sent with another order")
    if not auto_create_orders:
        return OrderDecision(False, False, "automatic order creation is off")
    if status != READY or not is_paid_or_cod(form):
        return OrderDecision(False, False, "not paid yet")
    when = bought_at(form)
    if orders_from is not None and (when is None or when < orders_from):
        return OrderDecision(False, False, "bought before the account's orders-from date")
    return OrderDecision(True, False, "ready for processing")


def order_created_payload(
    account: Mapping[str, Any],
    form: Mapping[str, Any],
    lines: Sequence[Mapping[str, Any]],
    customer: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The ``order.created`` body of the contract (design.md section 4)."""
    payment = form.get("payment") or {}
    delivery = form.get("delivery") or {}
    total = (form.get("summary") or {}).get("totalToPay") or {}
    when = bought_at(form)
    return {
        "checkout_form_id": str(form["id"]),
        "account_id": account["id"],
        "account_login": account["login"],
        "status": form.get("status"),
        "bought_at": when.isoformat() if when else None,
        "currency": total.get("currency"),
        "total": total.get("amount"),
        "payment": {
            "type": payment.get("type"),
            "paid_at": payment.get("finishedAt"),
            "amount": (payment.get("paidAmount") or {}).get("amount"),
        },
        "delivery": {
            "method": (delivery.get("method") or {}).get("name"),
            "cost": (delivery.get("cost") or {}).get("amount"),
            "address": delivery.get("address"),
            "pickup_point": delivery.get("pickupPoint"),
        },
        "invoice_required": bool((form.get("invoice") or {}).get("required")),
        "customer": dict(customer) if customer is not None else None,
        "lines": [
            {
                "offer_id": line["offer_id"],
                "product_id": line["product_id"],
                "ean": line["ean"],
                "name": line["name"],
                "quantity": line["quantity"],
                "unit_price": str(line["unit_price"]),
                "image_url": line["image_url"],
            }
            for line in lines
        ],
    }


# --- effects --------------------------------------------------------------------------------


async def read_checkout_form(
    allegro: AllegroRestClient, pool: asyncpg.Pool, account_id: int, form_id: uuid.UUID
) -> Mapping[str, Any] | None:
    """The form as Allegro has it now; None for an inactive account or a form that is gone."""
    if not await pool.fetchval("SELECT active FROM accounts WHERE id = $1", account_id):
        return None  # A3: orders are taken only for active accounts
    try:
        form: Mapping[str, Any] = await allegro.get(
            account_id, f"/order/checkout-forms/{form_id}", action="read checkout form"
        )
    except AllegroNotFound:
        return None
    return form


async def store_order(
    conn: asyncpg.Connection, account: Mapping[str, Any], form: Mapping[str, Any], read_at: datetime
) -> asyncpg.Record | None:
    """Upsert the order row from the form; the row (locked for this transaction), or None when
    a newer read of the form is stored already (this one is stale: nothing to do)."""
    payment = form.get("payment") or {}
    total = (form.get("summary") or {}).get("totalToPay") or {}
    row: asyncpg.Record | None = await conn.fetchrow(
        """
        INSERT INTO orders (checkout_form_id, account_id, status, revision, bought_at,
                            allegro_updated_at, payment_type, paid_at, total, currency,
                            invoice_required, form, form_read_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
        ON CONFLICT (checkout_form_id) DO UPDATE
           SET status = EXCLUDED.status, revision = EXCLUDED.revision,
               bought_at = EXCLUDED.bought_at, allegro_updated_at = EXCLUDED.allegro_updated_at,
               payment_type = EXCLUDED.payment_type, paid_at = EXCLUDED.paid_at,
               total = EXCLUDED.total, currency = EXCLUDED.currency,
               invoice_required = EXCLUDED.invoice_required, form = EXCLUDED.form,
               form_read_at = EXCLUDED.form_read_at, updated_at = now()
         WHERE orders.form_read_at IS NULL OR orders.form_read_at <= EXCLUDED.form_read_at
        RETURNING checkout_form_id, announced_at, cancelled_at, superseded_by
        """,
        uuid.UUID(str(form["id"])),
        account["id"],
        form.get("status"),
        str(form.get("revision")) if form.get("revision") is not None else None,
        bought_at(form),
        _parse_time(form.get("updatedAt")),
        payment.get("type"),
        _parse_time(payment.get("finishedAt")),
        Decimal(str(total["amount"])) if total.get("amount") is not None else None,
        total.get("currency"),
        bool((form.get("invoice") or {}).get("required")),
        dict(form),
        read_at,
    )
    return row


async def store_lines(
    conn: asyncpg.Connection, form_id: uuid.UUID, form: Mapping[str, Any]
) -> list[asyncpg.Record]:
    """Upsert the order lines, enriched from the offer mirror (bound product, EAN, image)."""
    items = form.get("lineItems") or []
    lines: list[asyncpg.Record] = await conn.fetch(
        """
        INSERT INTO order_lines (id, checkout_form_id, offer_id, product_id, ean, name,
                                 quantity, unit_price, currency, image_url)
        SELECT i.id, $1, i.offer_id, o.product_id, coalesce(p.ean, o.ean), i.name,
               i.quantity, i.unit_price, i.currency, o.image_url
          FROM unnest($2::text[], $3::text[], $4::text[], $5::int[], $6::numeric[], $7::text[])
               AS i(id, offer_id, name, quantity, unit_price, currency)
          LEFT JOIN offers o ON o.id = i.offer_id
          LEFT JOIN products p ON p.id = o.product_id
        ON CONFLICT (id) DO UPDATE
           SET checkout_form_id = EXCLUDED.checkout_form_id, product_id = EXCLUDED.product_id,
               ean = EXCLUDED.ean, name = EXCLUDED.name, quantity = EXCLUDED.quantity,
               unit_price = EXCLUDED.unit_price, currency = EXCLUDED.currency,
               image_url = EXCLUDED.image_url
        RETURNING *
        """,
        form_id,
        [str(item["id"]) for item in items],
        [str(item["offer"]["id"]) for item in items],
        [str(item["offer"].get("name") or "") for item in items],
        [int(item["quantity"]) for item in items],
        [Decimal(str(item["price"]["amount"])) for item in items],
        [str(item["price"]["currency"]) for item in items],
    )
    return sorted(lines, key=lambda line: line["id"])


async def handle_order(prepared: PreparedOrder, conn: asyncpg.Connection) -> None:
    """Store the checkout form and announce what the decision says, in one transaction."""
    form = prepared.form
    if form is None:
        return
    account = await conn.fetchrow(
        "SELECT * FROM accounts WHERE id = $1 FOR SHARE", prepared.account_id
    )
    if account is None or not account["active"]:
        return
    form_id = prepared.checkout_form_id
    order = await store_order(conn, account, form, prepared.read_at)
    if order is None:
        return  # a newer read of this form was handled already
    line_ids = [str(i["id"]) for i in form.get("lineItems") or []]
    earlier = await conn.fetch(
        """
        SELECT DISTINCT o.checkout_form_id, o.announced_at IS NOT NULL AS announced
          FROM order_lines l JOIN orders o ON o.checkout_form_id = l.checkout_form_id
         WHERE l.id = ANY($1::text[]) AND l.checkout_form_id <> $2
        """,
        line_ids,
        form_id,
    )
    superseded = order["superseded_by"] is not None
    lines_announced_elsewhere = any(r["announced"] for r in earlier)
    if not superseded and not lines_announced_elsewhere:
        if earlier:
            await conn.execute(
                "UPDATE orders SET superseded_by = $2 WHERE checkout_form_id = ANY($1::uuid[])",
                [r["checkout_form_id"] for r in earlier],
                form_id,
            )
        lines = await store_lines(conn, form_id, form)
    else:
        lines = []
    decision = decide_order(
        form,
        auto_create_orders=account["auto_create_orders"],
        orders_from=account["orders_from"],
        announced=order["announced_at"] is not None,
        cancelled=order["cancelled_at"] is not None,
        superseded=superseded,
        lines_announced_elsewhere=lines_announced_elsewhere,
    )
    if lines_announced_elsewhere and form.get("status") == READY:
        await event_log.write(
            conn,
            account["id"],
            "orders",
            "warning",
            "order_not_sent_duplicate_lines",
            f"Checkout form {form_id} was not sent: its line items were already sent"
            " with another order",
            dedupe_key=f"duplicate-lines:{form_id}",
        )
    if decision.announce:
        await _announce(conn, account, form, lines)
    elif decision.cancel:
        await conn.execute(
            "UPDATE orders SET cancelled_at = now() WHERE checkout_form_id = $1", form_id
        )
        await outbox.enqueue(
            conn,
            OutgoingMessage(
                exchange=EVENTS_EXCHANGE,
                routing_key="order.cancelled",
                message_id=f"order.cancelled:{form_id}",
                payload={"checkout_form_id": str(form_id), "account_id": account["id"]},
            ),
        )
        await event_log.write(
            conn,
            account["id"],
            "orders",
            "info",
            "order_cancelled",
            f"Order {form_id} was cancelled; the ERP was told",
        )
        await queue_order_mail(conn, account, form, "cancelled")
    if account["bind_offers_by_ean"] and prepared.occurred_at is not None:
        await _touch_offers(conn, prepared)
    log.info(
        "order_handled",
        checkout_form_id=str(form_id),
        status=form.get("status"),
        announced=decision.announce,
        cancelled=decision.cancel,
        reason=decision.reason,
    )


async def _announce(
    conn: asyncpg.Connection,
    account: asyncpg.Record,
    form: Mapping[str, Any],
    lines: Sequence[asyncpg.Record],
) -> None:
    form_id = str(form["id"])
    card = decide_customer(
        card_from_checkout_form(form),
        send_customer_card=account["send_customer_card"],
        only_customers_with_nip=account["only_customers_with_nip"],
    )
    customer_id = None
    customer = None
    if card is not None:
        customer_id = await upsert_customer(conn, account["id"], card)
        customer = card_payload(card)
    await conn.execute(
        "UPDATE orders SET announced_at = now(), customer_id = $2 WHERE checkout_form_id = $1",
        uuid.UUID(form_id),
        customer_id,
    )
    await outbox.enqueue(
        conn,
        OutgoingMessage(
            exchange=EVENTS_EXCHANGE,
            routing_key="order.created",
            message_id=f"order.created:{form_id}",
            payload=order_created_payload(account, form, lines, customer),
        ),
    )
    await event_log.write(
        conn,
        account["id"],
        "orders",
        "info",
        "order_created",
        f"Order {form_id} sent to the ERP" + (" with a customer card" if customer else ""),
    )
    await queue_order_mail(conn, account, form, "ready")


async def _touch_offers(conn: asyncpg.Connection, prepared: PreparedOrder) -> None:
    """An order event is an event for its offers too (O3): let the offer handler look at them."""
    assert prepared.occurred_at is not None
    for offer_id in dict.fromkeys(prepared.offer_ids):
        await outbox.enqueue(
            conn,
            OutgoingMessage(
                exchange=JOURNAL_EXCHANGE,
                routing_key="allegro.offer_touched",
                message_id=f"offer-touched:{prepared.event_id}:{offer_id}",
                payload={
                    "account_id": prepared.account_id,
                    "offer_id": offer_id,
                    "occurred_at": prepared.occurred_at.isoformat(),
                },
            ),
        )


def order_routes(allegro: AllegroRestClient, pool: asyncpg.Pool) -> dict[str, Route]:
    """Routes of the journal queue for orders."""

    async def prepare_events(
        messages: list[OrderEventMessage],
    ) -> list[PreparedOrder | Exception]:
        """Forms come with the messages (read by the poller per journal page); messages without
        one (a retry, an event published by hand) have theirs read in bulk here."""
        active = {
            r["id"]
            for r in await pool.fetch(
                "SELECT id FROM accounts WHERE id = ANY($1::bigint[]) AND active",
                list({m.account_id for m in messages}),
            )
        }
        needed: dict[int, dict[uuid.UUID, datetime | None]] = {}
        for message in messages:
            if message.account_id in active and message.form is None:
                if message.covered_by_later_event:
                    continue
                wanted = needed.setdefault(message.account_id, {})
                form_id = message.event.order.checkout_form.id
                known = wanted.get(form_id)
                occurred = message.event.occurred_at
                wanted[form_id] = occurred if known is None else min(known, occurred)
        read_at = datetime.now(UTC)
        forms: dict[tuple[int, uuid.UUID], Mapping[str, Any] | Exception | None] = {}
        for account_id, wanted in needed.items():
            try:
                read = await read_checkout_forms(allegro, account_id, wanted)
            except Exception as exc:
                read = dict.fromkeys(wanted, exc)
            forms.update({(account_id, form_id): form for form_id, form in read.items()})

        # Several events of one form in a batch share one read: the form is handled once, at
        # its last event, with the offers of all of them.
        last: dict[tuple[int, uuid.UUID], int] = {}
        offer_ids: dict[tuple[int, uuid.UUID], dict[str, None]] = {}
        for index, message in enumerate(messages):
            key = (message.account_id, message.event.order.checkout_form.id)
            if message.covered_by_later_event and message.form is None:
                offer_ids.setdefault(key, {}).update(
                    dict.fromkeys(line.offer.id for line in message.event.order.line_items)
                )
                continue
            last[key] = index
            offers = offer_ids.setdefault(key, {})
            offers.update(dict.fromkeys(line.offer.id for line in message.event.order.line_items))
        prepared: list[PreparedOrder | Exception] = []
        for index, message in enumerate(messages):
            event = message.event
            key = (message.account_id, event.order.checkout_form.id)
            form: Mapping[str, Any] | Exception | None = None
            form_read_at = read_at
            handles = message.account_id in active and last.get(key) == index
            if handles and message.form is not None:
                form, form_read_at = message.form, message.form_read_at or read_at
            elif handles:
                form = forms.get(key)
            if isinstance(form, Exception):
                prepared.append(form)
                continue
            prepared.append(
                PreparedOrder(
                    account_id=message.account_id,
                    checkout_form_id=event.order.checkout_form.id,
                    form=form,
                    read_at=form_read_at,
                    event_id=event.id,
                    occurred_at=event.occurred_at,
                    offer_ids=tuple(offer_ids.get(key, {})) if handles else (),
                )
            )
        return prepared

    async def prepare_backfill(message: OrderBackfillMessage) -> PreparedOrder:
        form_id = message.checkout_form_id
        read_at = datetime.now(UTC)
        form: Mapping[str, Any] | None
        if message.form is not None:
            active = await pool.fetchval(
                "SELECT active FROM accounts WHERE id = $1", message.account_id
            )
            form, read_at = (message.form if active else None), message.form_read_at or read_at
        else:
            form = await read_checkout_form(allegro, pool, message.account_id, form_id)
        return PreparedOrder(
            account_id=message.account_id,
            checkout_form_id=form_id,
            form=form,
            read_at=read_at,
        )

    return {
        "allegro.order_event": Route(
            OrderEventMessage,
            handle_order,
            prepare_many=prepare_events,
        ),
        "allegro.order_backfill": Route(OrderBackfillMessage, handle_order, prepare_backfill),
    }


# --- backfill -------------------------------------------------------------------------------

LIST_PAGE = 100
LIST_CEILING = 10_000  # Allegro refuses offset + limit above this


def make_backfill(
    allegro: AllegroRestClient, pool: asyncpg.Pool, publisher: ConfirmingPublisher
) -> Callable[[int], Awaitable[None]]:
    """The backfill of an orders-from date in the past, run before each order poll.

    Every checkout form bought since orders-from is published as ``allegro.order_backfill``;
    the order handler then treats it like an event. A time range holding more forms than the
    listing's 10 000-offset ceiling is split in halves until each part fits.
    """

    async def backfill(account_id: int) -> None:
        row = await pool.fetchrow(
            "SELECT orders_from, orders_backfilled_from FROM accounts WHERE id = $1", account_id
        )
        if row is None or row["orders_from"] is None:
            return
        done = row["orders_backfilled_from"]
        start: datetime = row["orders_from"]
        if done is not None and done <= start:
            return
        end = datetime.now(UTC) + timedelta(days=1)  # generous: Allegro's clock is not ours
        found = await _backfill_range(allegro, publisher, account_id, start, end)
        await pool.execute(
            "UPDATE accounts SET orders_backfilled_from = $2 WHERE id = $1", account_id, start
        )
        log.info("orders_backfilled", account_id=account_id, forms=found, since=start.isoformat())

    return backfill


async def _backfill_range(
    allegro: AllegroRestClient,
    publisher: ConfirmingPublisher,
    account_id: int,
    start: datetime,
    end: datetime,
) -> int:
    params: dict[str, str | int] = {
        "lineItems.boughtAt.gte": _iso(start),
        "lineItems.boughtAt.lte": _iso(end),
        "sort": "lineItems.boughtAt",
        "limit": LIST_PAGE,
    }
    # stamped before the request: a read is never taken for newer than it is
    read_at = datetime.now(UTC).isoformat()
    first = await allegro.get(
        account_id,
        "/order/checkout-forms",
        action="list checkout forms",
        params={**params, "offset": 0},
    )
    total = int(first.get("totalCount") or 0)
    if total > LIST_CEILING and end - start > _ONE_SECOND:
        middle = start + (end - start) / 2
        return await _backfill_range(
            allegro, publisher, account_id, start, middle
        ) + await _backfill_range(allegro, publisher, account_id, middle + _ONE_MICROSECOND, end)
    published = 0
    page = first
    offset = 0
    while True:
        forms = page.get("checkoutForms") or []
        if forms:
            await publisher.publish_many(
                [
                    OutgoingMessage(
                        exchange=JOURNAL_EXCHANGE,
                        routing_key="allegro.order_backfill",
                        message_id=f"order-backfill:{f['id']}:{f.get('revision')}",
                        payload={
                            "account_id": account_id,
                            "checkout_form_id": str(f["id"]),
                            # the listing returns whole forms: no second read per form
                            "form": f,
                            "form_read_at": read_at,
                        },
                    )
                    for f in forms
                ]
            )
            published += len(forms)
        offset += LIST_PAGE
        if len(forms) < LIST_PAGE or offset + LIST_PAGE > LIST_CEILING:
            return published
        read_at = datetime.now(UTC).isoformat()
        page = await allegro.get(
            account_id,
            "/order/checkout-forms",
            action="list checkout forms",
            params={**params, "offset": offset},
        )


_ONE_SECOND = timedelta(seconds=1)
_ONE_MICROSECOND = timedelta(microseconds=1)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
