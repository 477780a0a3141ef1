"""SQL for orders and their lines, in the open: the order handler's batch reads and writes (a
few set-based statements per consumer batch, in its transaction) and the admin list."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

import asyncpg

from allegro_sync.adapters.postgres.pool import Db

# The order's ``account_id`` and the checkout form ``revision`` stored.
OWNER = "SELECT account_id, revision FROM orders WHERE checkout_form_id = $1"

# --- our own status writes and their echo in the order journal (migration 0023) ----------
# Just before a revision-checked PUT of status ``$2`` over revision ``$3``.
NOTE_OWN_STATUS = """
UPDATE orders SET own_status = $2, own_status_over = $3, own_status_at = now()
 WHERE checkout_form_id = $1
"""
# The PUT failed or met another revision: its echo, if any, is read as any other event.
FORGET_OWN_STATUS = """
UPDATE orders SET own_status = NULL, own_status_over = NULL, own_status_at = NULL
 WHERE checkout_form_id = $1 AND own_status_over = $2
"""
# A write of ours is noted for these forms ``$1`` (written in the last ``$2`` seconds, and the
# stored form still at the revision it wrote over): their next status event may be its echo.
_OWN_STATUS_OPEN = """
own_status IS NOT NULL AND own_status_over = revision
AND own_status_at > now() - make_interval(secs => $2)
"""
OWN_STATUS_PENDING = f"""
SELECT checkout_form_id FROM orders
 WHERE checkout_form_id = ANY($1::uuid[]) AND {_OWN_STATUS_OPEN}
"""
# Take the notes of forms ``$1`` (once: a second event of the form finds none): the status we
# wrote, with the stored form and when it was read.
TAKE_OWN_STATUS = f"""
WITH taken AS (
    SELECT checkout_form_id, own_status FROM orders
     WHERE checkout_form_id = ANY($1::uuid[]) AND {_OWN_STATUS_OPEN}
       FOR UPDATE
)
UPDATE orders o SET own_status = NULL, own_status_over = NULL, own_status_at = NULL
  FROM taken t
 WHERE o.checkout_form_id = t.checkout_form_id
RETURNING o.checkout_form_id, t.own_status, o.form, o.form_read_at
"""
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
# The admin list: filters $1-$6 (each NULL for "any"; $10 is $6 as a LIKE pattern), keyset
# after ($7, $8), limit $9.
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
        OR o.form -> 'buyer' ->> 'login' ILIKE $10 ESCAPE '\\'
        OR EXISTS (SELECT 1 FROM order_lines l WHERE l.checkout_form_id = o.checkout_form_id
                     AND (l.name ILIKE $10 ESCAPE '\\' OR l.offer_id = $6 OR l.ean = $6)))
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
    """A page of ``LIST``, newest first, after the keyset ``after`` (created at, form id);
    ``text`` is matched literally (its ``%``, ``_`` and ``\\`` are no wildcards)."""
    pattern = None if text is None else contains_pattern(text)
    rows: list[asyncpg.Record] = await conn.fetch(
        LIST, account_id, status, sent_to_erp, bought_from, bought_to, text, *after, limit, pattern
    )
    return rows


def contains_pattern(text: str) -> str:
    """A LIKE pattern (escape character ``\\``) matching ``text`` anywhere, literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class OrderRow(NamedTuple):
    """An ``orders`` row as a checkout form read gives it."""

    checkout_form_id: uuid.UUID
    account_id: int
    status: str | None
    revision: str | None
    bought_at: datetime | None
    allegro_updated_at: datetime | None
    payment_type: str | None
    paid_at: datetime | None
    total: Decimal | None
    currency: str | None
    invoice_required: bool
    form: dict[str, Any]
    form_read_at: datetime


class LineRow(NamedTuple):
    """An ``order_lines`` row as a checkout form's line item gives it (the offer mirror adds the
    bound product, EAN and image)."""

    id: str
    checkout_form_id: uuid.UUID
    offer_id: str
    name: str
    quantity: int
    unit_price: Decimal
    currency: str


