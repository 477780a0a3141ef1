"""SQL for shipments (tracking numbers sent to Allegro, one row per order and waybill)."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from allegro_sync.adapters.postgres.pool import Db

# The order a tracking number is for: its account and whether it marks orders SENT, the stored
# revision and fulfillment status, and its lines ([{id, quantity, ...}] as the form has them).
ORDER = """
SELECT o.checkout_form_id, o.account_id, o.revision, a.mark_sent_on_tracking,
       o.form -> 'fulfillment' ->> 'status' AS fulfillment_status,
       o.form -> 'lineItems' AS line_items
  FROM orders o JOIN accounts a ON a.id = o.account_id
 WHERE o.checkout_form_id = $1
"""
# Claim the (order, waybill) row for an attempt, creating it, with a lease of ``$7`` seconds:
# a row not yet on Allegro and not claimed by another attempt takes the message's carrier and
# lines (a refused one starts again). Nothing returned: it is on Allegro or claimed (``STATE``).
CLAIM = """
INSERT INTO shipments (checkout_form_id, account_id, waybill, carrier_id, carrier_name,
                       line_items, claimed_until)
VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7))
ON CONFLICT (checkout_form_id, waybill) DO UPDATE
   SET carrier_id = excluded.carrier_id, carrier_name = excluded.carrier_name,
       line_items = excluded.line_items, claimed_until = excluded.claimed_until,
       requested_at = CASE WHEN shipments.status = 'refused' THEN NULL
                           ELSE shipments.requested_at END,
       status = 'pending', error = NULL
 WHERE shipments.status <> 'sent'
   AND (shipments.claimed_until IS NULL OR shipments.claimed_until < now())
RETURNING id, requested_at, claimed_until
"""
# The row of (order ``$1``, waybill ``$2``): whether it is on Allegro, its lease, whether the
# fulfillment status was dealt with.
STATE = """
SELECT id, status, claimed_until > now() AS claimed, fulfillment_at
  FROM shipments WHERE checkout_form_id = $1 AND waybill = $2
"""
# The POST is about to go out: an attempt after a crash reads Allegro's list first. Only while
# the attempt's lease ``$2`` (its ``claimed_until``) is still held, which is renewed for ``$3``
# seconds (the POST's own wait and time); nothing returned: the lease ran out (another attempt
# may hold it now), so this one does not post.
MARK_REQUESTED = """
UPDATE shipments SET requested_at = now(), claimed_until = now() + make_interval(secs => $3)
 WHERE id = $1 AND claimed_until = $2 AND claimed_until > now()
RETURNING claimed_until
"""
# On Allegro under shipment id ``$2``.
MARK_SENT = """
UPDATE shipments SET status = 'sent', allegro_shipment_id = $2, sent_at = now(),
       claimed_until = NULL, error = NULL
 WHERE id = $1
"""
# Allegro refused it with ``$2``.
MARK_REFUSED = """
UPDATE shipments SET status = 'refused', error = $2, claimed_until = NULL WHERE id = $1
"""
# The attempt failed before an answer (a retry follows): its lease ``$2`` is given back (not one
# another attempt took after it ran out).
RELEASE = "UPDATE shipments SET claimed_until = NULL WHERE id = $1 AND claimed_until = $2"
# The order's fulfillment status was set to SENT, found further along, or left (setting off).
MARK_FULFILLMENT = """
UPDATE shipments SET fulfillment_at = now(), claimed_until = NULL WHERE id = $1
"""
# Rows on Allegro whose status step is left, of active accounts, not leased: leased for ``$1``
# seconds, at most ``$2``, oldest first (another replica skips them); each claim is one more
# attempt, the first one's time kept. The attempts so far and the seconds since the first.
CLAIM_STATUS_STEP = """
UPDATE shipments SET claimed_until = now() + make_interval(secs => $1),
       status_step_attempts = status_step_attempts + 1,
       status_step_since = COALESCE(status_step_since, now())
 WHERE id IN (
       SELECT s.id FROM shipments s JOIN accounts a ON a.id = s.account_id
        WHERE s.status = 'sent' AND s.fulfillment_at IS NULL AND a.active
          AND (s.claimed_until IS NULL OR s.claimed_until < now())
        ORDER BY s.sent_at
        LIMIT $2
          FOR UPDATE OF s SKIP LOCKED)
RETURNING id, checkout_form_id, waybill, status_step_attempts,
          EXTRACT(EPOCH FROM now() - status_step_since)::float8 AS status_step_seconds
"""
# The status step of row ``$1`` is given up with ``$2`` (it is not tried again).
GIVE_UP_STATUS_STEP = """
UPDATE shipments SET fulfillment_at = now(), status_step_error = $2, claimed_until = NULL
 WHERE id = $1
