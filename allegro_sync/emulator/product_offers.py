"""``/sale/product-offers/{id}``: read, partial edit (PATCH) and the status of an edit.

An edit may be accepted asynchronously (202 + ``Location`` + ``Retry-After``): its data is
visible at once, but the offer counts as being edited until the operation is done, and
another PATCH meanwhile gets 409 ``OfferConflictException``. Stock 0 on a live offer ends it
(EMPTY_STOCK, section 8.3) only when the edit finishes.
"""

from __future__ import annotations

import json
import math
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from . import context
from .auth import scope, seller_caller
from .catalog import EAN_PARAMETER_ID
from .clock import iso
from .context import Emulator
from .errors import ApiError, access_denied, json_response, rate_limited, validation
from .images import gallery_errors
from .models import Offer, OfferOperation, Seller
from .offer_ops import (
    DETAIL_FIELDS,
    LIVE,
    OfferRuleError,
    activate_offer,
    change_offer_fields,
    end_offer,
    set_price,
    set_stock,
)
from .orders import read_json
from .views import product_offer

GTIN_LENGTHS = (8, 10, 12, 13, 14)
# "The description section cannot have more than 40000 bytes in length." (the spec's
# StandardizedDescription); items per section: one, or two side by side
MAX_DESCRIPTION_BYTES = 40_000
MAX_SECTION_ITEMS = 2


def check_write_limit(emulator: Emulator, seller: Seller) -> None:
    """429 when the seller is over its product-offer write limit: the same answer as every
    other 429 (issue #4630's body; nothing in it or its headers tells the limits apart), so a
    client knows a per-seller limit by the endpoint alone, as with Allegro."""
    if emulator.offer_writes is None:
        return
    wait = emulator.offer_writes.try_write(seller.id)
    if wait is not None:
        seconds = max(1, math.ceil(wait))
        raise rate_limited(seconds if emulator.config.switches.send_retry_after else None)


def own_offer(request: web.Request, seller: Seller) -> Offer:
    """The seller's visible offer from the path; 404 when gone, 403 when someone else's."""
    offer = context.get(request).market.visible_offer(request.match_info["offer_id"])
    if offer is None:
        raise ApiError(404, "OfferNotFoundException", "Offer not found")
    if offer.seller_id != seller.id:
        raise access_denied()
    return offer


async def get_product_offer(request: web.Request) -> web.Response:
    """``GET /sale/product-offers/{offerId}``."""
    _, seller = seller_caller(request, scope("sale:offers:read"))
    offer = own_offer(request, seller)
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


def _images(value: Any, path: str = "images") -> list[str]:
    """A gallery as Allegro takes it (``gallery_errors``, as ``POST``): its first problem as
    the 422."""
    problems = gallery_errors(value, path)
    if problems:
        first = problems[0]
        raise ApiError(422, first["code"], first["message"], path=first["path"])
    return list(value)


def _description(value: Any) -> dict[str, Any]:
    """``{"sections": [{"items": [TEXT {content} | IMAGE {url}]}]}``, at most 40 000 bytes."""
    sections = value.get("sections") if isinstance(value, dict) else None
    if not isinstance(sections, list):
        raise validation("description.sections must be a list", "description.sections")
    for s, section in enumerate(sections):
        items = section.get("items") if isinstance(section, dict) else None
        path = f"description.sections[{s}].items"
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_SECTION_ITEMS:
            raise validation(f"A section has 1 or {MAX_SECTION_ITEMS} items", path)
        for i, item in enumerate(items):
            kind = item.get("type") if isinstance(item, dict) else None
            if kind == "TEXT" and isinstance(item.get("content"), str) and item["content"]:
                continue
            if kind == "IMAGE" and isinstance(item.get("url"), str):
                _images([item["url"]], f"{path}[{i}].url")
                continue
            raise validation("An item is TEXT with content or IMAGE with url", f"{path}[{i}]")
    if len(json.dumps(sections, ensure_ascii=False).encode()) > MAX_DESCRIPTION_BYTES:
        raise validation(
            f"The description cannot have more than {MAX_DESCRIPTION_BYTES} bytes",
            "description",
        )
    return {"sections": sections}


def _product_parameters(body: dict[str, Any]) -> list[dict[str, Any]] | None:
    """``productSet[0].product.parameters`` (None when not given)."""
    product_set = body.get("productSet")
    if not isinstance(product_set, list) or not product_set:
        return None
    product = (product_set[0] or {}).get("product") if isinstance(product_set[0], dict) else None
    if not isinstance(product, dict) or "parameters" not in product:
        return None
    return _parameters(product["parameters"], "productSet[0].product.parameters")


