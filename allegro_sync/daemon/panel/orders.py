"""Zamówienia: orders with the images of their lines, whether they reached the ERP, filters."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode

from aiohttp import web

from allegro_sync.adapters.postgres import accounts as account_store
from allegro_sync.adapters.postgres import orders
from allegro_sync.daemon.panel import forms
from allegro_sync.daemon.panel.deps import deps_of
from allegro_sync.daemon.panel.render import render

STATUSES = ("BOUGHT", "FILLED_IN", "READY_FOR_PROCESSING", "CANCELLED")
PAGE_SIZE = 50


async def list_page(request: web.Request) -> web.Response:
    deps = deps_of(request)
    query = {k: v for k, v in request.query.items() if v.strip()}
    status = query.get("status")
    q = (query.get("q") or "").strip()[:200] or None
    after = None
    raw_time, _, raw_id = query.get("cursor", "").partition("|")
    if raw_time and len(raw_id) == 36:
        try:
            after = (datetime.fromisoformat(raw_time), raw_id)
        except ValueError:
            after = None
    rows = await orders.list_page(
        deps.pool,
        account_id=forms.positive_int(query, "account_id"),
        status=status if status in STATUSES else None,
        sent_to_erp={"true": True, "false": False}.get(query.get("sent_to_erp", "")),
        bought_from=None,
        bought_to=None,
        text=q,
        after=after or (None, None),
        limit=PAGE_SIZE + 1,
    )
    page, more = rows[:PAGE_SIZE], len(rows) > PAGE_SIZE
    async with deps.pool.acquire() as conn:
        account_rows = await account_store.list_all(
            conn, active=None, sandbox=None, after_id=None, limit=1000
        )
    filters = {k: v for k, v in query.items() if k != "cursor"}
    next_url = None
    if more:
        last = page[-1]
        cursor = f"{last['created_at'].isoformat()}|{last['checkout_form_id']}"
        next_url = "/panel/orders?" + urlencode({**filters, "cursor": cursor})
    return render(
        request,
        "orders.html",
        section="orders",
        orders=page,
        accounts={a["id"]: a["name"] for a in account_rows},
        statuses=STATUSES,
        q=query,
        next_url=next_url,
        first_url="/panel/orders?" + urlencode(filters) if after else None,
    )


def add_routes(app: web.Application) -> None:
    """The order list."""
    app.router.add_get("/orders", list_page)
