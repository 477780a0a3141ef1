"""``shipment.added`` from the ERP: a tracking number on the Allegro order (issue 16, item 1).

``POST /order/checkout-forms/{id}/shipments`` with ``carrierId``, ``waybill``, ``carrierName``
(``OTHER`` only) and ``lineItems`` (none: the whole order). Everything Allegro sees runs in the
route's ``prepare_many`` (a consumer batch at once, its POSTs before its status writes); each
step is written to ``shipments`` at once, outside the batch transaction, because it is a fact on
Allegro's side that a crash must not forget:

- input that can never succeed is dead-lettered before any call: no such order, a carrier not
  on Allegro's list (``adapters/allegro/carriers.py``: read once a day), ``OTHER`` without a
  name, a line not on the order or more pieces than were bought;
- the (order, waybill) row is claimed with a lease (two messages with the same waybill never
  post at once); one already on Allegro is not posted again: the same waybill twice is one
  shipment, and a redelivery costs no request;
- ``requested_at`` is set just before the POST: an attempt that finds it set (a crash or a
  lost answer in between) reads the order's shipments on Allegro first and posts only when the
  waybill is not there;
- Allegro's 400/422/409 (a carrier or line it refuses, a waybill used too often): dead letter
  with Allegro's words and an event-log entry; 404 (the order is gone): refused, logged.

Then, with the account's ``mark_sent_on_tracking`` (default on), the order's fulfillment status
becomes ``SENT`` through the revision-checked write of ``handlers/fulfillment.py`` (the echo of
which in the order journal is not read again), unless the
order is already ``SENT`` or beyond it (``PICKED_UP``), or ``CANCELLED``, ``SUSPENDED``,
``RETURNED``: a tracking number never moves an order backwards or revives a cancelled one. The
stored form's status decides first; a stale revision (409) reads the form and decides again.
A refusal of the status leaves the shipment in place and is logged. ``fulfillment_at`` records
that this step is done. The status step is not the batch's: ``mark_sent_pending`` (a service
of the daemon, ``daemon/sent_marker.py``) takes the rows on Allegro whose step is left, under a
lease, and writes the statuses as bulk traffic, so a burst's tracking numbers all reach
Allegro first and its status writes follow (Allegro's 150 requests/s per client id would
otherwise be shared between the two, and every batch would wait for its status writes). A
crash or a failure leaves the row to the next round. The batch's event-log entries are written
in its transaction, once per order and waybill.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import asyncpg
import structlog

from allegro_sync.adapters.allegro.carriers import OTHER, CarrierCatalog
from allegro_sync.adapters.allegro.client import AllegroRestClient
from allegro_sync.adapters.allegro.errors import (
    AllegroConflict,
    AllegroNotFound,
    AllegroRejected,
)
from allegro_sync.adapters.postgres import event_log, shipments
from allegro_sync.contract import ShipmentAdded, ShipmentLine
from allegro_sync.errors import BadInput, Refused, TransientError
from allegro_sync.handlers.fulfillment import write_status

log = structlog.get_logger(__name__)
_T = TypeVar("_T")

# A tracking number leaves an order in these alone (further along, or not to be sent).
LEAVE_STATUSES = ("SENT", "PICKED_UP", "CANCELLED", "SUSPENDED", "RETURNED")
# An attempt's lease on its (order, waybill) row: longer than one request can take, a wait for
# the client's request limiter (a 429 pause of up to 60 s) plus its 30 s timeout, twice (a 401
# refreshes the token and sends again). It is checked and renewed just before the POST.
LEASE_SECONDS = 2 * (60.0 + 30.0) + 30.0
# A batch's tracking numbers go out this many at once: one POST each, so the client's request
# limiter (Allegro's 150/s), not a round trip at a time, sets the pace.
CONCURRENCY = 64


@dataclass(frozen=True)
class PreparedShipment:
    """The tracking number is on Allegro; what the handler records."""

    account_id: int
    checkout_form_id: uuid.UUID
    waybill: str
    carrier_id: str
    allegro_shipment_id: str | None
    added: bool  # False: it was on Allegro already (the same waybill again, a redelivery)
    marked_sent: bool  # always False here: the status step follows (``mark_sent_pending``)


def carrier_of(message: ShipmentAdded) -> tuple[str, str | None]:
    """Allegro's carrier id (upper case) and the name to send (``OTHER`` only); BadInput for
    ``OTHER`` without a name."""
    carrier = message.carrier_id.upper()
    if carrier != OTHER:
        return carrier, None
    if not message.carrier_name:
        raise BadInput("carrier OTHER needs carrier_name (the carrier's name, 1-30 characters)")
    return carrier, message.carrier_name


def check_lines(
    lines: Sequence[ShipmentLine] | None, ordered: Mapping[str, int]
) -> list[ShipmentLine] | None:
    """The parcel's lines (None: the whole order); BadInput for a line not on the order, a line
    named twice, or more pieces than the order has."""
    if not lines:
        return None
    seen: set[str] = set()
    for line in lines:
        if line.line_item_id not in ordered:
            raise BadInput(f"line item {line.line_item_id} is not on the order")
        if line.line_item_id in seen:
            raise BadInput(f"line item {line.line_item_id} is named twice")
        seen.add(line.line_item_id)
        if line.quantity > ordered[line.line_item_id]:
            raise BadInput(
                f"line item {line.line_item_id}: quantity {line.quantity} is more than the"
                f" {ordered[line.line_item_id]} bought"
            )
    return list(lines)


def should_mark_sent(enabled: bool, current_status: str | None) -> bool:
    """Whether a tracking number moves the order to SENT (pure)."""
    return enabled and current_status not in LEAVE_STATUSES


def allegro_body(
    carrier: str, waybill: str, carrier_name: str | None, lines: Sequence[ShipmentLine] | None
) -> dict[str, Any]:
    """The request body of ``POST .../shipments`` (spec ``CheckoutFormAddWaybillRequest``)."""
    body: dict[str, Any] = {"carrierId": carrier, "waybill": waybill}
    if carrier_name is not None:
        body["carrierName"] = carrier_name
    if lines:
        body["lineItems"] = [{"id": line.line_item_id} for line in lines]
    return body


async def add_shipments(
    allegro: AllegroRestClient,
    pool: asyncpg.Pool,
    carriers: CarrierCatalog,
    messages: list[ShipmentAdded],
) -> list[PreparedShipment | Exception]:
    """Put a consumer batch's tracking numbers on Allegro (the ``prepare_many`` step), once per
    order and waybill, ``CONCURRENCY`` at a time; the status writes follow in
    ``mark_sent_pending``. A message's failure is its element, the error class deciding that
    message's fate alone."""
    limit = asyncio.Semaphore(CONCURRENCY)

    async def guarded(step: Awaitable[_T]) -> _T | Exception:
        async with limit:
            try:
                return await step
            except Exception as exc:
                if not isinstance(exc, (BadInput, Refused, TransientError)):
                    log.error("shipment_failed", exc_info=exc)
                return exc

    staged = await asyncio.gather(*(guarded(_stage(allegro, pool, carriers, m)) for m in messages))
    return list(staged)


