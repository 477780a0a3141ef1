"""``GET /offers``, ``POST /offers`` and ``PATCH /offers/{id}`` (design.md section 4; O3, P2,
S3; issue 17).

``POST /offers`` lists a product (the body of ``offer.list``): it answers with the listing's
state, 202 while the listing service is at it, 200 once listed (the same body again lists
nothing new); ``GET /offers/listings/{id}`` reads one listing's state by the ``id`` it answered.

The list pages by offer id: ``next`` is the cursor to pass back as ``cursor``. A PATCH binds an
offer to a product by hand (or unbinds it with ``null``) and changes its flags; a binding by hand
sets the flags as a binding by EAN does, unless the same PATCH gives them.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp import web
from pydantic import ValidationError

from allegro_sync.adapters.postgres import listings
from allegro_sync.adapters.postgres import offers as store
from allegro_sync.contract import OfferList
from allegro_sync.daemon.api.errors import ApiError
from allegro_sync.daemon.api.params import (
    bool_param,
    choice_param,
    int_param,
    invalid,
    json_body,
    path_id,
)
from allegro_sync.errors import BadInput
from allegro_sync.handlers.listing import listing_json, request_listing
from allegro_sync.handlers.offer_settings import OfferChangeError, parse_offer_change
from allegro_sync.handlers.offer_settings import change_offer as apply_offer_change

STATUSES = ("INACTIVE", "ACTIVATING", "ACTIVE", "ENDED")
FORMATS = ("BUY_NOW", "AUCTION", "ADVERTISEMENT")
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


def offer_json(row: Any) -> dict[str, Any]:
    """An offer as the API shows it (design.md section 4)."""
    return {
        "id": row["id"],
        "account_id": row["account_id"],
        "name": row["name"],
        "format": row["format"],
        "status": row["status"],
        "ended_at": row["ended_at"].isoformat() if row["ended_at"] else None,
        "stock": row["stock"],
        "price": str(row["price"]) if row["price"] is not None else None,
        "currency": row["currency"],
        "image_url": row["image_url"],
        "external_id": row["external_id"],
        "ean": row["ean"],
        "product_id": row["product_id"],
        "bound_at": row["bound_at"].isoformat() if row["bound_at"] else None,
        "do_not_renew": row["do_not_renew"],
        "sync_price": row["sync_price"],
    }


def _api_error(exc: OfferChangeError) -> ApiError:
    if exc.status == 404:
        return ApiError(404, "not_found", exc.detail)
    return invalid(exc.field, exc.detail)


def add_offer_routes(app: web.Application, pool: asyncpg.Pool) -> None:
    """``GET /offers``, ``PATCH /offers/{id}`` (both answer from the offer mirror)."""

    async def list_offers(request: web.Request) -> web.Response:
        limit = int_param(request, "limit", DEFAULT_LIMIT, low=1, high=MAX_LIMIT)
        assert limit is not None
        text = request.query.get("text", "").strip() or None
        if text is not None and len(text) > 200:
            raise invalid("text", "at most 200 characters")
        cursor = request.query.get("cursor") or None
        if cursor is not None and len(cursor) > 100:
            raise invalid("cursor", "not a cursor this list gave; start again without it")
        where = store.OfferFilter(
            account_id=int_param(request, "account_id", low=1),
            status=choice_param(request, "status", STATUSES),
            format=choice_param(request, "format", FORMATS),
            bound=bool_param(request, "bound"),
            text=text,
        )
        rows = await store.list_offers(pool, where, after=cursor, limit=limit + 1)
        page = rows[:limit]
        more = len(rows) > limit
        return web.json_response(
            {"items": [offer_json(r) for r in page], "next": page[-1]["id"] if more else None}
        )

    async def change_offer(request: web.Request) -> web.Response:
        offer_id = request.match_info["id"]
        try:
            given = parse_offer_change(await json_body(request))
            async with pool.acquire() as conn, conn.transaction():
                row = await apply_offer_change(conn, offer_id, given)
        except OfferChangeError as exc:
            raise _api_error(exc) from None
        return web.json_response(offer_json(row))

    async def list_product(request: web.Request) -> web.Response:
        body = await json_body(request)
        if not isinstance(body, dict):
            raise invalid("body", "expected a JSON object")
        try:
            message = OfferList.model_validate(body)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(str(p) for p in error["loc"]) or "body"
            raise invalid(field, error["msg"]) from None
        try:
            async with pool.acquire() as conn, conn.transaction():
                row = await request_listing(message, conn)
        except BadInput as exc:
            raise ApiError(422, "not_listable", str(exc)) from None
        status = 200 if row["state"] == "listed" else 202
        return web.json_response(listing_json(row), status=status)

    async def read_listing(request: web.Request) -> web.Response:
        listing_id = path_id(request)
        row = await listings.get_by_id(pool, listing_id)
        if row is None:
            raise ApiError(404, "not_found", f"no listing {listing_id}")
        return web.json_response(listing_json(row))

    app.router.add_get("/offers", list_offers)
    app.router.add_post("/offers", list_product)
    app.router.add_get("/offers/listings/{id}", read_listing)
    app.router.add_patch("/offers/{id}", change_offer)
