"""Offer listing, product-offer read/edit (EAN in parameter 225693) and the offer journal."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from . import context
from .auth import scope, seller_caller
from .clock import iso
from .errors import VND_JSON, ApiError, OAuthError, json_response, validation
from .ids import offer_event_id, parse_offer_event_id
from .listing_json import offer_listing_json, seller_tail
from .middleware import FAULT_INJECTED
from .models import Offer
from .offer_ops import FORMATS, STATUSES, sold_last_30_days
from .params import int_param, many
from .state import OFFER_RETENTION

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
    if offset + limit > 10_000_000:
        raise validation("offset + limit must not exceed 10000000", "offset", 400)
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
            "stock.sold": lambda o: sold_last_30_days(market, o),
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
    tail = seller_tail(seller)
    entries = ", ".join(offer_listing_json(market, o, tail) for o in page)
    text = f'{{"offers": [{entries}], "count": {len(page)}, "totalCount": {total}}}'
    return web.Response(text=text, content_type=VND_JSON)


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
            mode = emulator.config.switches.expired_offer_cursor
            if mode in ("reject-404", "reject-oauth"):
                request[FAULT_INJECTED] = True  # seen from Allegro, not what the spec says
                if mode == "reject-404":
                    raise ApiError(404, "NotFoundException", f"Event '{cursor}' not found")
                raise OAuthError(400, "invalid_request", f"Invalid event id: {cursor}")
            if mode == "reject":
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
        web.get("/sale/offer-events", offer_events),
    ]