def _parameters(parameters: Any, path: str) -> list[dict[str, Any]]:
    """Parameters as Allegro takes them: each with ``id`` or ``name`` and ``values``."""
    if not isinstance(parameters, list):
        raise validation("parameters must be a list", path)
    out = []
    for n, parameter in enumerate(parameters):
        if not isinstance(parameter, dict):
            raise validation("A parameter is an object", f"{path}[{n}]")
        pid, name = parameter.get("id"), parameter.get("name")
        if not (isinstance(pid, str) and pid) and not (isinstance(name, str) and name):
            raise validation("A parameter needs its id or name", f"{path}[{n}]")
        values = parameter.get("values")
        if (
            not isinstance(values, list)
            or not values
            or not all(isinstance(v, str) and v for v in values)
        ):
            raise ApiError(
                422,
                "ParameterValidationException",
                "A parameter needs at least one value",
                path=f"{path}[{n}].values",
            )
        out.append(
            {"id": pid if isinstance(pid, str) and pid else None, "name": name, "values": values}
        )
    return out


def _parse_edit(body: dict[str, Any]) -> dict[str, Any]:
    """Validate the whole body before anything changes: field name -> new value."""
    edit: dict[str, Any] = {}
    if "name" in body:
        if not isinstance(body["name"], str) or not 1 <= len(body["name"]) <= 75:
            raise validation("name must have 1-75 characters", "name")
        edit["name"] = body["name"]
    if "external" in body:
        external = (body["external"] or {}).get("id")
        if external is not None and (not isinstance(external, str) or len(external) > 100):
            raise validation("external.id must have at most 100 characters", "external.id")
        edit["external_id"] = external
    ean = _ean_from(body)
    if ean is not None:
        if not ean.isdigit() or len(ean) not in GTIN_LENGTHS:
            raise ApiError(
                422,
                "NotStandardLengthInGtinParameter",
                "Invalid GTIN",
                path="productSet[0].product.parameters",
            )
        edit["ean"] = ean
    price = ((body.get("sellingMode") or {}).get("price") or {}).get("amount")
    if price is not None:
        try:
            edit["price"] = Decimal(str(price))
        except InvalidOperation:
            raise validation("Invalid price", "sellingMode.price.amount") from None
        if edit["price"] <= 0:
            raise validation("The price must be positive", "sellingMode.price.amount")
    stock = (body.get("stock") or {}).get("available")
    if stock is not None:
        if not isinstance(stock, int) or isinstance(stock, bool) or stock < 0:
            raise validation("stock.available must be >= 0", "stock.available")
        edit["stock"] = stock
    if "description" in body:
        edit["description"] = _description(body["description"])
    if "images" in body:
        edit["images"] = _images(body["images"])
        edit["image_url"] = edit["images"][0] if edit["images"] else None
    parameters = _product_parameters(body)
    if parameters is not None:
        edit["product_parameters"] = parameters
    if "parameters" in body:  # the offer's parameters
        edit["parameters"] = _parameters(body["parameters"], "parameters")
    status = (body.get("publication") or {}).get("status")
    if status is not None:
        if status not in ("ACTIVE", "ENDED"):
            raise validation("publication.status must be ACTIVE or ENDED", "publication.status")
        edit["status"] = status
    return edit


def _apply(emulator: Emulator, offer: Offer, edit: dict[str, Any], asynchronous: bool) -> bool:
    """Apply an edit; True when ending the offer for empty stock is left to the operation."""
    market = emulator.market
    changeable = ("name", "external_id", "ean", "image_url", *DETAIL_FIELDS)
    fields: dict[str, Any] = {k: edit[k] for k in changeable if k in edit}
    try:
        if edit.get("status") == "ACTIVE" and offer.status not in LIVE:
            # Raise the stock first, so "stock 5 + ACTIVE" revives a sold-out offer.
            if "stock" in edit:
                set_stock(market, offer, edit["stock"])
            activate_offer(market, offer)
    except OfferRuleError as err:
        raise ApiError(422, err.code, err.message) from None
    if fields:
        change_offer_fields(market, offer, fields)
    if "price" in edit:
        set_price(market, offer, edit["price"])
    end_later = False
    if "stock" in edit:
        end_later = asynchronous and edit["stock"] == 0 and offer.status in LIVE
        set_stock(market, offer, edit["stock"], end_when_empty=not asynchronous)
    if edit.get("status") == "ENDED" and offer.status != "ENDED":
        end_offer(market, offer)
    return end_later


