"""Parcel tracking numbers on orders: the carrier list and an order's shipments.

``GET /order/carriers`` (application or user token), ``POST`` and ``GET
/order/checkout-forms/{id}/shipments``. Allegro answers 400 for a missing or invalid field (an
unknown carrier id, a waybill empty or over 64 characters, a carrier name over 30), 422 for a
line item that is not on the order, 404 for an order that is not the seller's. The same waybill
twice is taken twice, as Allegro does (the duplicate then shows in the buyer's view and the
seller's on-time figures): not adding it twice is the client's job.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from aiohttp import web

from . import context
from .auth import caller, scope, seller_caller
from .clock import iso
from .errors import ApiError, json_response, validation
from .models import Shipment
from .orders import form_for
from .spec_check import refuse_off_spec

# (id, name) as Allegro lists them; OTHER carries no name (the spec's example).
CARRIERS: tuple[tuple[str, str | None], ...] = (
    ("ALLEGRO", "Allegro One"),
    ("INPOST", "InPost"),
    ("DPD", "DPD"),
    ("DHL", "DHL"),
    ("UPS", "UPS"),
    ("GLS", "GLS"),
    ("POCZTA_POLSKA", "Poczta Polska"),
    ("ORLEN_PACZKA", "ORLEN Paczka"),
    ("FEDEX", "FedEx"),
    ("GEIS", "Geis"),
    ("RABEN", "Raben"),
    ("PATRON", "Patron Service"),
    ("YUN_EXPRESS", "Yun Express"),
    ("OTHER", None),
)
CARRIER_IDS = frozenset(c for c, _ in CARRIERS)
MAX_WAYBILL = 64
MAX_CARRIER_NAME = 30


async def list_carriers(request: web.Request) -> web.Response:
    """``GET /order/carriers``: the list, cacheable for a day."""
    caller(request, None)
    carriers = [{"id": c} if n is None else {"id": c, "name": n} for c, n in CARRIERS]
    return json_response({"carriers": carriers}, headers={"Cache-Control": "max-age=86400"})


def _bad(message: str, path: str) -> ApiError:
    return validation(message, path, status=400)


def _text(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad(f"{name} must be a string", name)
    return value


def shipment_json(shipment: Shipment) -> dict[str, Any]:
    """``CheckoutFormAddWaybillCreated``."""
    out: dict[str, Any] = {
        "id": shipment.id,
        "waybill": shipment.waybill,
        "carrierId": shipment.carrier_id,
        "lineItems": [{"id": i} for i in shipment.line_item_ids],
        "createdAt": iso(shipment.created_at),
    }
    if shipment.carrier_name is not None:
        out["carrierName"] = shipment.carrier_name
    return out


async def add_shipment(request: web.Request) -> web.Response:
    """``POST /order/checkout-forms/{id}/shipments`` -> 201 with the shipment."""
    _, seller = seller_caller(request, scope("orders:write"))
    emulator = context.get(request)
    form = form_for(request, seller)
    try:
        body = json.loads(await request.text())
    except ValueError:
        raise ApiError(400, "INVALID_JSON", "Malformed JSON body") from None
    if not isinstance(body, dict):
        raise _bad("Body must be an object", "")
    carrier = _text(body, "carrierId")
    waybill = _text(body, "waybill")
    name = _text(body, "carrierName")
    if not carrier:
        raise _bad("carrierId is required", "carrierId")
    if carrier not in CARRIER_IDS:
        raise _bad(f"Unknown carrier id: {carrier}", "carrierId")
    if waybill is None or not waybill.strip():
        raise _bad("Waybill cannot be empty", "waybill")
    if len(waybill) > MAX_WAYBILL:
        raise _bad(f"Waybill must be no longer than {MAX_WAYBILL} characters", "waybill")
    if name is not None and len(name) > MAX_CARRIER_NAME:
        raise _bad(
            f"Carrier name must be no longer than {MAX_CARRIER_NAME} characters", "carrierName"
        )
    if carrier == "OTHER" and not (name or "").strip():
        raise _bad("carrierName is required for carrier OTHER", "carrierName")
    refuse_off_spec(request, body)  # the rest of the schema (lineItems' shape): 422
    on_form = [i.id for i in form.line_items]
    wanted = [str(i["id"]) for i in body.get("lineItems") or []]
    for line_id in wanted:
        if line_id not in on_form:
            raise validation(f"Line item {line_id} does not belong to the order", "lineItems")
    shipment = Shipment(
        id=base64.b64encode(f"{carrier}:{waybill}".encode()).decode(),
        waybill=waybill,
        carrier_id=carrier,
        carrier_name=name if carrier == "OTHER" else None,
        line_item_ids=wanted or on_form,
        created_at=emulator.clock.now(),
    )
    form.shipments.append(shipment)
    emulator.market.tracked_since.setdefault((carrier, waybill), shipment.created_at)
    emulator.market.recordings.shipments.append(
        {"checkout_form_id": form.id, "seller_id": seller.id, **shipment_json(shipment)}
    )
    return json_response(shipment_json(shipment), status=201)


async def list_shipments(request: web.Request) -> web.Response:
    """``GET /order/checkout-forms/{id}/shipments``."""
    _, seller = seller_caller(request, scope("orders:read"))
    form = form_for(request, seller)
    return json_response({"shipments": [shipment_json(s) for s in form.shipments]})


def routes() -> list[web.RouteDef]:
    """Carrier and shipment routes."""
    return [
        web.get("/order/carriers", list_carriers),
        web.post("/order/checkout-forms/{id}/shipments", add_shipment),
        web.get("/order/checkout-forms/{id}/shipments", list_shipments),
    ]
