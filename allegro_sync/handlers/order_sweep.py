"""The order sweep (design.md R2, issue 13): a safety net under the order journal.

Allegro has lost READY_FOR_PROCESSING events (staff confirmed, AA#8623): a form paid with no
event is never read by the journal's handler, so it never becomes an order. The sweep lists an
active account's checkout forms updated since its last sweep (``updatedAt``, which moves on
every buyer action) and hands each one the journal did not deliver (none stored, or stored as
of an older ``updatedAt``) to the order handler, as the orders-from backfill does: an
``allegro.order_backfill`` message with the form as listed. The same handler and the same
idempotency apply (``order.created`` once per form for ever), so a form the journal delivers
too, or the sweep twice, still makes one order.

The window ends ``lag`` before now: the journal delivers a fresh change within seconds, and
the sweep should count only what it did not. ``orders_swept_to`` moves only when a sweep of
the whole window went through, and not while the account is off: the first sweep after a
reactivation covers the time it was off.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from allegro_sync.adapters.allegro.checkout_forms import forms_updated_between
from allegro_sync.adapters.allegro.client import AllegroRestClient
from allegro_sync.adapters.broker.publisher import ConfirmingPublisher, OutgoingMessage
from allegro_sync.adapters.broker.topology import JOURNAL_EXCHANGE
from allegro_sync.adapters.postgres import accounts as account_store
from allegro_sync.adapters.postgres import event_log
from allegro_sync.adapters.postgres import orders as order_store
from allegro_sync.contract import ORDER_BACKFILL, OrderBackfillMessage

LOGGED_FORMS = 20  # form ids named in the event-log entry


@dataclass
class SweepResult:
    """One account's sweep: the window, the forms listed, those handed to the order handler,
    and what it cost (Allegro requests)."""

    account_id: int
    since: datetime
    until: datetime
    listed: int = 0
    found: list[str] = field(default_factory=list)
    requests: int = 0


def _updated_at(form: Mapping[str, Any]) -> datetime | None:
    value = form.get("updatedAt")
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None


def undelivered(
    forms: Sequence[Mapping[str, Any]], stored: Mapping[uuid.UUID, datetime | None]
) -> list[Mapping[str, Any]]:
    """The listed forms the journal did not deliver: not stored, or stored as of an older
    buyer action (``updatedAt``) than the listing shows."""
    missing = []
    for form in forms:
        known = stored.get(uuid.UUID(str(form["id"])), None)
        listed = _updated_at(form)
        if known is None or (listed is not None and known < listed):
            missing.append(form)
    return missing


def sweep_message(account_id: int, form: Mapping[str, Any], read_at: datetime) -> OutgoingMessage:
    """The order handler's message for a form the sweep found (its id from the form's
    revision: a form found again unchanged is the same message)."""
    body = OrderBackfillMessage(
        account_id=account_id,
        checkout_form_id=uuid.UUID(str(form["id"])),
        form=dict(form),
        form_read_at=read_at,
    )
    return OutgoingMessage(
        exchange=JOURNAL_EXCHANGE,
        routing_key=ORDER_BACKFILL,
        message_id=f"order-sweep:{form['id']}:{form.get('revision')}",
        payload=body.body(),
    )


async def sweep_orders(
    allegro: AllegroRestClient,
    pool: asyncpg.Pool,
    publisher: ConfirmingPublisher,
    account_id: int,
    *,
    now: datetime,
    lag: timedelta,
) -> SweepResult | None:
    """Sweep one account's forms updated since its last sweep and until ``now - lag``; None
    when the account is not active. Allegro failures propagate (the window stays, the next
    sweep tries it again)."""
    since = await account_store.sweep_start(pool, account_id)
    if since is None:
        return None
    result = SweepResult(account_id, since, now - lag)
    if result.until <= since:
        return result
    seen: set[str] = set()
    async for page in forms_updated_between(allegro, account_id, since, result.until):
        result.requests += 1
        forms = [f for f in page.forms if str(f["id"]) not in seen]
        seen.update(str(f["id"]) for f in forms)
        result.listed += len(forms)
        if not forms:
            continue
        stored = await order_store.stored_updated_at(pool, [uuid.UUID(str(f["id"])) for f in forms])
        missing = undelivered(forms, stored)
        if missing:
            await publisher.publish_many(
                [sweep_message(account_id, form, page.read_at) for form in missing]
            )
            result.found.extend(str(form["id"]) for form in missing)
    async with pool.acquire() as conn, conn.transaction():
        await account_store.swept(conn, account_id, result.until)
        if result.found:
            await _log_found(conn, result)
    return result


async def _log_found(conn: asyncpg.Connection, result: SweepResult) -> None:
    count = len(result.found)
    forms = "checkout form" if count == 1 else "checkout forms"
    await event_log.write(
        conn,
        result.account_id,
        "orders",
        "warning",
        "order_sweep_found",
        f"The order sweep found {count} {forms} the order journal had not delivered (an event"
        " Allegro did not write, or a purchase made while the account was off); handed to"
        " order handling: "
        + ", ".join(result.found[:LOGGED_FORMS])
        + (f" and {count - LOGGED_FORMS} more" if count > LOGGED_FORMS else ""),
        details={
            "checkout_form_ids": result.found[:LOGGED_FORMS],
            "found": count,
            "listed": result.listed,
            "requests": result.requests,
            "since": result.since.isoformat(),
            "until": result.until.isoformat(),
        },
    )
