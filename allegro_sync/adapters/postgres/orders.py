"""The orders and their lines, as the order handler reads and writes them: a few set-based
statements per consumer batch, in the batch's transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

import asyncpg


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


async def lock_active_accounts(
    conn: asyncpg.Connection, account_ids: Sequence[int]
) -> dict[int, asyncpg.Record]:
    """The active ones of the accounts, locked against change for the transaction."""
    rows = await conn.fetch(
        "SELECT * FROM accounts WHERE id = ANY($1::bigint[]) AND active FOR SHARE", account_ids
    )
    return {row["id"]: row for row in rows}


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


async def mark_announced(
    conn: asyncpg.Connection, forms: Sequence[uuid.UUID], customer_ids: Sequence[int | None]
) -> None:
    """Orders sent to the ERP, each with its customer card's row (or none)."""
    await conn.execute(
        """
        UPDATE orders o SET announced_at = now(), customer_id = a.customer_id
          FROM unnest($1::uuid[], $2::bigint[]) AS a(checkout_form_id, customer_id)
         WHERE o.checkout_form_id = a.checkout_form_id
        """,
        forms,
        customer_ids,
    )


async def mark_cancelled(conn: asyncpg.Connection, form: uuid.UUID) -> None:
    """An announced order whose cancellation the ERP was told."""
    await conn.execute("UPDATE orders SET cancelled_at = now() WHERE checkout_form_id = $1", form)
