"""Admin API for orders: the list, and "fetch orders now" for an account."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
from aiohttp import web

from allegro_sync.daemon.api.errors import ApiError
from allegro_sync.daemon.api.params import (
    bool_param,
    datetime_param,
    int_param,
    invalid,
    path_id,
)
from allegro_sync.daemon.pollers import wake_poller

STATUSES = ("BOUGHT", "FILLED_IN", "READY_FOR_PROCESSING", "CANCELLED")

LIST_ORDERS = """
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


def _order_json(row: asyncpg.Record) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "checkout_form_id": str(row["checkout_form_id"]),
        "account_id": row["account_id"],
        "status": row["status"],
        "bought_at": iso(row["bought_at"]),
        "buyer_login": row["buyer_login"],
        "payment_type": row["payment_type"],
        "paid_at": iso(row["paid_at"]),
        "total": str(row["total"]) if row["total"] is not None else None,
        "currency": row["currency"],
        "invoice_required": row["invoice_required"],
        "customer_id": row["customer_id"],
        "superseded_by": str(row["superseded_by"]) if row["superseded_by"] else None,
        "sent_to_erp_at": iso(row["announced_at"]),
        "cancelled_at": iso(row["cancelled_at"]),
        "lines": row["lines"],
    }


def add_order_routes(app: web.Application, pool: asyncpg.Pool) -> None:
    """``GET /orders``, ``POST /accounts/{id}/orders/fetch``."""

    async def list_orders(request: web.Request) -> web.Response:
        limit = int_param(request, "limit", 100, low=1, high=1000)
        assert limit is not None
        status = request.query.get("status") or None
        if status is not None and status not in STATUSES:
            raise invalid("status", f"must be one of {', '.join(STATUSES)}")
        cursor_time, cursor_id = None, None
        if request.query.get("cursor"):
            try:
                raw_time, _, raw_id = request.query["cursor"].partition("|")
                cursor_time, cursor_id = datetime.fromisoformat(raw_time), raw_id
            except ValueError:
                raise invalid("cursor", "not a cursor this API gave out") from None
        rows = await pool.fetch(
            LIST_ORDERS,
            int_param(request, "account_id", None),
            status,
            bool_param(request, "sent_to_erp"),
            datetime_param(request, "bought_from"),
            datetime_param(request, "bought_to"),
            request.query.get("q") or None,
            cursor_time,
            cursor_id,
            limit + 1,
        )
        items = [_order_json(r) for r in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            next_cursor = f"{last['created_at'].isoformat()}|{last['checkout_form_id']}"
        return web.json_response({"items": items, "next": next_cursor})

    async def fetch_now(request: web.Request) -> web.Response:
        account_id = path_id(request)
        active = await pool.fetchval("SELECT active FROM accounts WHERE id = $1", account_id)
        if active is None:
            raise ApiError(404, "not_found", f"account {account_id} does not exist")
        if not active:
            raise ApiError(409, "inactive", f"account {account_id} is inactive; activate it first")
        async with pool.acquire() as conn:
            await wake_poller(conn, account_id, "order")
        return web.json_response({"account_id": account_id, "status": "fetching"}, status=202)

    app.router.add_get("/orders", list_orders)
    app.router.add_post("/accounts/{id}/orders/fetch", fetch_now)
