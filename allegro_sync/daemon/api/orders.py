"""Admin API for orders: the list, and "fetch orders now" for an account."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

import asyncpg
from aiohttp import web

from allegro_sync.adapters.postgres import accounts, orders
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
MAX_Q = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


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


def _search_text(request: web.Request) -> str | None:
    """``q``: matched literally (no wildcards), at most ``MAX_Q`` characters."""
    text = request.query.get("q", "").strip() or None
    if text is not None and len(text) > MAX_Q:
        raise invalid("q", f"at most {MAX_Q} characters")
    if text is not None and _CONTROL.search(text) is not None:
        raise invalid("q", "may not hold control characters")
    return text


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
                cursor_time = datetime.fromisoformat(raw_time)
                cursor_id = str(uuid.UUID(raw_id))
                if cursor_time.tzinfo is None:
                    raise ValueError(raw_time)
            except ValueError:
                raise invalid("cursor", "not a cursor this API gave out") from None
        rows = await orders.list_page(
            pool,
            account_id=int_param(request, "account_id", None),
            status=status,
            sent_to_erp=bool_param(request, "sent_to_erp"),
            bought_from=datetime_param(request, "bought_from"),
            bought_to=datetime_param(request, "bought_to"),
            text=_search_text(request),
            after=(cursor_time, cursor_id),
            limit=limit + 1,
        )
        items = [_order_json(r) for r in rows[:limit]]
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            next_cursor = f"{last['created_at'].isoformat()}|{last['checkout_form_id']}"
        return web.json_response({"items": items, "next": next_cursor})

    async def fetch_now(request: web.Request) -> web.Response:
        account_id = path_id(request)
        active = await accounts.is_active(pool, account_id)
        if active is None:
            raise ApiError(404, "not_found", f"account {account_id} does not exist")
        if not active:
            raise ApiError(409, "inactive", f"account {account_id} is inactive; activate it first")
        async with pool.acquire() as conn:
            await wake_poller(conn, account_id, "order")
        return web.json_response({"account_id": account_id, "status": "fetching"}, status=202)

    app.router.add_get("/orders", list_orders)
    app.router.add_post("/accounts/{id}/orders/fetch", fetch_now)
