"""SQL for parcels (parcels sent with Allegro: create commands, labels, cancel, pickup)."""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from allegro_sync.adapters.postgres.pool import Db

STATUSES = ("requested", "creating", "created", "failed", "cancelling", "cancelled")
# NOTIFY channel of ``daemon/parcel_service.py``: a row became due.
CHANNEL = "allegro_sync_parcels"

# The order a parcel is for, with its account's sender and default package.
ORDER = """
SELECT o.checkout_form_id, o.account_id, o.form, a.shipping_sender, a.default_package, a.active
  FROM orders o JOIN accounts a ON a.id = o.account_id
 WHERE o.checkout_form_id = $1
"""
# A new parcel with its command id (chosen before any request) and the command's input.
INSERT = """
INSERT INTO parcels (account_id, checkout_form_id, command_id, request, label_format)
VALUES ($1, $2, $3, $4, $5)
RETURNING id
"""
# Claim up to ``$1`` due rows for ``$2`` seconds (the lease; replicas share the work).
CLAIM = """
UPDATE parcels SET next_attempt_at = now() + make_interval(secs => $2),
       attempts = attempts + 1, updated_at = now()
 WHERE id IN (SELECT id FROM parcels
               WHERE status IN ('requested', 'creating', 'cancelling')
                 AND next_attempt_at <= now()
               ORDER BY next_attempt_at
               LIMIT $1
               FOR UPDATE SKIP LOCKED)
RETURNING id, account_id, checkout_form_id, command_id, request, label_format, status,
          attempts, allegro_shipment_id, cancel_command_id, cancel_sent_at, failures,
          EXTRACT(EPOCH FROM now() - step_started_at)::float8 AS step_seconds
"""
# Seconds until the next row is due (NULL: none waits).
NEXT_DUE = """
SELECT GREATEST(0, EXTRACT(EPOCH FROM min(next_attempt_at) - now()))::float8
  FROM parcels WHERE status IN ('requested', 'creating', 'cancelling')
"""
# The create command reached Allegro: follow it in ``$2`` seconds.
MARK_SENT = """
UPDATE parcels SET status = 'creating', next_attempt_at = now() + make_interval(secs => $2),
       failures = 0, updated_at = now()
 WHERE id = $1
"""
# Allegro does not know the command (lost before it arrived): send it again now.
MARK_UNSENT = """
UPDATE parcels SET status = 'requested', next_attempt_at = now(), updated_at = now()
 WHERE id = $1
"""
# Allegro answered that the command is still in progress: read it again in ``$2`` seconds.
LATER = """
UPDATE parcels SET next_attempt_at = now() + make_interval(secs => $2), failures = 0,
       updated_at = now()
 WHERE id = $1
"""
# A failure a retry may cure: one more of the step's failures, try again in ``$2`` seconds.
FAILED_ATTEMPT = """
UPDATE parcels SET next_attempt_at = now() + make_interval(secs => $2),
       failures = failures + 1, updated_at = now()
 WHERE id = $1
"""
# Allegro made the parcel: its id, waybill, carrier and label.
MARK_CREATED = """
UPDATE parcels SET status = 'created', allegro_shipment_id = $2, waybill = $3, carrier_id = $4,
       label = $5, reason = NULL, errors = NULL, trace_id = NULL, updated_at = now()
 WHERE id = $1
"""
# Allegro refused the parcel (``$2`` its words, ``$3`` its errors, ``$4`` its trace id).
MARK_FAILED = """
UPDATE parcels SET status = 'failed', reason = $2, errors = $3, trace_id = $4, updated_at = now()
 WHERE id = $1
"""
# The parcel of Allegro shipment ``$1``, locked (a cancel decides on it).
BY_SHIPMENT_FOR_UPDATE = """
SELECT id, account_id, checkout_form_id, status FROM parcels
 WHERE allegro_shipment_id = $1 FOR UPDATE
"""
# A cancel of parcel ``$1`` under command ``$2``, to be sent now.
START_CANCEL = """
UPDATE parcels SET status = 'cancelling', cancel_command_id = $2, cancel_sent_at = NULL,
       next_attempt_at = now(), reason = NULL, errors = NULL, trace_id = NULL,
       failures = 0, step_started_at = now(), updated_at = now()
 WHERE id = $1
"""
# The cancel command reached Allegro: follow it in ``$2`` seconds.
MARK_CANCEL_SENT = """
UPDATE parcels SET cancel_sent_at = now(), next_attempt_at = now() + make_interval(secs => $2),
       failures = 0, updated_at = now()
 WHERE id = $1
"""
# Allegro does not know the cancel command: send it again now.
MARK_CANCEL_UNSENT = """
UPDATE parcels SET cancel_sent_at = NULL, next_attempt_at = now(), updated_at = now()
 WHERE id = $1
"""
# Allegro cancelled the parcel.
MARK_CANCELLED = "UPDATE parcels SET status = 'cancelled', updated_at = now() WHERE id = $1"
# Allegro refused the cancel: the parcel stays created, with the refusal.
MARK_CANCEL_REFUSED = """
UPDATE parcels SET status = 'created', reason = $2, errors = $3, trace_id = $4,
       updated_at = now()
 WHERE id = $1
"""
# A stored label: its format and bytes (``$1`` Allegro's shipment id).
LABEL = "SELECT label_format, label FROM parcels WHERE allegro_shipment_id = $1"
# Of the shipments ``$2``, those that are parcels of account ``$1`` and not cancelled.
OF_ACCOUNT = """
SELECT allegro_shipment_id FROM parcels
 WHERE account_id = $1 AND allegro_shipment_id = ANY($2::text[]) AND status <> 'cancelled'
"""
# The account's sender (the pickup address).
SENDER = "SELECT shipping_sender FROM accounts WHERE id = $1"
# The pickup ``$2`` takes the parcels ``$1``.
SET_PICKUP = """
UPDATE parcels SET pickup_id = $2, updated_at = now() WHERE allegro_shipment_id = ANY($1::text[])
"""
# The parcels of the listed Allegro shipments (for the admin list's ``parcel`` field).
BY_SHIPMENTS = """
SELECT allegro_shipment_id, id, status, label_format, command_id, pickup_id, created_at,
       reason, errors, trace_id
  FROM parcels WHERE allegro_shipment_id = ANY($1::text[])
"""
# The parcels ``$1`` (the admin list's parcels that carry no tracking number yet).
BY_IDS = """
SELECT allegro_shipment_id, id, status, label_format, command_id, pickup_id, created_at,
       reason, errors, trace_id
  FROM parcels WHERE id = ANY($1::bigint[])
"""


async def label(conn: Db, shipment_id: str) -> asyncpg.Record | None:
    """The stored label of Allegro shipment ``shipment_id`` (None: no such parcel)."""
    row: asyncpg.Record | None = await conn.fetchrow(LABEL, shipment_id)
    return row


async def of_account(conn: Db, account_id: int, shipment_ids: Sequence[str]) -> set[str]:
    """Which of ``shipment_ids`` are the account's parcels (not cancelled)."""
    rows = await conn.fetch(OF_ACCOUNT, account_id, list(shipment_ids))
    return {str(r["allegro_shipment_id"]) for r in rows}


async def by_shipments(conn: Db, shipment_ids: Sequence[str]) -> dict[str, asyncpg.Record]:
    """Parcels by Allegro shipment id."""
    rows = await conn.fetch(BY_SHIPMENTS, list(shipment_ids))
    return {str(r["allegro_shipment_id"]): r for r in rows}


async def by_ids(conn: Db, ids: Sequence[int]) -> dict[int, asyncpg.Record]:
    """Parcels by their own id."""
    rows = await conn.fetch(BY_IDS, list(ids))
    return {int(r["id"]): r for r in rows}
