"""Delivery status back to the ERP (issue 16, item 4): the carrier's tracking of the tracking
numbers on Allegro, read until each is delivered or returned.

``GET /order/carriers/{carrierId}/tracking?waybill=..`` takes up to ``WAYBILLS_PER_READ`` (20,
the spec's ``maxItems``) waybills of one carrier; one read serves that many tracking numbers
of one account. A round (``track_due``) takes the rows due (``shipments.DUE``: the first read
one interval after the tracking number went to Allegro, then every interval), groups them by
account and carrier, and for each group of 20:

- ``pace()`` first: the caller's share of the client's request budget (the reads go as bulk
  traffic too, behind order traffic in the client's limiter);
- the history's statuses newer than the last one stored are the changes (``changes``: a status
  that repeats the one before it, e.g. IN_TRANSIT at each hub, is no change);
- in one transaction per group: the row's last status and next read (``RECORD_READ``, guarded by
  the last status read before the request, so a second reader publishes nothing) and one
  ``shipment.status_changed`` per change into the outbox, its id made of the order, waybill,
  status and time: a restart, a read repeated, never publishes a change again;
- DELIVERED or RETURNED (or a status the carrier marks ``terminal``) ends the tracking;
  tracking numbers older than the give-up age, and carriers Allegro does not track (``OTHER``),
  end it without a read (``END_UNTRACKABLE``). A waybill the carrier does not know yet (no
  ``trackingDetails``) is read again an interval later.

A read that fails (Allegro unreachable, 5xx, 429) postpones its rows by ``retry_after``; a 400
(Allegro refuses the carrier or a waybill) postpones them by a whole interval and is logged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import structlog

from allegro_sync.adapters.allegro.client import AllegroRestClient
from allegro_sync.adapters.allegro.errors import AllegroError, AllegroRejected
from allegro_sync.adapters.broker.publisher import OutgoingMessage
from allegro_sync.adapters.broker.topology import EVENTS_EXCHANGE
from allegro_sync.adapters.postgres import outbox, shipments
from allegro_sync.contract import SHIPMENT_STATUS_CHANGED, ShipmentStatusChanged
from allegro_sync.errors import CredentialsDead, TransientError
from allegro_sync.metrics import Metrics

log = structlog.get_logger(__name__)

WAYBILLS_PER_READ = 20  # the spec's maxItems of ``waybill``
FINAL = {"DELIVERED": "delivered", "RETURNED": "returned"}
# Carriers whose parcels Allegro does not track (a name only, no carrier id to ask).
UNTRACKED_CARRIERS = ("OTHER",)
READ_TRACKING = "read parcel tracking"


@dataclass(frozen=True)
class TrackingTiming:
    """How often a tracking number is read, when tracking gives up, how much a round takes."""

    interval: float = 7200.0  # seconds between two reads of one tracking number
    give_up: float = 30 * 86400.0  # seconds after it was sent
    retry_after: float = 300.0  # after a failed read
    batch: int = 2000  # rows per round
    concurrency: int = 4  # reads at once


@dataclass(frozen=True)
class Change:
    """A new status of one parcel."""

    status: str
    occurred_at: datetime


@dataclass(frozen=True)
class Reading:
    """What one read tells about one tracking number (pure ``read_history``)."""

    changes: list[Change]
    last: Change | None  # the newest status after the read (None: none yet)
    done: str | None  # delivered, returned, ended (None: still on its way)


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def read_history(
    details: Mapping[str, Any] | None, last_status: str | None, last_at: datetime | None
) -> Reading:
    """The changes in a waybill's ``trackingDetails`` after the stored ``last_status`` at
    ``last_at``: every status newer than it whose code differs from the one before (pure)."""
    statuses = []
    for entry in (details or {}).get("statuses") or []:
        at, code = _time(entry.get("occurredAt")), entry.get("code")
        if at is not None and isinstance(code, str) and code:
            statuses.append((at, code, bool(entry.get("terminal"))))
    statuses.sort(key=lambda s: s[0])
    previous = last_status
    changes: list[Change] = []
    terminal = False
    for at, code, ends in statuses:
        if last_at is not None and at <= last_at:
            continue
        if code != previous:
            changes.append(Change(code, at))
            previous = code
        terminal = ends
    last = changes[-1] if changes else None
    if last is None and last_status is not None and last_at is not None:
        last = Change(last_status, last_at)
    done = None
    if last is not None:
        done = FINAL.get(last.status) or ("ended" if terminal else None)
    return Reading(changes, last, done)


def groups(rows: Iterable[asyncpg.Record]) -> list[list[asyncpg.Record]]:
    """Due rows by account and carrier, at most ``WAYBILLS_PER_READ`` a group."""
    by_key: dict[tuple[int, str], list[asyncpg.Record]] = {}
    for row in rows:
        by_key.setdefault((row["account_id"], row["carrier_id"]), []).append(row)
    out = []
    for members in by_key.values():
        for start in range(0, len(members), WAYBILLS_PER_READ):
            out.append(members[start : start + WAYBILLS_PER_READ])
    return out


def status_message(row: asyncpg.Record, change: Change) -> OutgoingMessage:
    """The ``shipment.status_changed`` of one change, its id the change itself."""
    body = ShipmentStatusChanged(
        checkout_form_id=row["checkout_form_id"],
        waybill=row["waybill"],
        carrier_id=row["carrier_id"],
        status=change.status,
        occurred_at=change.occurred_at,
    ).body()
    return OutgoingMessage(
        exchange=EVENTS_EXCHANGE,
        routing_key=SHIPMENT_STATUS_CHANGED,
        message_id=(
            f"shipment.status_changed:{row['checkout_form_id']}:{row['waybill']}"
            f":{change.status}:{body['occurred_at']}"
        ),
        payload=body,
    )


async def track_due(
    allegro: AllegroRestClient,
    pool: asyncpg.Pool,
    metrics: Metrics,
    pace: Callable[[], Awaitable[None]],
    now: datetime,
    timing: TrackingTiming,
    leading: Callable[[], Awaitable[bool]] | None = None,
) -> int:
    """One round at ``now``: end what cannot be tracked, then read every due tracking number,
    ``WAYBILLS_PER_READ`` a request. The tracking numbers read."""
    ended = await pool.fetch(
        shipments.END_UNTRACKABLE,
        now - timedelta(seconds=timing.give_up),
        list(UNTRACKED_CARRIERS),
    )
    for row in ended:
        metrics.tracking_ended.labels(row["tracking_done"]).inc()
    rows = await pool.fetch(shipments.DUE, now, timing.interval, timing.batch)
    metrics.tracking_due.set(len(rows))
    limit = asyncio.Semaphore(timing.concurrency)

    async def one(group: list[asyncpg.Record]) -> int:
        async with limit:
            if leading is not None and not await leading():
                return 0
            await pace()
            return await _read_group(allegro, pool, metrics, group, now, timing)

    read = await asyncio.gather(*(one(g) for g in groups(rows)))
    return sum(read)


async def _read_group(
    allegro: AllegroRestClient,
    pool: asyncpg.Pool,
    metrics: Metrics,
    group: Sequence[asyncpg.Record],
    now: datetime,
    timing: TrackingTiming,
) -> int:
    account_id, carrier = group[0]["account_id"], group[0]["carrier_id"]
    ids = [row["id"] for row in group]
    try:
        body = await allegro.get(
            account_id,
            f"/order/carriers/{carrier}/tracking",
            action=READ_TRACKING,
            params={"waybill": [row["waybill"] for row in group]},
            bulk=True,
        )
    except AllegroRejected as exc:
        log.warning("tracking_refused", account_id=account_id, carrier=carrier, error=str(exc))
        await pool.execute(shipments.POSTPONE, ids, now + timedelta(seconds=timing.interval))
        return 0
    except (AllegroError, CredentialsDead, TransientError) as exc:
        log.warning("tracking_failed", account_id=account_id, carrier=carrier, error=str(exc))
        await pool.execute(shipments.POSTPONE, ids, now + timedelta(seconds=timing.retry_after))
        return 0
    histories = {
        str(entry.get("waybill")): entry.get("trackingDetails")
        for entry in (body or {}).get("waybills") or []
        if isinstance(entry, Mapping)
    }
    next_at = now + timedelta(seconds=timing.interval)
    metrics.tracking_reads.inc(len(group))
    async with pool.acquire() as conn, conn.transaction():
        messages: list[OutgoingMessage] = []
        for row in group:
            reading = read_history(
                histories.get(row["waybill"]), row["delivery_status"], row["delivery_status_at"]
            )
            last = reading.last
            written = await conn.fetchval(
                shipments.RECORD_READ,
                row["id"],
                row["delivery_status"],
                row["delivery_status_at"],
                last.status if last else None,
                last.occurred_at if last else None,
                None if reading.done else next_at,
                reading.done,
            )
            if written is None:
                continue  # read and written by another round meanwhile
            messages.extend(status_message(row, change) for change in reading.changes)
            for change in reading.changes:
                metrics.tracking_changes.labels(change.status).inc()
            if reading.done:
                metrics.tracking_ended.labels(reading.done).inc()
        await outbox.enqueue_many(conn, messages)
    return len(group)