@dataclass(frozen=True)
class SentStepBounds:
    """When the SENT status step of a tracking number is given up: after ``max_attempts``
    attempts, or ``give_up_after`` seconds since the first."""

    max_attempts: int = 20
    give_up_after: float = 3600.0


DEFAULT_SENT_BOUNDS = SentStepBounds()


def sent_step_exhausted(attempts: int, seconds: float, bounds: SentStepBounds) -> bool:
    """Whether a failed status step is given up (pure)."""
    return attempts >= bounds.max_attempts or seconds >= bounds.give_up_after


async def mark_sent_pending(
    allegro: AllegroRestClient,
    pool: asyncpg.Pool,
    limit: int = 200,
    lease: float = 30.0,
    *,
    bounds: SentStepBounds = DEFAULT_SENT_BOUNDS,
    given_up: Callable[[], None] = lambda: None,
) -> int:
    """The status step of tracking numbers on Allegro whose step is left: at most ``limit``,
    leased for ``lease`` seconds (another replica takes others), ``CONCURRENCY`` at a time, as
    bulk traffic. A failed step is tried again when its lease runs out, within ``bounds``;
    then it is given up (an event-log entry ``fulfillment_status_given_up``, ``given_up``
    called). The rows done."""
    rows = await pool.fetch(shipments.CLAIM_STATUS_STEP, lease, limit)
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(row: asyncpg.Record) -> bool:
        async with gate:
            order = await pool.fetchrow(shipments.ORDER, row["checkout_form_id"])
            if order is None:
                return False  # the order went with its account
            try:
                marked = await _mark_sent(allegro, pool, order, row["id"])
            except Exception as exc:  # the lease runs out: the next round tries again
                level = log.warning if isinstance(exc, TransientError) else log.error
                level("shipment_status_step_failed", exc_info=exc)
                attempts, seconds = row["status_step_attempts"], row["status_step_seconds"]
                if sent_step_exhausted(attempts, seconds, bounds):
                    await _give_up_sent(pool, order, row, f"{type(exc).__name__}: {exc}")
                    given_up()
                return False
            log.info(
                "shipment_status_step",
                checkout_form_id=str(row["checkout_form_id"]),
                marked_sent=marked,
            )
            return True

    done = await asyncio.gather(*(one(row) for row in rows))
    return sum(done)


