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
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import structlog

from allegro_sync.adapters.allegro.checkout_forms import read_checkout_forms
from allegro_sync.adapters.allegro.client import AllegroRestClient
from allegro_sync.adapters.allegro.errors import AllegroNotFound
from allegro_sync.adapters.broker.publisher import ConfirmingPublisher, OutgoingMessage
from allegro_sync.adapters.broker.topology import EVENTS_EXCHANGE, JOURNAL_EXCHANGE
from allegro_sync.adapters.postgres import accounts as account_store
from allegro_sync.adapters.postgres import event_log, outbox
from allegro_sync.adapters.postgres import orders as order_store
from allegro_sync.contract import (
    OFFER_TOUCHED,
    ORDER_BACKFILL,
    ORDER_CANCELLED,
    ORDER_CREATED,
    OfferTouched,
    OrderBackfillMessage,
    OrderCancelled,
    OrderCreated,
    OrderEventMessage,
)
from allegro_sync.handlers import order_fields
from allegro_sync.handlers.customers import (
    card_from_checkout_form,
    card_payload,
    decide_customer,
    upsert_customer,
)
from allegro_sync.handlers.fulfillment import take_echoes

log = structlog.get_logger(__name__)

READY = "READY_FOR_PROCESSING"
CANCELLED = "CANCELLED"
CASH_ON_DELIVERY = "CASH_ON_DELIVERY"


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
    """The ``order.created`` body of the contract (design.md section 4), with the fields an ERP
    needs to book it (``order_fields``)."""
    payment = form.get("payment") or {}
    delivery = form.get("delivery") or {}
    total = (form.get("summary") or {}).get("totalToPay") or {}
    when = bought_at(form)
    items = order_fields.lines_by_id(form)
    body = {
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
            **order_fields.delivery_fields(delivery),
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
                **order_fields.line_fields(items.get(str(line.get("id")), {})),
            }
            for line in lines
        ],
        **order_fields.form_fields(form),
    }
    return OrderCreated.model_validate(body).body()


# --- effects --------------------------------------------------------------------------------


async def read_checkout_form(
    allegro: AllegroRestClient, pool: asyncpg.Pool, account_id: int, form_id: uuid.UUID
) -> Mapping[str, Any] | None:
    """The form as Allegro has it now; None for an inactive account or a form that is gone."""
    if not await account_store.is_active(pool, account_id):
        return None  # A3: orders are taken only for active accounts
    try:
        form: Mapping[str, Any] = await allegro.get(
            account_id, f"/order/checkout-forms/{form_id}", action="read checkout form"
        )
    except AllegroNotFound:
        return None
    return form


def order_row(prepared: PreparedOrder) -> order_store.OrderRow:
    """The ``orders`` row of a form read."""
    form = prepared.form
    assert form is not None
    payment = form.get("payment") or {}
    total = (form.get("summary") or {}).get("totalToPay") or {}
    return order_store.OrderRow(
        checkout_form_id=prepared.checkout_form_id,
        account_id=prepared.account_id,
        status=form.get("status"),
        revision=str(form["revision"]) if form.get("revision") is not None else None,
        bought_at=bought_at(form),
        allegro_updated_at=_parse_time(form.get("updatedAt")),
        payment_type=payment.get("type"),
        paid_at=_parse_time(payment.get("finishedAt")),
        total=Decimal(str(total["amount"])) if total.get("amount") is not None else None,
        currency=total.get("currency"),
        invoice_required=bool((form.get("invoice") or {}).get("required")),
        form=dict(form),
        form_read_at=prepared.read_at,
    )


def line_rows(forms: Sequence[Mapping[str, Any]]) -> list[order_store.LineRow]:
    """The ``order_lines`` rows of forms' line items."""
    return [
        order_store.LineRow(
            id=str(item["id"]),
            checkout_form_id=uuid.UUID(str(form["id"])),
            offer_id=str(item["offer"]["id"]),
            name=str(item["offer"].get("name") or ""),
            quantity=int(item["quantity"]),
            unit_price=Decimal(str(item["price"]["amount"])),
            currency=str(item["price"]["currency"]),
        )
        for form in forms
        for item in form.get("lineItems") or []
    ]


def _line_ids(form: Mapping[str, Any]) -> list[str]:
    return [str(i["id"]) for i in form.get("lineItems") or []]


