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
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass
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
from allegro_sync.contract import OrderStatusChanged
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
        await write_status(allegro, account_id, form_id, status, revision)
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
) -> bool:
    """PUT ``status`` naming ``revision``; on 409 (a stale revision) read the form and try once
    more with its revision, unless it already has the status or one of ``leave`` (a status the
    caller must not overwrite). Whether the status was written."""
    path = f"/order/checkout-forms/{form_id}"
    try:
        await _put(allegro, account_id, path, status, revision)
        return True
    except AllegroConflict:
        # Our stored revision is stale (a buyer or another tool changed the form since):
        # read the current one and try once more.
        form: Mapping[str, Any] = await allegro.get(account_id, path, action="read checkout form")
        current = (form.get("fulfillment") or {}).get("status")
        if current == status or current in leave:
            return False
        try:
            await _put(allegro, account_id, path, status, form.get("revision"))
        except AllegroConflict as exc:
            raise TransientError(f"checkout form {form_id} keeps changing: {exc}") from exc
        return True


async def _put(
    allegro: AllegroRestClient, account_id: int, path: str, status: str, revision: Any
) -> None:
    params = {"checkoutForm.revision": str(revision)} if revision else None
    await allegro.request(
        account_id,
        "PUT",
        path + "/fulfillment",
        action="set fulfillment status",
        params=params,
        json={"status": status},
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
