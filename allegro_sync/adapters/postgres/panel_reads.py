"""Reads the seller's panel shows that no other module has: the price lists to choose from, the
order list, and the overview's figures per account."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg


async def price_lists(conn: asyncpg.Connection | asyncpg.Pool) -> list[asyncpg.Record]:
    """Every price list known from the ERP, by name."""
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT id, name FROM price_lists ORDER BY id = 'default' DESC, name"
    )
    return rows


@dataclass(frozen=True)
class OrderFilter:
    """The filters of the order list."""

    account_id: int | None = None
    status: str | None = None
    sent_to_erp: bool | None = None
    bought_from: datetime | None = None
    bought_to: datetime | None = None
    q: str | None = None


LIST_ORDERS = """
SELECT o.created_at, o.checkout_form_id, o.account_id, o.status, o.bought_at,
       o.payment_type, o.paid_at, o.total, o.currency, o.invoice_required, o.customer_id,
       o.superseded_by, o.announced_at, o.cancelled_at,
       o.form -> 'buyer' ->> 'login' AS buyer_login,
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


async def list_orders(
    pool: asyncpg.Pool,
    where: OrderFilter,
    *,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[asyncpg.Record]:
    """One page of orders, newest first, with their lines (JSON)."""
    rows: list[asyncpg.Record] = await pool.fetch(
        LIST_ORDERS,
        where.account_id,
        where.status,
        where.sent_to_erp,
        where.bought_from,
        where.bought_to,
        where.q,
        after[0] if after else None,
        after[1] if after else None,
        limit,
    )
    return rows


OVERVIEW = """
SELECT a.id, a.name, a.login, a.sandbox, a.active, a.deactivation_reason, a.deactivated_at,
       t.expires_at AS token_expires_at,
       (SELECT max(c.updated_at) FROM journal_cursors c
         WHERE c.account_id = a.id AND c.journal = 'order') AS order_journal_read_at,
       (SELECT max(c.updated_at) FROM journal_cursors c
         WHERE c.account_id = a.id AND c.journal = 'offer') AS offer_journal_read_at,
       (SELECT count(*) FROM offer_changes oc WHERE oc.account_id = a.id) AS pending_changes,
       (SELECT count(*) FROM event_log e
         WHERE e.account_id = a.id AND e.level = 'error'
           AND e.category IN ('offers', 'stock', 'prices')
           AND e.created_at > now() - interval '1 day') AS failures_last_day
  FROM accounts a
  LEFT JOIN account_tokens t ON t.account_id = a.id
 ORDER BY a.id
"""


async def overview(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    """Per account: when its journals were last read, offer changes still waiting for Allegro,
    refused or failed offer work of the last day, token expiry, and why it is off."""
    rows: list[asyncpg.Record] = await pool.fetch(OVERVIEW)
    return rows