def _one_per_form(batch: Sequence[PreparedOrder]) -> list[PreparedOrder]:
    """Per checkout form of the batch, its newest read (ties: the later message), carrying the
    offers of all of the form's messages."""
    newest: dict[uuid.UUID, PreparedOrder] = {}
    offers: dict[uuid.UUID, dict[str, None]] = {}
    for prepared in batch:
        if prepared.form is None:
            continue
        form_id = prepared.checkout_form_id
        offers.setdefault(form_id, {}).update(dict.fromkeys(prepared.offer_ids))
        known = newest.get(form_id)
        if known is None or known.read_at <= prepared.read_at:
            newest[form_id] = prepared
    return [replace(p, offer_ids=tuple(offers[form_id])) for form_id, p in newest.items()]


async def handle_orders(batch: Sequence[PreparedOrder], conn: asyncpg.Connection) -> None:
    """Store a batch's checkout forms and announce what the decisions say, in the caller's
    transaction, with a handful of statements for the whole batch.

    Forms of one batch that share line items (a merged form and the forms it merges) are
    handled one after the other, in the batch's order: which of them announces depends on what
    the earlier ones stored.
    """
    work = _one_per_form(batch)
    seen: set[str] = set()
    shared = False
    for prepared in work:
        assert prepared.form is not None
        ids = set(_line_ids(prepared.form))
        shared = shared or not seen.isdisjoint(ids)
        seen |= ids
    if shared:
        for prepared in work:
            await _handle_forms(conn, [prepared])
    elif work:
        await _handle_forms(conn, work)


@dataclass(frozen=True)
class FormsRead:
    """What handling a batch of forms reads: the forms of active accounts whose read is not
    stale (in form order), their accounts (locked), their order rows as stored now, and per
    line item the orders already holding it."""

    batch: Sequence[PreparedOrder]
    accounts: Mapping[int, asyncpg.Record]
    stored: Mapping[uuid.UUID, asyncpg.Record]
    held: Mapping[str, Sequence[Mapping[str, Any]]]


@dataclass(frozen=True)
class FormsPlan:
    """What to write for a batch of forms: (old forms, the merged form) to supersede, the forms
    whose lines are stored, and per form its decision and whether its lines were announced
    with another order."""

    supersede: Sequence[tuple[list[uuid.UUID], uuid.UUID]]
    take_lines: Sequence[Mapping[str, Any]]
    decided: Sequence[tuple[PreparedOrder, OrderDecision, bool]]


def plan_forms(read: FormsRead) -> FormsPlan:
    """The pure decision over what ``_read_forms`` read (merged forms take the lines over)."""
    supersede: list[tuple[list[uuid.UUID], uuid.UUID]] = []
    take_lines: list[Mapping[str, Any]] = []
    decided: list[tuple[PreparedOrder, OrderDecision, bool]] = []
    for prepared in read.batch:
        form, form_id = prepared.form, prepared.checkout_form_id
        assert form is not None
        others = {
            row["checkout_form_id"]: row["announced"]
            for line_id in _line_ids(form)
            for row in read.held.get(line_id, [])
            if row["checkout_form_id"] != form_id
        }
        order = read.stored[form_id]
        superseded = order["superseded_by"] is not None
        elsewhere = any(others.values())
        if not superseded and not elsewhere:
            if others:  # a merged form: it takes the lines over (rare; one statement each)
                supersede.append((list(others), form_id))
            take_lines.append(form)
        account = read.accounts[prepared.account_id]
        decision = decide_order(
            form,
            auto_create_orders=account["auto_create_orders"],
            orders_from=account["orders_from"],
            announced=order["announced_at"] is not None,
            cancelled=order["cancelled_at"] is not None,
            superseded=superseded,
            lines_announced_elsewhere=elsewhere,
        )
        decided.append((prepared, decision, elsewhere))
    return FormsPlan(supersede, take_lines, decided)


async def _handle_forms(conn: asyncpg.Connection, batch: Sequence[PreparedOrder]) -> None:
    """``handle_orders`` for forms that share no line item with each other: one read, a pure
    decision over what it read, one write."""
    read = await _read_forms(conn, batch)
    await _write_forms(conn, read, plan_forms(read))


async def _read_forms(conn: asyncpg.Connection, batch: Sequence[PreparedOrder]) -> FormsRead:
    """Lock the accounts, store the forms (version-guarded by read time) and read back their
    order rows and the orders their line items are in already."""
    accounts = await account_store.lock_active(conn, list({p.account_id for p in batch}))
    # A3: active accounts only; in form order, so that replicas lock rows in the same order
    batch = sorted((p for p in batch if p.account_id in accounts), key=lambda p: p.checkout_form_id)
    stored = await order_store.upsert(conn, [order_row(p) for p in batch])
    batch = [p for p in batch if p.checkout_form_id in stored]  # stale reads: nothing to do
    held = {}
    if batch:
        held = await order_store.forms_of_lines(
            conn, [line_id for p in batch if p.form is not None for line_id in _line_ids(p.form)]
        )
    return FormsRead(batch, accounts, stored, held)