"""
# The admin list: filters $1-$3 (each NULL for "any"; ``$3`` the row's status, or ``$7`` the
# carrier's delivery status), keyset after ($4, $8, $5) (created at, kind, id), limit $6. The
# tracking numbers (kind ``s``) and the parcels sent with Allegro that carry none yet (kind
# ``p``: requested, being made, failed; a made one is listed as its tracking number), the
# parcel's state as the row's: requested or being made ``pending``, failed ``refused`` with
# Allegro's words as ``error``.
LIST = """
SELECT * FROM (
    SELECT 's' AS kind, id, checkout_form_id, account_id, waybill, carrier_id, carrier_name,
           line_items, status, allegro_shipment_id, error, created_at, sent_at, fulfillment_at,
           delivery_status, delivery_status_at, tracking_done, NULL::bigint AS parcel_id
      FROM shipments
     WHERE ($1::bigint IS NULL OR account_id = $1)
       AND ($2::uuid IS NULL OR checkout_form_id = $2)
       AND ($3::text IS NULL OR status = $3)
       AND ($7::text IS NULL OR delivery_status = $7)
       AND ($4::timestamptz IS NULL OR (created_at, 's', id) < ($4, $8::text, $5::bigint))
    UNION ALL
    SELECT 'p', p.id, p.checkout_form_id, p.account_id, p.waybill, p.carrier_id, NULL, NULL,
           CASE WHEN p.status = 'failed' THEN 'refused'
                WHEN p.status IN ('requested', 'creating') THEN 'pending'
                ELSE 'sent' END,
           p.allegro_shipment_id, p.reason, p.created_at, NULL, NULL, NULL, NULL, NULL, p.id
      FROM parcels p
     WHERE ($1::bigint IS NULL OR p.account_id = $1)
       AND ($2::uuid IS NULL OR p.checkout_form_id = $2)
       AND ($3::text IS NULL OR $3 = CASE WHEN p.status = 'failed' THEN 'refused'
                                          WHEN p.status IN ('requested', 'creating')
                                          THEN 'pending' ELSE 'sent' END)
       AND $7::text IS NULL
       AND ($4::timestamptz IS NULL OR (p.created_at, 'p', p.id) < ($4, $8::text, $5::bigint))
       AND NOT EXISTS (SELECT 1 FROM shipments s
                        WHERE s.allegro_shipment_id = p.allegro_shipment_id)
) AS listed
 ORDER BY created_at DESC, kind DESC, id DESC
 LIMIT $6
"""

# --- tracking (the carrier's delivery status) ---------------------------------------------
# Tracking numbers on Allegro that are still tracked, of active accounts, whose next read is due
# at ``$1`` (the first: ``$2`` seconds after it was sent), most overdue first, at most ``$3``.
DUE = """
SELECT s.id, s.account_id, s.checkout_form_id, s.waybill, s.carrier_id, s.sent_at,
       s.delivery_status, s.delivery_status_at
  FROM shipments s JOIN accounts a ON a.id = s.account_id
 WHERE s.status = 'sent' AND s.tracking_done IS NULL AND a.active
   AND COALESCE(s.tracking_next_at, s.sent_at + make_interval(secs => $2)) <= $1
 ORDER BY COALESCE(s.tracking_next_at, s.sent_at + make_interval(secs => $2)), s.id
 LIMIT $3
"""
# Tracked rows sent before ``$1`` (the give-up age), and rows of carriers in ``$2`` that Allegro
# does not track: tracking ends. The rows ended, with why.
END_UNTRACKABLE = """
UPDATE shipments
   SET tracking_done = CASE WHEN carrier_id = ANY($2::text[]) THEN 'untracked' ELSE 'given_up' END,
       tracking_next_at = NULL
 WHERE status = 'sent' AND tracking_done IS NULL
   AND (sent_at < $1 OR carrier_id = ANY($2::text[]))
RETURNING id, account_id, checkout_form_id, waybill, tracking_done
"""
# A read of row ``$1``: the last status ``$4`` at ``$5``, the next read at ``$6``, tracking
# ended with ``$7`` (NULL: not ended), only if the row still has the last status ``$2`` at
# ``$3`` as read before the request (another reader may have written meanwhile: then this one
# publishes nothing). The row when written.
RECORD_READ = """
UPDATE shipments
   SET delivery_status = $4, delivery_status_at = $5, tracking_next_at = $6,
       tracking_done = $7, tracking_reads = tracking_reads + 1
 WHERE id = $1 AND status = 'sent' AND tracking_done IS NULL
   AND delivery_status IS NOT DISTINCT FROM $2
   AND delivery_status_at IS NOT DISTINCT FROM $3
RETURNING id
"""
# The read failed (Allegro unreachable, limited): try the rows ``$1`` again at ``$2``.
POSTPONE = "UPDATE shipments SET tracking_next_at = $2 WHERE id = ANY($1::bigint[])"


async def list_page(
    conn: Db,
    *,
    account_id: int | None,
    checkout_form_id: uuid.UUID | None,
    status: str | None,
    after: tuple[datetime | None, str, int | None],
    limit: int,
    delivery_status: str | None = None,
) -> list[asyncpg.Record]:
    """A page of ``LIST``, newest first, after the keyset ``after`` (created at, kind ``s`` a
    tracking number or ``p`` a parcel without one, id)."""
    created_at, kind, row_id = after
    rows: list[asyncpg.Record] = await conn.fetch(
        LIST, account_id, checkout_form_id, status, created_at, row_id, limit, delivery_status, kind
    )
    return rows


# A parcel Allegro made (``adapters/postgres/parcels.py``) carries its own tracking numbers, one
# row per package: listed with the others, tracked, and a ``shipment.added`` with the same
# waybill adds nothing. Its status step is left (``fulfillment_at`` NULL), so the order becomes
# SENT by the same rule as with any tracking number (``mark_sent_on_tracking``).
ADD_PARCEL = """
INSERT INTO shipments (checkout_form_id, account_id, waybill, carrier_id, status,
                       allegro_shipment_id, sent_at)
VALUES ($1, $2, $3, $4, 'sent', $5, now())
ON CONFLICT (checkout_form_id, waybill) DO NOTHING
"""
# The parcel ``$2`` of order ``$1`` was cancelled: its tracking numbers are no longer tracked.
END_PARCEL_TRACKING = """
UPDATE shipments SET tracking_done = 'cancelled', tracking_next_at = NULL
 WHERE checkout_form_id = $1 AND allegro_shipment_id = $2 AND tracking_done IS NULL
"""
