"""Klienci: customer cards with "Typ klienta", filters, checkboxes, and the export to CSV or XML
of the selected rows, the current view or the whole list (design.md C4, C5)."""

from __future__ import annotations

from urllib.parse import urlencode

import structlog
from aiohttp import web

from allegro_sync.adapters.postgres import accounts as account_store
from allegro_sync.adapters.postgres.customer_queries import (
    CustomerFilter,
    list_customers,
)
from allegro_sync.contract import CUSTOMER_TYPES
from allegro_sync.daemon.api.customers import stream_export
from allegro_sync.daemon.panel.deps import deps_of
from allegro_sync.daemon.panel.render import render
from allegro_sync.export.filters import FILTER_FIELDS, FilterError, parse_customer_filter
from allegro_sync.export.formats import EXPORT_FORMATS

log = structlog.get_logger(__name__)

PAGE_SIZE = 50
VIEW_FIELDS = tuple(f for f in FILTER_FIELDS if f != "ids")


async def list_page(request: web.Request) -> web.Response:
    deps = deps_of(request)
    query = {k: v for k, v in request.query.items() if k in VIEW_FIELDS and v.strip()}
    errors: dict[str, str] = {}
    try:
        where = parse_customer_filter(query)
    except FilterError as exc:
        errors[exc.field] = exc.message
        where = CustomerFilter()
    raw_cursor = request.query.get("cursor", "")
    after_id = int(raw_cursor) if raw_cursor.isdigit() and len(raw_cursor) < 19 else None
    async with deps.pool.acquire() as conn:
        rows, next_id = await list_customers(conn, where, limit=PAGE_SIZE, after_id=after_id)
        account_rows = await account_store.list_all(
            conn, active=None, sandbox=None, after_id=None, limit=1000
        )
    next_url = "/panel/customers?" + urlencode({**query, "cursor": next_id}) if next_id else None
    first_url = "/panel/customers?" + urlencode(query) if after_id else None
    return render(
        request,
        "customers.html",
        422 if errors else 200,
        section="customers",
        customers=rows,
        accounts={a["id"]: a["name"] for a in account_rows},
        types=CUSTOMER_TYPES,
        q=query,
        errors=errors,
        next_url=next_url,
        first_url=first_url,
        formats=tuple(EXPORT_FORMATS),
    )


async def export(request: web.Request) -> web.StreamResponse:
    """The selected rows (``ids``), the current view (its filters) or the whole list."""
    deps = deps_of(request)
    form = await request.post()
    scope = str(form.get("scope", "all"))
    fmt = EXPORT_FORMATS.get(str(form.get("format", "csv")))
    if fmt is None:
        raise web.HTTPBadRequest()
    values: dict[str, str] = {}
    if scope == "selected":
        values["ids"] = ",".join(str(v) for v in form.getall("ids", []))
    elif scope == "view":
        values = {k: str(form[k]) for k in VIEW_FIELDS if k in form and str(form[k]).strip()}
    try:
        selection = parse_customer_filter(values)
    except FilterError as exc:
        return render(request, "error.html", 422, kind="export_refused", detail=str(exc))
    return await stream_export(request, deps.pool, selection, fmt, deps.exports)


def add_routes(app: web.Application) -> None:
    """The customer list and its export."""
    app.router.add_get("/customers", list_page)
    app.router.add_post("/customers/export", export)