async def _write_forms(conn: asyncpg.Connection, read: FormsRead, plan: FormsPlan) -> None:
    """Apply the plan: supersede, store the lines, warn, cancel, announce, touch the offers."""
    for old_forms, merged in plan.supersede:
        await order_store.supersede(conn, old_forms, merged)
    lines = await order_store.upsert_lines(conn, line_rows(plan.take_lines))
    announce: list[tuple[asyncpg.Record, Mapping[str, Any], list[asyncpg.Record]]] = []
    for prepared, decision, elsewhere in plan.decided:
        account, form = read.accounts[prepared.account_id], prepared.form
        assert form is not None
        if elsewhere and form.get("status") == READY:
            await event_log.write(
                conn,
                account["id"],
                "orders",
                "warning",
                "order_not_sent_duplicate_lines",
                f"Checkout form {prepared.checkout_form_id} was not sent: its line items were"
                " already sent with another order",
                dedupe_key=f"duplicate-lines:{prepared.checkout_form_id}",
            )
        if decision.announce:
            announce.append((account, form, lines.get(prepared.checkout_form_id, [])))
        elif decision.cancel:
            await _cancel(conn, account, form)
        log.info(
            "order_handled",
            checkout_form_id=str(prepared.checkout_form_id),
            status=form.get("status"),
            announced=decision.announce,
            cancelled=decision.cancel,
            reason=decision.reason,
        )
    await _announce(conn, announce)
    await _touch_offers(
        conn,
        [
            p
            for p, _, _ in plan.decided
            if read.accounts[p.account_id]["bind_offers_by_ean"] and p.occurred_at is not None
        ],
    )


async def _announce(
    conn: asyncpg.Connection,
    orders: Sequence[tuple[asyncpg.Record, Mapping[str, Any], Sequence[asyncpg.Record]]],
) -> None:
    """``order.created`` for each (account, form, lines), with the customer card the account's
    rules allow, the event-log entry and the buyer's e-mail."""
    if not orders:
        return
    customer_ids: list[int | None] = []
    messages: list[OutgoingMessage] = []
    entries: list[event_log.Entry] = []
    for account, form, lines in orders:
        card = decide_customer(
            card_from_checkout_form(form),
            send_customer_card=account["send_customer_card"],
            only_customers_with_nip=account["only_customers_with_nip"],
        )
        customer = None
        customer_id = None
        if card is not None:
            customer_id = await upsert_customer(conn, account["id"], card)
            customer = card_payload(card)
        customer_ids.append(customer_id)
        form_id = str(form["id"])
        messages.append(
            OutgoingMessage(
                exchange=EVENTS_EXCHANGE,
                routing_key=ORDER_CREATED,
                message_id=f"order.created:{form_id}",
                payload=order_created_payload(account, form, lines, customer),
            )
        )
        entries.append(
            event_log.Entry(
                account["id"],
                "orders",
                "info",
                "order_created",
                f"Order {form_id} sent to the ERP" + (" with a customer card" if customer else ""),
            )
        )
    form_ids = [uuid.UUID(str(form["id"])) for _, form, _ in orders]
    await conn.execute(order_store.ANNOUNCED, form_ids, customer_ids)
    await outbox.enqueue_many(conn, messages)
    await event_log.write_many(conn, entries)


