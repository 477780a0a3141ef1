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
# Claim up to ``$1`` due rows for ``$2`` seconds (the lease; replicas share the work). The row's
# ``attempts`` after the claim is the claim's token: every step's write below names it and the
# status it read (``$n``/``$m``), so a step that outlived its lease, after another replica claimed
# the row again, writes nothing (and publishes nothing). ``active``: the account is switched on.
CLAIM = """
UPDATE parcels p SET next_attempt_at = now() + make_interval(secs => $2),
       attempts = p.attempts + 1, updated_at = now()
  FROM accounts a
 WHERE a.id = p.account_id
   AND p.id IN (SELECT id FROM parcels
                 WHERE status IN ('requested', 'creating', 'cancelling')
                   AND next_attempt_at <= now()
                 ORDER BY next_attempt_at
                 LIMIT $1
                 FOR UPDATE SKIP LOCKED)
RETURNING p.id, p.account_id, p.checkout_form_id, p.command_id, p.request, p.label_format,
          p.status, p.attempts, p.allegro_shipment_id, p.cancel_command_id, p.cancel_sent_at,
          p.sent_at, a.active, p.failures,
          EXTRACT(EPOCH FROM now() - p.step_started_at)::float8 AS step_seconds
"""
# Seconds until the next row is due (NULL: none waits).
NEXT_DUE = """
SELECT GREATEST(0, EXTRACT(EPOCH FROM min(next_attempt_at) - now()))::float8
  FROM parcels WHERE status IN ('requested', 'creating', 'cancelling')
"""
# The create command is about to go out (claim ``$2``): a later attempt reads it on Allegro first.
MARK_POSTING = """
UPDATE parcels SET sent_at = now(), updated_at = now()
 WHERE id = $1 AND attempts = $2 AND status = 'requested'
RETURNING id
"""
# The create command reached Allegro: follow it in ``$2`` seconds (claim ``$3``).
MARK_SENT = """
UPDATE parcels SET status = 'creating', next_attempt_at = now() + make_interval(secs => $2),
       failures = 0, updated_at = now()
 WHERE id = $1 AND attempts = $3 AND status = 'requested'
"""
# Allegro does not know the command (lost before it arrived): send it again now (claim ``$2``).
MARK_UNSENT = """
UPDATE parcels SET status = 'requested', next_attempt_at = now(), updated_at = now()
 WHERE id = $1 AND attempts = $2 AND status = 'creating'
"""
# Allegro answered that the command is still in progress: read it again in ``$2`` seconds, for
# claim ``$3`` of a row in status ``$4``.
LATER = """
UPDATE parcels SET next_attempt_at = now() + make_interval(secs => $2), failures = 0,
       updated_at = now()
 WHERE id = $1 AND attempts = $3 AND status = $4
"""
# A failure a retry may cure: one more of the step's failures, try again in ``$2`` seconds, for
# claim ``$3`` of a row in status ``$4``.
FAILED_ATTEMPT = """
UPDATE parcels SET next_attempt_at = now() + make_interval(secs => $2),
       failures = failures + 1, updated_at = now()
 WHERE id = $1 AND attempts = $3 AND status = $4
"""
# Allegro made the parcel: its id, waybills (``$3`` the first, ``$6`` all), carrier and label,
# for claim ``$7``; nothing returned: another attempt got there first (or a cancel followed).
MARK_CREATED = """
UPDATE parcels SET status = 'created', allegro_shipment_id = $2, waybill = $3, carrier_id = $4,
       label = $5, waybills = $6, reason = NULL, errors = NULL, trace_id = NULL,
       updated_at = now()
 WHERE id = $1 AND attempts = $7 AND status = 'creating'
RETURNING id
"""
# Allegro refused the parcel (``$2`` its words, ``$3`` its errors, ``$4`` its trace id, ``$7`` its
# shipment id when Allegro made one), for claim ``$5`` of a row in status ``$6``.
MARK_FAILED = """
UPDATE parcels SET status = 'failed', reason = $2, errors = $3, trace_id = $4,
       allegro_shipment_id = COALESCE(allegro_shipment_id, $7), updated_at = now()
 WHERE id = $1 AND attempts = $5 AND status = $6
RETURNING id
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
# The cancel command reached Allegro: follow it in ``$2`` seconds (claim ``$3``).
MARK_CANCEL_SENT = """
UPDATE parcels SET cancel_sent_at = now(), next_attempt_at = now() + make_interval(secs => $2),
       failures = 0, updated_at = now()
 WHERE id = $1 AND attempts = $3 AND status = 'cancelling'
"""
# Allegro does not know the cancel command: send it again now (claim ``$2``).
MARK_CANCEL_UNSENT = """
UPDATE parcels SET cancel_sent_at = NULL, next_attempt_at = now(), updated_at = now()
 WHERE id = $1 AND attempts = $2 AND status = 'cancelling'
"""
# Allegro cancelled the parcel (claim ``$2``); nothing returned: another attempt got there first.
MARK_CANCELLED = """
UPDATE parcels SET status = 'cancelled', updated_at = now()
 WHERE id = $1 AND attempts = $2 AND status = 'cancelling'
RETURNING id
"""
# Allegro refused the cancel: the parcel stays created, with the refusal (claim ``$5``).
MARK_CANCEL_REFUSED = """
UPDATE parcels SET status = 'created', reason = $2, errors = $3, trace_id = $4,
       updated_at = now()
 WHERE id = $1 AND attempts = $5 AND status = 'cancelling'
RETURNING id
"""
# A stored label: its format and bytes (``$1`` Allegro's shipment id).
LABEL = "SELECT label_format, label FROM parcels WHERE allegro_shipment_id = $1"
# Of the shipments ``$2``, those that are parcels of account ``$1`` and not cancelled.
OF_ACCOUNT = """
SELECT allegro_shipment_id FROM parcels
 WHERE account_id = $1 AND allegro_shipment_id = ANY($2::text[]) AND status <> 'cancelled'
"""
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