async def _stage(
    allegro: AllegroRestClient,
    pool: asyncpg.Pool,
    carriers: CarrierCatalog,
    message: ShipmentAdded,
) -> PreparedShipment:
    form_id, waybill = message.checkout_form_id, message.waybill
    carrier, carrier_name = carrier_of(message)
    order = await pool.fetchrow(shipments.ORDER, form_id)
    if order is None:
        raise BadInput(f"unknown checkout form {form_id}: no such order was received")
    account_id: int = order["account_id"]
    ordered = {str(i.get("id")): int(i.get("quantity") or 0) for i in order["line_items"] or []}
    lines = check_lines(message.line_items, ordered)
    if not await carriers.knows(account_id, carrier):
        raise BadInput(
            f"unknown carrier {message.carrier_id!r}: not one of Allegro's carriers"
            " (GET /order/carriers); use OTHER with carrier_name for another carrier"
        )
    stored = [line.model_dump() for line in lines] if lines else None
    row = await pool.fetchrow(
        shipments.CLAIM, form_id, account_id, waybill, carrier, carrier_name, stored, LEASE_SECONDS
    )
    if row is None:
        state = await pool.fetchrow(shipments.STATE, form_id, waybill)
        if state is None or state["status"] != "sent":
            raise TransientError(f"waybill {waybill} of order {form_id} is being added meanwhile")
        return PreparedShipment(account_id, form_id, waybill, carrier, None, False, False)
    body = allegro_body(carrier, waybill, carrier_name, lines)
    shipment_id = await _send(allegro, pool, row, account_id, form_id, body)
    log.info("shipment_added", checkout_form_id=str(form_id), carrier=carrier)
    return PreparedShipment(account_id, form_id, waybill, carrier, shipment_id or None, True, False)


async def _send(
    allegro: AllegroRestClient,
    pool: asyncpg.Pool,
    row: asyncpg.Record,
    account_id: int,
    form_id: uuid.UUID,
    body: dict[str, Any],
) -> str:
    """POST the tracking number unless an earlier attempt got it there; Allegro's shipment id
    ("" when Allegro's answer gave none)."""
    path = f"/order/checkout-forms/{form_id}/shipments"
    waybill = body["waybill"]
    held = row["claimed_until"]
    try:
        found = None
        if row["requested_at"] is not None:
            found = await _find(allegro, account_id, path, waybill)
        if found is None:
            renewed = await pool.fetchval(shipments.MARK_REQUESTED, row["id"], held, LEASE_SECONDS)
            if renewed is None:
                raise _LeaseLost(
                    f"waybill {waybill} of order {form_id}: the attempt's lease ran out"
                )
            held = renewed
            response = await allegro.request(
                account_id, "POST", path, action="add tracking number", json=body
            )
            found = str((response.body or {}).get("id") or "")
        await pool.execute(shipments.MARK_SENT, row["id"], found or None)
        return found
    except (AllegroRejected, AllegroConflict) as exc:
        # 400/422: a carrier, waybill or line Allegro refuses; 409: the waybill is on too many
        # orders. No retry can help: dead letter, with Allegro's words in the event log.
        await _refusal(pool, row["id"], account_id, form_id, waybill, str(exc))
        raise BadInput(f"Allegro refused tracking number {waybill}: {exc}") from exc
    except AllegroNotFound as exc:
        await _refusal(pool, row["id"], account_id, form_id, waybill, str(exc))
        raise Refused(str(exc)) from exc
    except _LeaseLost as exc:
        raise TransientError(str(exc)) from None
    except BaseException:
        await pool.execute(shipments.RELEASE, row["id"], held)
        raise


