"""``GET /offers`` and ``PATCH /offers/{id}`` (design.md section 4; O3, P2, S3).

The list pages by offer id: ``next`` is the cursor to pass back as ``cursor``. A PATCH binds an
offer to a product by hand (or unbinds it with ``null``) and changes its flags; a binding by hand
sets the flags as a binding by EAN does, unless the same PATCH gives them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import asyncpg
from aiohttp import web
from pydantic import BaseModel, ConfigDict, StrictBool, StringConstraints, ValidationError

from allegro_sync.adapters.postgres import catalog, event_log
from allegro_sync.adapters.postgres import offers as store
from allegro_sync.daemon.api.errors import ApiError
from allegro_sync.daemon.api.params import bool_param, choice_param, int_param, invalid, json_body
from allegro_sync.handlers.offers import BindSettings, announce_binding, binding_flags

STATUSES = ("INACTIVE", "ACTIVATING", "ACTIVE", "ENDED")
FORMATS = ("BUY_NOW", "AUCTION", "ADVERTISEMENT")
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


class OfferPatch(BaseModel):
    """What ``PATCH /offers/{id}`` accepts; unknown keys and wrong types are refused."""

    model_config = ConfigDict(extra="forbid")
    product_id: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
        | None
    ) = None
    do_not_renew: StrictBool | None = None
    sync_price: StrictBool | None = None


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


def parse_offer_patch(body: object) -> dict[str, Any]:
    """The fields a valid PATCH body gives (``product_id`` may be null: unbind)."""
    if not isinstance(body, dict) or not body:
        raise invalid("body", "expected a JSON object with at least one field")
    try:
        patch = OfferPatch.model_validate(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(p) for p in error["loc"]) or "body"
        message = "unknown field" if error["type"] == "extra_forbidden" else error["msg"]
        raise invalid(field, message) from None
    given = patch.model_dump(include=set(body))
    for name in ("do_not_renew", "sync_price"):
        if name in given and given[name] is None:
            raise invalid(name, "may not be null")
    return given


async def patch_offer(conn: asyncpg.Connection, offer_id: str, given: dict[str, Any]) -> Any:
    """Apply a validated PATCH in the caller's transaction; the offer row afterwards."""
    offer = await store.offer_for_update(conn, offer_id)
    if offer is None:
        raise ApiError(404, "not_found", f"no offer {offer_id}")
    account_id = offer["account_id"]
    flags = {k: v for k, v in given.items() if k in ("do_not_renew", "sync_price")}
    if "product_id" in given:
        product_id = given["product_id"]
        if product_id is None and offer["product_id"] is not None:
            await store.unbind(conn, offer_id)
            await event_log.write(
                conn,
                account_id,
                "offers",
                "info",
                "offer_unbound",
                f"Offer {offer_id} unbound from product {offer['product_id']} by hand.",
                details={"offer_id": offer_id, "product_id": offer["product_id"]},
            )
        elif product_id is not None and product_id != offer["product_id"]:
            product = await catalog.get_product(conn, product_id)
            if product is None:
                raise invalid("product_id", f"no product {product_id}")
            account = await store.binding_settings(conn, account_id)
            assert account is not None  # the offer's foreign key keeps it
            defaults = binding_flags(BindSettings.of(account), datetime.now(UTC))
            await store.bind(
                conn,
                offer_id,
                product_id,
                sync_price=flags.get("sync_price", defaults.sync_price),
                do_not_renew=flags.get("do_not_renew", defaults.do_not_renew),
                only_if_unbound=False,
            )
            await announce_binding(
                conn,
                account_id,
                offer_id,
                product_id,
                offer["ean"] or product["ean"],
                how="by hand",
            )
            flags = {}
    if flags:
        await store.set_flags(conn, offer_id, flags)
    return await store.get_offer(conn, offer_id)


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
        given = parse_offer_patch(await json_body(request))
        async with pool.acquire() as conn, conn.transaction():
            row = await patch_offer(conn, offer_id, given)
        return web.json_response(offer_json(row))

    app.router.add_get("/offers", list_offers)
    app.router.add_patch("/offers/{id}", change_offer)