async def upsert(
    conn: asyncpg.Connection, orders: Sequence[OrderRow]
) -> dict[uuid.UUID, asyncpg.Record]:
    """Upsert orders (one form each) in one statement; the rows written (locked for this
    transaction) by form id. A form missing from the answer had a newer read stored already."""
    if not orders:
        return {}
    rows = await conn.fetch(
        """
        INSERT INTO orders (checkout_form_id, account_id, status, revision, bought_at,
                            allegro_updated_at, payment_type, paid_at, total, currency,
                            invoice_required, form, form_read_at)
        SELECT * FROM unnest($1::uuid[], $2::bigint[], $3::text[], $4::text[],
                             $5::timestamptz[], $6::timestamptz[], $7::text[],
                             $8::timestamptz[], $9::numeric[], $10::text[], $11::bool[],
                             $12::jsonb[], $13::timestamptz[])
        ON CONFLICT (checkout_form_id) DO UPDATE
           SET status = EXCLUDED.status, revision = EXCLUDED.revision,
               bought_at = EXCLUDED.bought_at, allegro_updated_at = EXCLUDED.allegro_updated_at,
               payment_type = EXCLUDED.payment_type, paid_at = EXCLUDED.paid_at,
               total = EXCLUDED.total, currency = EXCLUDED.currency,
               invoice_required = EXCLUDED.invoice_required, form = EXCLUDED.form,
               form_read_at = EXCLUDED.form_read_at, updated_at = now()
         WHERE orders.form_read_at IS NULL OR orders.form_read_at <= EXCLUDED.form_read_at
        RETURNING checkout_form_id, announced_at, cancelled_at, superseded_by
        """,
        *(list(column) for column in zip(*orders, strict=True)),
    )
    return {row["checkout_form_id"]: row for row in rows}


async def forms_of_lines(
    conn: asyncpg.Connection, line_ids: Sequence[str]
) -> dict[str, list[asyncpg.Record]]:
    """Per line item id, the orders already holding it (``checkout_form_id``, ``announced``)."""
    held: dict[str, list[asyncpg.Record]] = {}
    for row in await conn.fetch(
        """
        SELECT l.id, o.checkout_form_id, o.announced_at IS NOT NULL AS announced
          FROM order_lines l JOIN orders o ON o.checkout_form_id = l.checkout_form_id
         WHERE l.id = ANY($1::text[])
        """,
        line_ids,
    ):
        held.setdefault(row["id"], []).append(row)
    return held


async def supersede(
    conn: asyncpg.Connection, old_forms: Sequence[uuid.UUID], new_form: uuid.UUID
) -> None:
    """Mark the old forms superseded by a merged form that took their lines over."""
    await conn.execute(
        "UPDATE orders SET superseded_by = $2 WHERE checkout_form_id = ANY($1::uuid[])",
        old_forms,
        new_form,
    )


async def upsert_lines(
    conn: asyncpg.Connection, lines: Sequence[LineRow]
) -> dict[uuid.UUID, list[asyncpg.Record]]:
    """Upsert the lines of many forms in one statement, enriched from the offer mirror (bound
    product, EAN, image); each form's lines in line-id order."""
    if not lines:
        return {}
    rows = await conn.fetch(
        """
        INSERT INTO order_lines (id, checkout_form_id, offer_id, product_id, ean, name,
                                 quantity, unit_price, currency, image_url)
        SELECT i.id, i.form_id, i.offer_id, o.product_id, coalesce(p.ean, o.ean), i.name,
               i.quantity, i.unit_price, i.currency, o.image_url
          FROM unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::int[],
                      $6::numeric[], $7::text[])
               AS i(id, form_id, offer_id, name, quantity, unit_price, currency)
          LEFT JOIN offers o ON o.id = i.offer_id
          LEFT JOIN products p ON p.id = o.product_id
        ON CONFLICT (id) DO UPDATE
           SET checkout_form_id = EXCLUDED.checkout_form_id, product_id = EXCLUDED.product_id,
               ean = EXCLUDED.ean, name = EXCLUDED.name, quantity = EXCLUDED.quantity,
               unit_price = EXCLUDED.unit_price, currency = EXCLUDED.currency,
               image_url = EXCLUDED.image_url
        RETURNING *
        """,
        *(list(column) for column in zip(*lines, strict=True)),
    )
    by_form: dict[uuid.UUID, list[asyncpg.Record]] = {}
    for row in sorted(rows, key=lambda line: line["id"]):
        by_form.setdefault(row["checkout_form_id"], []).append(row)
    return by_form


async def stored_updated_at(
    conn: Db, form_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, datetime | None]:
    """Per form already stored, the ``updatedAt`` of the read stored (what the journal, the
    backfill or the sweep delivered last)."""
    rows = await conn.fetch(
        "SELECT checkout_form_id, allegro_updated_at FROM orders"
        " WHERE checkout_form_id = ANY($1::uuid[])",
        form_ids,
    )
    return {row["checkout_form_id"]: row["allegro_updated_at"] for row in rows}