class _LeaseLost(Exception):
    """Another attempt may hold the row now: this one neither posts nor gives the lease back."""


async def _find(allegro: AllegroRestClient, account_id: int, path: str, waybill: str) -> str | None:
    """The id of the order's shipment with ``waybill`` on Allegro ("" without an id), or None."""
    listing = await allegro.get(account_id, path, action="read tracking numbers")
    for shipment in listing.get("shipments") or []:
        if str(shipment.get("waybill") or "").strip() == waybill:
            return str(shipment.get("id") or "")
    return None


async def _mark_sent(
    allegro: AllegroRestClient, pool: asyncpg.Pool, order: asyncpg.Record, row_id: int
) -> bool:
    """The order's status to SENT when the account wants it and the order is not past it."""
    form_id: uuid.UUID = order["checkout_form_id"]
    written = False
    if should_mark_sent(order["mark_sent_on_tracking"], order["fulfillment_status"]):
        try:
            written = await write_status(
                allegro,
                order["account_id"],
                form_id,
                "SENT",
                order["revision"],
                leave=LEAVE_STATUSES,
                pool=pool,
                bulk=True,
            )
        except (AllegroNotFound, AllegroRejected) as exc:
            # the shipment stays; the seller sees why the status did not follow
            async with pool.acquire() as conn:
                await event_log.write(
                    conn,
                    order["account_id"],
                    "orders",
                    "error",
                    "fulfillment_status_refused",
                    f"Allegro refused status SENT for order {form_id}: {exc}",
                    details={"checkout_form_id": str(form_id), "status": "SENT"},
                )
    await pool.execute(shipments.MARK_FULFILLMENT, row_id)
    return written


async def _give_up_sent(
    pool: asyncpg.Pool, order: asyncpg.Record, row: asyncpg.Record, error: str
) -> None:
    form_id = str(order["checkout_form_id"])
    minutes = row["status_step_seconds"] / 60
    reason = (
        f"status SENT not set after {row['status_step_attempts']} attempts over"
        f" {minutes:.0f} min (last: {error})"
    )
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(shipments.GIVE_UP_STATUS_STEP, row["id"], reason)
        await event_log.write(
            conn,
            order["account_id"],
            "orders",
            "error",
            "fulfillment_status_given_up",
            f"Order {form_id} was not marked SENT after tracking number {row['waybill']}:"
            f" {reason}. Set the status in Allegro's panel or with order.status_changed.",
            details={"checkout_form_id": form_id, "waybill": row["waybill"], "status": "SENT"},
        )
    log.warning("shipment_status_step_given_up", checkout_form_id=form_id, reason=reason)


async def _refusal(
    pool: asyncpg.Pool,
    row_id: int,
    account_id: int,
    form_id: uuid.UUID,
    waybill: str,
    reason: str,
) -> None:
    await pool.execute(shipments.MARK_REFUSED, row_id, reason)
    async with pool.acquire() as conn:
        await event_log.write(
            conn,
            account_id,
            "orders",
            "error",
            "shipment_refused",
            f"Tracking number {waybill} for order {form_id} was not added: {reason}",
            details={"checkout_form_id": str(form_id), "waybill": waybill},
        )


async def record_shipments(prepared: list[PreparedShipment], conn: asyncpg.Connection) -> None:
    """In the batch transaction: the event log entries, once per order and waybill, in one
    statement. No e-mail: Allegro shows the buyer the tracking number (and stops a seller's
    mail that repeats it)."""
    entries, keys = [], []
    for p in prepared:
        sent = " and marked SENT" if p.marked_sent else ""
        entries.append(
            event_log.Entry(
                p.account_id,
                "orders",
                "info",
                "shipment_added",
                f"Tracking number {p.waybill} ({p.carrier_id}) added to order"
                f" {p.checkout_form_id} on Allegro{sent}",
                {
                    "checkout_form_id": str(p.checkout_form_id),
                    "waybill": p.waybill,
                    "carrier_id": p.carrier_id,
                    "allegro_shipment_id": p.allegro_shipment_id,
                    "marked_sent": p.marked_sent,
                },
            )
        )
        keys.append(f"shipment:{p.checkout_form_id}:{p.waybill}")
    await event_log.write_many_once(conn, entries, keys)
