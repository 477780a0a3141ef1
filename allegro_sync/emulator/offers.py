"""Offer listing, product-offer read/edit (EAN in parameter 225693) and the offer journal."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from . import context
from .auth import scope, seller_caller
from .catalog import EAN_PARAMETER_ID
from .clock import iso
from .errors import ApiError, access_denied, json_response, validation
from .ids import offer_event_id, parse_offer_event_id
from .models import Offer, Seller
from .offer_ops import (
    FORMATS,
    STATUSES,
    OfferRuleError,
    activate_offer,
    change_offer_fields,
    end_offer,
    set_price,
    set_stock,
)
from .orders import read_json
from .params import int_param, many
from .state import OFFER_RETENTION
from .views import offer_listing, product_offer

OFFER_EVENT_TYPES = (
    "OFFER_ACTIVATED",
    "OFFER_CHANGED",
    "OFFER_ENDED",
    "OFFER_STOCK_CHANGED",
    "OFFER_PRICE_CHANGED",
    "OFFER_ARCHIVED",
    "OFFER_BID_PLACED",
    "OFFER_BID_CANCELED",
    "OFFER_TRANSLATION_UPDATED",
    "OFFER_VISIBILITY_CHANGED",
)


def _decimal(request: web.Request, name: str) -> Decimal | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        return Decimal(raw)
    except InvalidOperation:
        raise validation(f"{name} must be a number", name, 400) from None


async def list_offers(request: web.Request) -> web.Response:
    """``GET /sale/offers``: filters, sort, limit 1-1000 (default 20)."""
    _, seller = seller_caller(request, scope("sale:offers:read"))
    market = context.get(request).market
    market.sweep()
    limit = int_param(request, "limit", 20, 1, 1000, status=400)
    offset = int_param(request, "offset", 0, 0, 9_999_999, status=400)
    statuses = set(many(request, "publication.status"))
    formats = set(many(request, "sellingMode.format"))
    externals = many(request, "external.id")
    if len(externals) > 100 or any(len(e) > 100 for e in externals):
        raise validation("external.id: at most 100 values of at most 100 chars", "external.id", 400)
    if statuses - set(STATUSES) or formats - set(FORMATS):
        raise validation("Unknown publication.status or sellingMode.format", None, 400)
    offer_ids = set(many(request, "offer.id"))
    name = request.query.get("name")
    price_gte = _decimal(request, "sellingMode.price.amount.gte")
    price_lte = _decimal(request, "sellingMode.price.amount.lte")
    category = request.query.get("category.id")
    sort = request.query.get("sort")
    external_set = set(externals)
    filtered = bool(
        statuses
        or formats
        or externals
        or offer_ids
        or name
        or category
        or price_gte is not None
        or price_lte is not None
    )

    def keep(o: Offer) -> bool:
        return (
            not o.archived
            and (not statuses or o.status in statuses)
            and (not formats or o.format in formats)
            and (not external_set or o.external_id in external_set)
            and (not offer_ids or o.id in offer_ids)
            and (name is None or name.lower() in o.name.lower())
            and (category is None or o.category_id == category)
            and (price_gte is None or o.price >= price_gte)
            and (price_lte is None or o.price <= price_lte)
        )

    ids = market.offers_by_seller[seller.id]
    if offer_ids and not sort:
        candidates: Iterator[Offer] = (
            market.offers[i]
            for i in sorted(offer_ids & set(ids), key=lambda x: int(x), reverse=True)
        )
    else:
        candidates = (market.offers[i] for i in reversed(ids))
    matching: list[Offer]
    if sort:
        matching = [o for o in candidates if keep(o)]
        key = sort.lstrip("-")
        keys: dict[str, Any] = {
            "sellingMode.price.amount": lambda o: o.price,
            "stock.available": lambda o: o.stock,
            "stock.sold": lambda o: sum(q for _, q in o.sales),
        }
        if key not in keys:
            raise validation(f"Unknown sort: {sort}", "sort", 400)
        matching.sort(key=keys[key], reverse=sort.startswith("-"))
        total = len(matching)
        page = matching[offset : offset + limit]
    elif not filtered and not market.has_archived(seller.id):
        # The common paging case: no filter, creation order; slice without scanning.
        total = len(ids)
        end = total - offset
        page = [market.offers[i] for i in reversed(ids[max(0, end - limit) : max(0, end)])]
    else:
        page = []
        total = 0
        for offer in candidates:
            if keep(offer):
                if offset <= total < offset + limit:
                    page.append(offer)
                total += 1
    return json_response(
        {
            "offers": [offer_listing(market, o, seller) for o in page],
            "count": len(page),
            "totalCount": total,
        }
    )


def _own_offer(request: web.Request, seller: Seller) -> Offer:
    offer = context.get(request).market.visible_offer(request.match_info["offer_id"])
    if offer is None:
        raise ApiError(404, "OfferNotFoundException", "Offer not found")
    if offer.seller_id != seller.id:
        raise access_denied()
    return offer


async def get_product_offer(request: web.Request) -> web.Response:
    """``GET /sale/product-offers/{offerId}``."""
    _, seller = seller_caller(request, scope("sale:offers:read"))
    offer = _own_offer(request, seller)
    return json_response(product_offer(context.get(request).market, offer, seller))


def _ean_from(body: dict[str, Any]) -> str | None:
    for entry in body.get("productSet") or []:
        product = (entry or {}).get("product") or {}
        if product.get("idType") == "GTIN" and product.get("id"):
            return str(product["id"])
        for param in product.get("parameters") or []:
            if str(param.get("id")) == EAN_PARAMETER_ID and param.get("values"):
                return str(param["values"][0])
    return None


async def patch_product_offer(request: web.Request) -> web.Response:
    """``PATCH /sale/product-offers/{offerId}``: name, price, stock, external id, EAN,
    publication status. Stock 0 on a live offer ends it."""
    _, seller = seller_caller(request, scope("sale:offers:write"))
    market = context.get(request).market
    offer = _own_offer(request, seller)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise validation("Body must be an object")
    fields: dict[str, Any] = {}
    if "name" in body:
        if not isinstance(body["name"], str) or not 1 <= len(body["name"]) <= 75:
            raise validation("name must have 1-75 characters", "name")
        fields["name"] = body["name"]
    if "external" in body:
        fields["external_id"] = (body["external"] or {}).get("id")
    ean = _ean_from(body)
    if ean is not None:
        if not ean.isdigit() or len(ean) not in (8, 10, 12, 13, 14):
            raise ApiError(
                422,
                "NotStandardLengthInGtinParameter",
                "Invalid GTIN",
                path="productSet[0].product.parameters",
            )
        fields["ean"] = ean
    if fields:
        change_offer_fields(market, offer, fields)
    price = ((body.get("sellingMode") or {}).get("price") or {}).get("amount")
    if price is not None:
        try:
            set_price(market, offer, Decimal(str(price)))
        except InvalidOperation:
            raise validation("Invalid price", "sellingMode.price.amount") from None
    stock = (body.get("stock") or {}).get("available")
    if stock is not None:
        if not isinstance(stock, int) or stock < 0:
            raise validation("stock.available must be >= 0", "stock.available")
        set_stock(market, offer, stock)
    status = (body.get("publication") or {}).get("status")
    try:
        if status == "ACTIVE":
            activate_offer(market, offer)
        elif status == "ENDED" and offer.status != "ENDED":
            end_offer(market, offer)
    except OfferRuleError as err:
        raise ApiError(422, err.code, err.message) from None
    return json_response(product_offer(market, offer, seller))


async def offer_events(request: web.Request) -> web.Response:
    """``GET /sale/offer-events``: the last 24 hours only; an older cursor is refused."""
    _, seller = seller_caller(request, scope("sale:offers:read"))
    emulator = context.get(request)
    emulator.market.sweep()
    limit = int_param(request, "limit", 100, 1, 1000, status=400)
    types = many(request, "type")
    if set(types) - set(OFFER_EVENT_TYPES):
        raise validation("Unknown event type", "type", 400)
    journal = emulator.market.offer_journals.get(seller.id)
    cursor = request.query.get("from")
    if journal is None:
        return json_response({"offerEvents": []})
    start = journal.first_retained_index(emulator.clock.now(), OFFER_RETENTION)
    if cursor is not None:
        seq = parse_offer_event_id(cursor) if len(cursor) <= 256 else None
        position = journal.find(seq) if seq is not None else None
        if position is None or position < start:
            if emulator.config.switches.expired_offer_cursor == "reject":
                raise validation(
                    f"Event with id '{cursor}' does not exist or is older than 24 hours",
                    "from",
                    400,
                )
        else:
            start = position + 1
    page = journal.read(start, limit, set(types) if types else None)
    return json_response(
        {
            "offerEvents": [
                {
                    "id": offer_event_id(e.seq),
                    "occurredAt": iso(e.occurred_at),
                    "type": e.type,
                    **e.payload,
                }
                for e in page
            ]
        }
    )


def routes() -> list[web.RouteDef]:
    """Offer routes."""
    return [
        web.get("/sale/offers", list_offers),
        web.get("/sale/product-offers/{offer_id}", get_product_offer),
        web.patch("/sale/product-offers/{offer_id}", patch_product_offer),
        web.get("/sale/offer-events", offer_events),
    ]