async def _cancel(
    conn: asyncpg.Connection, account: asyncpg.Record, form: Mapping[str, Any]
) -> None:
    form_id = uuid.UUID(str(form["id"]))
    await conn.execute(order_store.CANCELLED, form_id)
    await outbox.enqueue(
        conn,
        OutgoingMessage(
            exchange=EVENTS_EXCHANGE,
            routing_key=ORDER_CANCELLED,
            message_id=f"order.cancelled:{form_id}",
            payload=OrderCancelled(checkout_form_id=str(form_id), account_id=account["id"]).body(),
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


async def _touch_offers(conn: asyncpg.Connection, batch: Sequence[PreparedOrder]) -> None:
    """An order event is an event for its offers too (O3): let the offer handler look at them,
    once per offer and batch (a burst of purchases of one offer is one look, at its latest
    event)."""
    latest: dict[tuple[int, str], tuple[datetime, str | None]] = {}
    for prepared in batch:
        when = prepared.occurred_at
        assert when is not None
        for offer_id in prepared.offer_ids:
            key = (prepared.account_id, offer_id)
            if key not in latest or latest[key][0] <= when:
                latest[key] = (when, prepared.event_id)
    await outbox.enqueue_many(
        conn,
        [
            OutgoingMessage(
                exchange=JOURNAL_EXCHANGE,
                routing_key=OFFER_TOUCHED,
                message_id=f"offer-touched:{event_id}:{offer_id}",
                payload=OfferTouched(
                    account_id=account_id, offer_id=offer_id, occurred_at=when
                ).body(),
            )
            for (account_id, offer_id), (when, event_id) in latest.items()
        ],
    )


async def prepare_orders(
    allegro: AllegroRestClient, pool: asyncpg.Pool, messages: list[OrderEventMessage]
) -> list[PreparedOrder | Exception]:
    """The ``prepare`` of a batch's order events (the bus gives runs as their single events):
    forms come with the events (read by the poller per journal page); events without one (a
    retry, an event published by hand) have theirs read in bulk here."""
    active = await account_store.active_among(pool, list({m.account_id for m in messages}))
    # the journal's echo of our own status writes: the stored form, no read (fulfillment.py)
    echoes = await take_echoes(pool, messages)
    needed: dict[int, dict[uuid.UUID, datetime | None]] = {}
    for index, m in enumerate(messages):
        if m.account_id in active and m.form is None and index not in echoes:
            wanted = needed.setdefault(m.account_id, {})
            form_id = m.event.order.checkout_form.id
            known = wanted.get(form_id)
            occurred = m.event.occurred_at
            wanted[form_id] = occurred if known is None else min(known, occurred)
    read_at = datetime.now(UTC)
    forms: dict[tuple[int, uuid.UUID], Mapping[str, Any] | Exception | None] = {}
    for account_id, wanted in needed.items():
        try:
            read = await read_checkout_forms(allegro, account_id, wanted)
        except Exception as exc:
            read = dict.fromkeys(wanted, exc)
        forms.update({(account_id, form_id): form for form_id, form in read.items()})

    prepared: list[PreparedOrder | Exception] = []
    for index, m in enumerate(messages):
        event = m.event
        form: Mapping[str, Any] | Exception | None = None
        form_read_at = read_at
        if m.account_id not in active:
            pass  # A3: orders are taken only for active accounts
        elif m.form is not None:
            form, form_read_at = m.form, m.form_read_at or read_at
        elif index in echoes:
            form, form_read_at = echoes[index]
        else:
            form = forms.get((m.account_id, event.order.checkout_form.id))
        if isinstance(form, Exception):
            prepared.append(form)
            continue
        prepared.append(
            PreparedOrder(
                account_id=m.account_id,
                checkout_form_id=event.order.checkout_form.id,
                form=form,
                read_at=form_read_at,
                event_id=event.id,
                occurred_at=event.occurred_at,
                offer_ids=tuple(dict.fromkeys(line.offer.id for line in event.order.line_items)),
            )
        )
    return prepared


async def prepare_backfill(
    allegro: AllegroRestClient, pool: asyncpg.Pool, message: OrderBackfillMessage
) -> PreparedOrder:
    """The ``prepare`` of a form the backfill found: as the listing showed it, else read."""
    form_id = message.checkout_form_id
    read_at = datetime.now(UTC)
    form: Mapping[str, Any] | None
    if message.form is not None:
        # an inactive account's form is dropped by the handler (A3), in one query per batch
        form, read_at = message.form, message.form_read_at or read_at
    else:
        form = await read_checkout_form(allegro, pool, message.account_id, form_id)
    return PreparedOrder(
        account_id=message.account_id,
        checkout_form_id=form_id,
        form=form,
        read_at=read_at,
    )


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
        row = await account_store.backfill_range(pool, account_id)
        if row is None or row["orders_from"] is None:
            return
        done = row["orders_backfilled_from"]
        start: datetime = row["orders_from"]
        if done is not None and done <= start:
            return
        end = datetime.now(UTC) + timedelta(days=1)  # generous: Allegro's clock is not ours
        found = await _backfill_range(allegro, publisher, account_id, start, end)
        await account_store.update(pool, account_id, {"orders_backfilled_from": start})
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
                        routing_key=ORDER_BACKFILL,
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
