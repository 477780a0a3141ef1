"""Oferty: the offer mirror with thumbnails, paged by id, and the per-offer switches
"Nie wznawiaj oferty automatycznie" and "Zmień cenę na ofercie" (design.md S3, P2)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

from aiohttp import web

from allegro_sync.adapters.postgres import accounts as account_store
from allegro_sync.adapters.postgres import offers as store
from allegro_sync.daemon.panel import forms
from allegro_sync.daemon.panel.deps import deps_of
from allegro_sync.daemon.panel.render import render
from allegro_sync.handlers.bulk_binding import bind_all_by_ean
from allegro_sync.handlers.offer_settings import OfferChangeError, change_offer, parse_offer_change
from allegro_sync.handlers.offers import Outcome

STATUSES = ("INACTIVE", "ACTIVATING", "ACTIVE", "ENDED")
FORMATS = ("BUY_NOW", "AUCTION", "ADVERTISEMENT")
PAGE_SIZE = 50
FLAGS = ("do_not_renew", "sync_price")


def _filter(query: dict[str, str]) -> store.OfferFilter:
    status = query.get("status") or None
    fmt = query.get("format") or None
    bound = {"true": True, "false": False}.get(query.get("bound", ""))
    text = (query.get("text") or "").strip()[:200] or None
    return store.OfferFilter(
        account_id=forms.positive_int(query, "account_id"),
        status=status if status in STATUSES else None,
        format=fmt if fmt in FORMATS else None,
        bound=bound,
        text=text,
    )


async def list_page(
    request: web.Request,
    query: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> web.Response:
    deps = deps_of(request)
    query = dict(request.query) if query is None else query
    where = _filter(query)
    cursor = (query.get("cursor") or "")[:100] or None
    rows = await store.list_offers(deps.pool, where, after=cursor, limit=PAGE_SIZE + 1)
    page, more = rows[:PAGE_SIZE], len(rows) > PAGE_SIZE
    async with deps.pool.acquire() as conn:
        account_rows = await account_store.list_all(
            conn, active=None, sandbox=None, after_id=None, limit=1000
        )
    filters = {k: v for k, v in query.items() if k != "cursor" and v}
    next_url = "/panel/offers?" + urlencode({**filters, "cursor": page[-1]["id"]}) if more else None
    first_url = "/panel/offers?" + urlencode(filters) if cursor else None
    return render(
        request,
        "offers.html",
        status,
        section="offers",
        here="/panel/offers" + (f"?{urlencode(query)}" if query else ""),
        offers=page,
        accounts={a["id"]: a["name"] for a in account_rows},
        statuses=STATUSES,
        formats=FORMATS,
        q=query,
        next_url=next_url,
        first_url=first_url,
        errors=errors or {},
    )


async def change(request: web.Request) -> web.StreamResponse:
    """The per-offer switches (and binding by hand), as ``PATCH /offers/{id}``."""
    deps = deps_of(request)
    offer_id = request.match_info["id"]
    form = await request.post()
    body: dict[str, object] = {}
    if str(form.get("form", "")) == "flags":
        body.update(forms.switches(form, FLAGS))
    if "product_id" in form:
        body["product_id"] = forms.text(form, "product_id")
    back = str(form.get("back", ""))
    if not back.startswith("/panel/offers"):
        back = "/panel/offers"
    try:
        given = parse_offer_change(body)
        async with deps.pool.acquire() as conn, conn.transaction():
            await change_offer(conn, offer_id, given)
    except OfferChangeError as exc:
        if exc.status == 404:
            raise web.HTTPNotFound() from None
        query = dict(parse_qsl(urlsplit(back).query))
        return await list_page(request, query, {offer_id: exc.detail}, exc.status)
    raise web.HTTPSeeOther(back)


async def bind_by_ean(request: web.Request) -> web.Response:
    """ "Powiąż wszystkie po EAN": the dry run first (``confirm`` absent), then the binding, both
    through ``handlers.bulk_binding`` as ``allegro-sync offers bind --by-ean`` does."""
    deps = deps_of(request)
    form = await request.post()
    raw = str(form.get("account_id", ""))
    if not raw.isdigit() or len(raw) > 18:
        raise web.HTTPNotFound()
    account_id = int(raw)
    async with deps.pool.acquire() as conn:
        account = await account_store.get(conn, account_id)
    if account is None:
        raise web.HTTPNotFound()
    dry_run = str(form.get("confirm", "")) != "yes"
    result = await bind_all_by_ean(deps.pool, deps.allegro, account_id, dry_run=dry_run)
    return render(
        request,
        "offers_bind.html",
        section="offers",
        here="/panel/offers",
        account_name=account["name"],
        account_id=account_id,
        report=result,
        outcomes=[(o.value, result.counts[o]) for o in Outcome],
    )


def add_routes(app: web.Application) -> None:
    """The offer list and its forms."""
    app.router.add_get("/offers", list_page)
    app.router.add_post("/offers/bind-by-ean", bind_by_ean)
    app.router.add_post("/offers/{id}", change)