def _start_operation(emulator: Emulator, offer: Offer, end_when_empty: bool) -> OfferOperation:
    market = emulator.market
    now = market.now()
    operation = OfferOperation(
        id=market.ids.uuid(),
        offer_id=offer.id,
        seller_id=offer.seller_id,
        started_at=now,
        done_at=now + timedelta(seconds=emulator.config.patch_processing_seconds),
    )
    market.operations[operation.id] = operation
    market.pending_edits[offer.id] = operation

    def finish() -> None:
        operation.completed_at = market.now()
        if market.pending_edits.get(offer.id) is operation:
            del market.pending_edits[offer.id]
        if end_when_empty and offer.stock == 0 and offer.status in LIVE:
            end_offer(market, offer, "EMPTY_STOCK")

    market.timers.at(operation.done_at.timestamp(), finish)
    return operation


def _operation_url(request: web.Request, emulator: Emulator, operation: OfferOperation) -> str:
    base = emulator.config.public_url or f"{request.scheme}://{request.host}"
    return f"{base.rstrip('/')}/sale/product-offers/{operation.offer_id}/operations/{operation.id}"


def _retry_after(emulator: Emulator, operation: OfferOperation) -> str:
    left = (operation.done_at - emulator.clock.now()).total_seconds()
    return str(max(1, math.ceil(left)))


async def patch_product_offer(request: web.Request) -> web.Response:
    """``PATCH /sale/product-offers/{offerId}``: 202 + Location + Retry-After (or 200 when
    the ``patch_always_async`` switch is off); 409 while the previous edit is processing."""
    _, seller = seller_caller(request, scope("sale:offers:write"))
    emulator = context.get(request)
    market = emulator.market
    offer = own_offer(request, seller)  # sweeps, so a finished edit is no longer pending
    check_write_limit(emulator, seller)
    if offer.id in market.pending_edits:
        raise ApiError(
            409,
            "OfferConflictException",
            "The previous edition of this offer is still being processed.",
            user_message="ERR_YOU_CANT_CHANGE_ITEM_EDIT_IN_PROGRESS",
        )
    body = await read_json(request)
    if not isinstance(body, dict):
        raise validation("Body must be an object")
    edit = _parse_edit(body)
    asynchronous = market.config.switches.patch_always_async
    end_later = _apply(emulator, offer, edit, asynchronous)
    market.recordings.edits.append(
        {"offer_id": offer.id, "seller_id": seller.id, "fields": sorted(body), "body": body}
    )
    dto = product_offer(market, offer, seller)
    if not asynchronous:
        return json_response(dto)
    operation = _start_operation(emulator, offer, end_later)
    headers = {
        "Location": _operation_url(request, emulator, operation),
        "Retry-After": _retry_after(emulator, operation),
    }
    return json_response(dto, status=202, headers=headers)


async def get_operation(request: web.Request) -> web.Response:
    """``GET /sale/product-offers/{offerId}/operations/{operationId}``: 202 while
    IN_PROGRESS (with Retry-After), then 303 without a body to the offer once DONE (the
    statuses the spec declares)."""
    _, seller = seller_caller(request, scope("sale:offers:read"))
    emulator = context.get(request)
    offer = own_offer(request, seller)
    operation = emulator.market.operations.get(request.match_info["operation_id"])
    if operation is None or operation.offer_id != offer.id:
        raise ApiError(404, "NotFoundException", "Operation not found")
    if operation.completed_at is not None:
        base = emulator.config.public_url or f"{request.scheme}://{request.host}"
        location = f"{base.rstrip('/')}/sale/product-offers/{offer.id}"
        return web.Response(status=303, headers={"Location": location})
    body = {  # SaleProductOfferStatusResponse
        "offer": {"id": offer.id},
        "operation": {
            "id": operation.id,
            "status": "IN_PROGRESS",
            "startedAt": iso(operation.started_at),
        },
    }
    headers = {
        "Location": _operation_url(request, emulator, operation),
        "Retry-After": _retry_after(emulator, operation),
    }
    return json_response(body, status=202, headers=headers)


def routes() -> list[web.RouteDef]:
    """Product-offer routes."""
    path = "/sale/product-offers/{offer_id}"
    return [
        web.get(path, get_product_offer),
        web.patch(path, patch_product_offer),
        web.get(f"{path}/operations/{{operation_id}}", get_operation),
    ]
