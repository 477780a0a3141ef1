"""``order.status_changed`` from the ERP: the seller's fulfillment status on Allegro.

The ERP says what state an order is in; Allegro's checkout form carries it as
``fulfillment.status`` (``PUT /order/checkout-forms/{id}/fulfillment``, allegro-api.md 6.3).
The PUT runs in ``prepare`` (a network effect, outside the batch transaction); the handler then
writes the event log in the batch transaction (no e-mail: Allegro tells the buyer).

- The status is checked against Allegro's list first: an unknown one can never succeed
  (dead letter with the accepted values); ``RETURNED`` is Allegro's to set, not the seller's.
- The PUT names the revision we stored; 409 (stale revision) re-reads the form and tries once
  more with the fresh one, unless the form already has the status (nothing left to do).
- Setting the same status again is accepted by Allegro, so a redelivered message may repeat the
  PUT harmlessly.

The order journal's echo of our own write (``FULFILLMENT_STATUS_CHANGED``) costs no read of the
form: just before the PUT the status and the revision it writes over are noted on the order
(``orders.NOTE_OWN_STATUS``; forgotten when the PUT fails or meets another revision). A
revision-checked PUT that succeeds means nothing changed the form between the stored revision
and our write, so the form's next event, if it is a status change, is ours: ``echo_candidates``
tells the poller not to read those forms, and ``take_echoes`` (the consumer's prepare) takes
each note once and gives the stored form with our status and the event's revision. A form with
other events in the same page, a note taken already (a second status change: someone else's),
a note older than ``ECHO_WINDOW`` or a stored form at another revision: read as before.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import structlog

from allegro_sync.adapters.allegro.client import AllegroRestClient
from allegro_sync.adapters.allegro.errors import (
    AllegroConflict,
    AllegroNotFound,
    AllegroRejected,
)
from allegro_sync.adapters.postgres import event_log, notifications, orders
from allegro_sync.contract import OrderEventMessage, OrderStatusChanged
from allegro_sync.errors import BadInput, Refused, TransientError

log = structlog.get_logger(__name__)

# What the seller may set (allegro-api.md 6.2/6.3); RETURNED is set by Allegro alone.
SELLER_STATUSES = (
    "NEW",
    "PROCESSING",
    "READY_FOR_SHIPMENT",
    "READY_FOR_PICKUP",
    "SENT",
    "PICKED_UP",
    "CANCELLED",
    "SUSPENDED",
)
# The journal event of a status change, ours or anyone's.
STATUS_EVENT = "FULFILLMENT_STATUS_CHANGED"
# A note of our own write is trusted this long (seconds): its echo comes within seconds.
ECHO_WINDOW = 600.0
# Spellings ERPs commonly use for the same states.
ALIASES = {"SHIPPED": "SENT", "CANCELED": "CANCELLED", "IN_PROGRESS": "PROCESSING"}


def allegro_status(erp_status: str) -> str:
    """Allegro's fulfillment status for the ERP's word; BadInput when there is none."""
    normal = erp_status.strip().upper().replace("-", "_").replace(" ", "_")
    normal = ALIASES.get(normal, normal)
    if normal == "RETURNED":
        raise BadInput("status RETURNED is set by Allegro only; a seller cannot set it")
    if normal not in SELLER_STATUSES:
        raise BadInput(
            f"unknown order status {erp_status!r}; accepted: {', '.join(SELLER_STATUSES)}"
        )
    return normal


@dataclass(frozen=True)
class PreparedFulfillment:
    """The status is set on Allegro; what the handler records."""

    account_id: int
    checkout_form_id: uuid.UUID
    status: str


async def set_fulfillment(
    allegro: AllegroRestClient, pool: asyncpg.Pool, message: OrderStatusChanged
) -> PreparedFulfillment:
    """Set the status on Allegro (the ``prepare`` step); raises what decides the fate."""
    status = allegro_status(message.status)
    form_id = message.checkout_form_id
    order = await pool.fetchrow(orders.OWNER, form_id)
    if order is None:
        raise BadInput(f"unknown checkout form {form_id}: no such order was received")
    account_id: int = order["account_id"]
    revision: str | None = order["revision"]
    try:
        await write_status(allegro, account_id, form_id, status, revision, pool=pool)
    except (AllegroNotFound, AllegroRejected) as exc:
        # 404 (gone, not this account's) or 422 (Allegro refuses the status for this order):
        # no retry can help; the seller sees why in the event log.
        await _refusal(pool, account_id, form_id, status, str(exc))
        raise Refused(str(exc)) from exc
    log.info("fulfillment_status_set", checkout_form_id=str(form_id), status=status)
    return PreparedFulfillment(account_id, form_id, status)


async def write_status(
    allegro: AllegroRestClient,
    account_id: int,
    form_id: uuid.UUID,
    status: str,
    revision: str | None,
    *,
    leave: Collection[str] = (),
    pool: asyncpg.Pool | None = None,
    bulk: bool = False,
) -> bool:
    """PUT ``status`` naming ``revision``; on 409 (a stale revision) read the form and try once
    more with its revision, unless it already has the status or one of ``leave`` (a status the
    caller must not overwrite). Whether the status was written. With ``pool``, the write is
    noted first, so that its echo in the order journal is not read again; ``bulk``: the
    requests yield to order traffic in the client's limiter."""
    path = f"/order/checkout-forms/{form_id}"
    noted = pool is not None and revision is not None
    if pool is not None and noted:
        await pool.execute(orders.NOTE_OWN_STATUS, form_id, status, revision)
    written = False
    try:
        await _put(allegro, account_id, path, status, revision, bulk)
        written = True
    except AllegroConflict:
        pass
    finally:
        if pool is not None and noted and not written:
            await pool.execute(orders.FORGET_OWN_STATUS, form_id, revision)
    if not written:
        # Our stored revision is stale (a buyer or another tool changed the form since):
        # read the current one and try once more (its echo is read as any other event).
        form: Mapping[str, Any] = await allegro.get(
            account_id, path, action="read checkout form", bulk=bulk
        )
        current = (form.get("fulfillment") or {}).get("status")
        if current == status or current in leave:
            return False
        try:
            await _put(allegro, account_id, path, status, form.get("revision"), bulk)
        except AllegroConflict as exc:
            raise TransientError(f"checkout form {form_id} keeps changing: {exc}") from exc
    return True


