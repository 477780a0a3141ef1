"""SQL for orders and their lines, in the open."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from allegro_sync.adapters.postgres.pool import Db

# The order's ``account_id`` and the checkout form ``revision`` stored.
OWNER = "SELECT account_id, revision FROM orders WHERE checkout_form_id = $1"
# The order's account row with the stored checkout ``form`` (none when the order is gone).
WITH_ACCOUNT = """
SELECT a.*, o.form
  FROM orders o JOIN accounts a ON a.id = o.account_id
 WHERE o.checkout_form_id = $1
"""
# The orders ``$1`` were sent to the ERP, each with its customer row ``$2`` (or none).
ANNOUNCED = """
UPDATE orders o SET announced_at = now(), customer_id = a.customer_id
  FROM unnest($1::uuid[], $2::bigint[]) AS a(checkout_form_id, customer_id)
 WHERE o.checkout_form_id = a.checkout_form_id
"""
# The ERP was told the order is cancelled.
CANCELLED = "UPDATE orders SET cancelled_at = now() WHERE checkout_form_id = $1"
# The admin list: filters $1-$6 (each NULL for "any"), keyset after ($7, $8), limit $9.
LIST = """
SELECT o.created_at, o.checkout_form_id, o.account_id, o.status, o.bought_at,
       o.payment_type, o.paid_at, o.total, o.currency, o.invoice_required, o.customer_id,
       o.superseded_by,
       o.announced_at, o.cancelled_at, o.form -> 'buyer' ->> 'login' AS buyer_login,
       coalesce((SELECT json_agg(json_build_object(
                   'offer_id', l.offer_id, 'product_id', l.product_id, 'ean', l.ean,
                   'name', l.name, 'quantity', l.quantity, 'unit_price', l.unit_price::text,
                   'image_url', l.image_url) ORDER BY l.id)
                  FROM order_lines l WHERE l.checkout_form_id = o.checkout_form_id),
                '[]'::json) AS lines
  FROM orders o
 WHERE ($1::bigint IS NULL OR o.account_id = $1)
   AND ($2::text IS NULL OR o.status = $2)
   AND ($3::boolean IS NULL OR (o.announced_at IS NOT NULL) = $3)
   AND ($4::timestamptz IS NULL OR o.bought_at >= $4)
   AND ($5::timestamptz IS NULL OR o.bought_at <= $5)
   AND ($6::text IS NULL OR o.checkout_form_id::text = $6
        OR o.form -> 'buyer' ->> 'login' ILIKE '%' || $6 || '%'
        OR EXISTS (SELECT 1 FROM order_lines l WHERE l.checkout_form_id = o.checkout_form_id
                     AND (l.name ILIKE '%' || $6 || '%' OR l.offer_id = $6 OR l.ean = $6)))
   AND ($7::timestamptz IS NULL OR (o.created_at, o.checkout_form_id) < ($7, $8::uuid))
 ORDER BY o.created_at DESC, o.checkout_form_id DESC
 LIMIT $9
"""


async def list_page(
    conn: Db,
    *,
    account_id: int | None,
    status: str | None,
    sent_to_erp: bool | None,
    bought_from: datetime | None,
    bought_to: datetime | None,
    text: str | None,
    after: tuple[datetime | None, str | None],
    limit: int,
) -> list[asyncpg.Record]:
    """A page of ``LIST``, newest first, after the keyset ``after`` (created at, form id)."""
    rows: list[asyncpg.Record] = await conn.fetch(
        LIST, account_id, status, sent_to_erp, bought_from, bought_to, text, *after, limit
    )
    return rows