async def echo_candidates(
    pool: asyncpg.Pool, account_id: int, events: Sequence[Mapping[str, Any]]
) -> set[str]:
    """The forms of a journal page's (coalesced) events that may be the echo of our own status
    write: the poller leaves them to ``take_echoes`` instead of reading them."""
    ids = []
    for event in events:
        if event.get("type") != STATUS_EVENT:
            continue
        form_id = ((event.get("order") or {}).get("checkoutForm") or {}).get("id")
        if form_id:
            ids.append(uuid.UUID(str(form_id)))
    if not ids:
        return set()
    rows = await pool.fetch(orders.OWN_STATUS_PENDING, ids, ECHO_WINDOW)
    return {str(row["checkout_form_id"]) for row in rows}


async def take_echoes(
    pool: asyncpg.Pool, messages: Sequence[OrderEventMessage]
) -> dict[int, tuple[dict[str, Any], datetime]]:
    """Of a batch's order events without a form, those that are the echo of our own status
    write, by index: the stored form with our status and the event's revision, and the time
    the stored form was read (each note taken once)."""
    candidates: dict[uuid.UUID, int] = {}
    for index, m in enumerate(messages):
        ref = m.event.order.checkout_form
        if (
            m.form is None
            and m.event.type == STATUS_EVENT
            and not m.coalesced_event_ids
            and ref.revision is not None
            and ref.id not in candidates
        ):
            candidates[ref.id] = index
    if not candidates:
        return {}
    taken = await pool.fetch(orders.TAKE_OWN_STATUS, list(candidates), ECHO_WINDOW)
    echoes: dict[int, tuple[dict[str, Any], datetime]] = {}
    for row in taken:
        index = candidates[row["checkout_form_id"]]
        form = dict(row["form"] or {})
        if not form or row["form_read_at"] is None:
            continue
        form["fulfillment"] = {**(form.get("fulfillment") or {}), "status": row["own_status"]}
        form["revision"] = messages[index].event.order.checkout_form.revision
        echoes[index] = (form, row["form_read_at"])
    return echoes


async def _put(
    allegro: AllegroRestClient,
    account_id: int,
    path: str,
    status: str,
    revision: Any,
    bulk: bool = False,
) -> None:
    params = {"checkoutForm.revision": str(revision)} if revision else None
    await allegro.request(
        account_id,
        "PUT",
        path + "/fulfillment",
        action="set fulfillment status",
        params=params,
        json={"status": status},
        bulk=bulk,
    )


async def _refusal(
    pool: asyncpg.Pool, account_id: int, form_id: uuid.UUID, status: str, reason: str
) -> None:
    async with pool.acquire() as conn:
        await event_log.write(
            conn,
            account_id,
            "orders",
            "error",
            "fulfillment_status_refused",
            f"Allegro refused status {status} for order {form_id}: {reason}",
            details={"checkout_form_id": str(form_id), "status": status},
        )


async def record_fulfillment(prepared: PreparedFulfillment, conn: asyncpg.Connection) -> None:
    """In the batch transaction: the event log entry. No e-mail: Allegro tells the buyer the
    status itself and stops a seller's mail that repeats it (rules of 2 March 2026)."""
    row = await conn.fetchrow(orders.WITH_ACCOUNT, prepared.checkout_form_id)
    if row is None:
        return  # the order was deleted with its account meanwhile
    await event_log.write(
        conn,
        prepared.account_id,
        "orders",
        "info",
        "fulfillment_status_set",
        f"Order {prepared.checkout_form_id}: status {prepared.status} set on Allegro",
        details={"checkout_form_id": str(prepared.checkout_form_id), "status": prepared.status},
    )
    # the form changed through us: its journal events are read soon (delivered on commit)
    await notifications.wake_journal(conn, prepared.account_id, "order")
