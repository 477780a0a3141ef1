"""Allegro's shipment management ("Wysyłam z Allegro", allegro-2026.md 3): delivery services,
create and cancel commands, parcels, labels, the handover protocol, pickup proposals and pickup
commands (``/shipment-management/...``, spec tag "Shipment management").

Commands are asynchronous, as on Allegro: the POST answers 200 with the command (and
``Retry-After``), its status is ``IN_PROGRESS`` at the first read and until
``COMMAND_SECONDS`` of the emulator's clock have passed, then ``SUCCESS`` or ``ERROR`` with
Allegro-style errors. A command id sent again is refused with 409 "Command id was already
used", as Allegro's batch commands answer (the spec names no answer for it here): never a
second parcel, and the first command's status can still be read. The request body is held to
the spec first (one error per violation, spec_check.py), answered with 400 as the spec
declares for these resources (it names no 422); an unknown ``deliveryMethodId`` is a 400 at
once, and so is a receiver with an empty e-mail, phone or postal code, or without ``point``
for a locker method; what the carrier refuses (a package over its weight or size limit, a
package type it does not carry, cash on delivery over its limit) ends the command in
``ERROR``. Labels are small valid PDF documents (A6) or ZPL text; the protocol a PDF. A parcel
handed to a courier (its pickup ordered) can no longer be cancelled.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from . import context
from .auth import scope, seller_caller
from .clock import iso
from .errors import ApiError, error_entry, json_response
from .parcel_models import Parcel, ParcelCommand, ParcelDesk
from .pdf import text_pdf
from .sales import DELIVERY_METHODS
from .spec_check import refuse_off_spec

BASE = "/shipment-management"
COMMAND_SECONDS = 0.5
RETRY_AFTER = "1"
OCTET = "application/octet-stream"


# Per delivery method: name, carrier, the heaviest package (kg), the longest side (cm), the
# package types carried, the largest cash on delivery (PLN).
SERVICES: dict[str, dict[str, Any]] = {
    DELIVERY_METHODS[False][0]: {
        "name": DELIVERY_METHODS[False][1],
        "carrier": "DPD",
        "max_weight": Decimal("31.5"),
        "max_side": Decimal("150"),
        "types": ("PACKAGE", "DOX"),
        "max_cod": Decimal("5000"),
        "to_point": False,
    },
    DELIVERY_METHODS[True][0]: {
        "name": DELIVERY_METHODS[True][1],
        "carrier": "INPOST",
        "max_weight": Decimal("25"),
        "max_side": Decimal("64"),
        "types": ("PACKAGE",),
        "max_cod": Decimal("5000"),
        "to_point": True,  # a locker: the receiver's point is where it goes
    },
}


class Refusal(ApiError):
    """An error answer of these resources: their schemas (``Error400``, ``Error404``) have no
    ``metadata``, unlike the order and offer resources' errors."""

    def __init__(self, status: int, entries: list[dict[str, Any]]) -> None:
        super().__init__(status, str(entries[0]["code"]), str(entries[0]["message"]))
        self.entries = entries

    def body(self) -> dict[str, Any]:
        """``{"errors": [...]}``."""
        return {"errors": self.entries}


def _bad(message: str, path: str | None, status: int = 400) -> Refusal:
    return Refusal(status, [_error("VALIDATION_ERROR", message, path)])


def _missing(message: str) -> Refusal:
    return Refusal(404, [_error("NOT_FOUND", message)])


def _desk(request: web.Request) -> ParcelDesk:
    return context.get(request).market.parcels


def _now(request: web.Request) -> datetime:
    return context.get(request).clock.now()


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.text())
    except ValueError:
        raise Refusal(400, [_error("INVALID_JSON", "Malformed JSON body")]) from None
    if not isinstance(body, dict):
        raise _bad("Body must be an object", None)
    try:
        refuse_off_spec(request, body)
    except ApiError as exc:  # the spec's status for a bad request here is 400
        entries = [dict(e) for e in exc.body()["errors"]]
        for entry in entries:
            entry.pop("metadata", None)
            entry["details"] = entry.get("details") or entry["message"]
        raise Refusal(400, entries) from None
    return body


def _error(code: str, message: str, path: str | None = None) -> dict[str, Any]:
    entry = error_entry(code, message, path, message, message)
    entry.pop("metadata", None)
    return entry


def _command_id(body: dict[str, Any]) -> str:
    raw = body.get("commandId")
    if raw is None or raw == "":
        return str(uuid.uuid4())
    try:
        return str(uuid.UUID(str(raw)))
    except ValueError:
        raise _bad("Command id must be a UUID", "commandId") from None


def _refuse_used(desk: ParcelDesk, command_id: str) -> None:
    """A command id sent again is refused as Allegro's batch commands refuse it (409 "Command id
    was already used"); the command it named goes on, and its status can be read."""
    if command_id in desk.commands:
        raise Refusal(409, [_error("CONFLICT", "Command id was already used", "commandId")])


def _accepted(command: ParcelCommand) -> web.Response:
    return json_response(command.body, headers={"Retry-After": RETRY_AFTER})


def _status(request: web.Request, command: ParcelCommand) -> dict[str, Any]:
    command.reads += 1
    out: dict[str, Any] = {"commandId": command.id}
    if command.reads == 1 or _now(request) < command.ready_at:
        out["status"] = "IN_PROGRESS"
        out["errors"] = []
    elif command.errors:
        out["status"] = "ERROR"
        out["errors"] = command.errors
    else:
        out["status"] = "SUCCESS"
        out["errors"] = []
        if command.kind == "pickup":
            out["pickupId"] = command.result_id
            out["carrierPickupId"] = command.extra_id
        else:
            out["shipmentId"] = command.result_id
    return out


def _command_of(request: web.Request, seller_id: str, kind: str) -> ParcelCommand:
    command = _desk(request).commands.get(request.match_info["commandId"])
    if command is None or command.seller_id != seller_id or command.kind != kind:
        raise _missing("Command not found")
    return command


def _number(value: Any) -> Decimal:
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return Decimal(0)


def carrier_refusals(service: dict[str, Any], data: dict[str, Any]) -> list[dict[str, Any]]:
    """What the carrier refuses in a create command's input (the command then ends in ERROR)."""
    errors = []
    for n, package in enumerate(data.get("packages") or []):
        where = f"input.packages[{n}]"
        if package.get("type") not in service["types"]:
            errors.append(
                _error(
                    "PACKAGE_TYPE_NOT_SUPPORTED",
                    f"{service['name']} does not carry packages of type {package.get('type')}.",
                    f"{where}.type",
                )
            )
        weight = _number((package.get("weight") or {}).get("value"))
        if weight > service["max_weight"]:
            errors.append(
                _error(
                    "PACKAGE_WEIGHT_LIMIT_EXCEEDED",
                    f"Package weight {weight} kg exceeds the limit of {service['max_weight']} kg"
                    f" for {service['name']}.",
                    f"{where}.weight.value",
                )
            )
        for side in ("length", "width", "height"):
            size = _number((package.get(side) or {}).get("value"))
            if size > service["max_side"]:
                errors.append(
                    _error(
                        "PACKAGE_DIMENSIONS_LIMIT_EXCEEDED",
                        f"Package {side} {size} cm exceeds the limit of {service['max_side']} cm"
                        f" for {service['name']}.",
                        f"{where}.{side}.value",
                    )
                )
    cod = data.get("cashOnDelivery")
    if cod and _number(str(cod.get("amount", "0")).replace(",", ".")) > service["max_cod"]:
        errors.append(
            _error(
                "CASH_ON_DELIVERY_LIMIT_EXCEEDED",
                f"Cash on delivery exceeds the limit of {service['max_cod']} PLN.",
                "input.cashOnDelivery.amount",
            )
        )
    return errors


def _waybill(carrier: str) -> str:
    digits = str(uuid.uuid4().int)[:20].rjust(20, "0")
    return ("6200" + digits[:20]) if carrier == "INPOST" else ("0000" + digits[:10] + "U")


# --- routes ---------------------------------------------------------------------------------


async def delivery_services(request: web.Request) -> web.Response:
    """``GET /shipment-management/delivery-services``."""
    seller_caller(request, scope("shipments:write"))
    services = [
        {
            "id": {"deliveryMethodId": method_id},
            "name": service["name"],
            "carrierId": service["carrier"],
            "additionalServices": [],
            "additionalProperties": [],
            "owner": "ALLEGRO",
            "marketplaces": ["allegro-pl"],
            "packageTypes": list(service["types"]),
            "cashOnDelivery": {
                "limit": float(service["max_cod"]),
                "currency": "PLN",
                "paymentType": "MONEY_TRANSFER",
                "forceRequireIban": False,
            },
            "insurance": {"limit": 50000, "currency": "PLN"},
            "features": {},
        }
        for method_id, service in SERVICES.items()
    ]
    return json_response({"services": services})


async def create_shipment(request: web.Request) -> web.Response:
    """``POST /shipment-management/shipments/create-commands`` -> 200 with the command."""
    _, seller = seller_caller(request, scope("shipments:write"))
    body = await _body(request)
    desk = _desk(request)
    command_id = _command_id(body)
    _refuse_used(desk, command_id)
    data = body["input"]
    method = data.get("deliveryMethodId")
    service = SERVICES.get(str(method)) if method else None
    if service is None:
        raise _bad(
            f"Delivery method {method} is not available for the seller.",
            "input.deliveryMethodId",
            status=400,
        )
    _refuse_receiver(service, data.get("receiver") or {})
    now = _now(request)
    command = ParcelCommand(
        id=command_id,
        seller_id=seller.id,
        kind="create",
        body={"commandId": command_id, "input": data},
        ready_at=now + timedelta(seconds=COMMAND_SECONDS),
        errors=carrier_refusals(service, data),
    )
    if not command.errors:
        parcel = Parcel(
            id=str(uuid.uuid4()),
            seller_id=seller.id,
            command_id=command_id,
            input=data,
            carrier=service["carrier"],
            waybills=[_waybill(service["carrier"]) for _ in data.get("packages") or []],
            created_at=now,
        )
        desk.parcels[parcel.id] = parcel
        command.result_id = parcel.id
        # the carrier knows the parcel's waybills from now on (tracking.py)
        tracked = context.get(request).market.tracked_since
        for waybill in parcel.waybills:
            tracked.setdefault((parcel.carrier, waybill), now)
    desk.commands[command_id] = command
    return _accepted(command)


def _refuse_receiver(service: dict[str, Any], receiver: dict[str, Any]) -> None:
    """A 400 for a receiver the carrier cannot deliver to or notify: an empty e-mail, phone or
    postal code (the spec's schema only asks for strings), and no ``point`` for a locker."""
    entries = [
        _error("VALIDATION_ERROR", f"Receiver {name} must not be empty.", f"input.receiver.{name}")
        for name in ("email", "phone", "postalCode")
        if not str(receiver.get(name) or "").strip()
    ]
    if service["to_point"] and not str(receiver.get("point") or "").strip():
        entries.append(
            _error(
                "VALIDATION_ERROR",
                f"{service['name']} delivers to a pickup point: receiver point is required.",
                "input.receiver.point",
            )
        )
    if entries:
        raise Refusal(400, entries)


async def create_status(request: web.Request) -> web.Response:
    """``GET /shipment-management/shipments/create-commands/{commandId}``."""
    _, seller = seller_caller(request, scope("shipments:write"))
    command = _command_of(request, seller.id, "create")
    return json_response(_status(request, command))


def _parcel(request: web.Request, seller_id: str, parcel_id: str, unknown: int = 404) -> Parcel:
    parcel = _desk(request).parcels.get(parcel_id)
    if parcel is None or parcel.seller_id != seller_id:
        if unknown == 404:
            raise _missing(f"Shipment {parcel_id} not found")
        raise _bad(f"Shipment {parcel_id} not found.", "shipmentIds")
    return parcel


def parcel_json(parcel: Parcel) -> dict[str, Any]:
    """``ShipmentDto``."""
    data = parcel.input
    packages = []
    for package, waybill in zip(data.get("packages") or [], parcel.waybills, strict=False):
        packages.append(
            {
                **package,
                "waybill": waybill,
                "transportingInfo": [{"carrierId": parcel.carrier, "carrierWaybill": waybill}],
            }
        )
    out: dict[str, Any] = {
        "id": parcel.id,
        "sender": data["sender"],
        "receiver": data["receiver"],
        "packages": packages,
        "createdDate": iso(parcel.created_at),
        "carrier": parcel.carrier,
        "labelFormat": data.get("labelFormat") or "PDF",
        "additionalServices": data.get("additionalServices") or [],
        "transport": [parcel.carrier],
        "pickupAvailable": parcel.cancelled_at is None and parcel.pickup_id is None,
    }
    if data.get("deliveryMethodId"):
        out["deliveryMethodId"] = data["deliveryMethodId"]
    for key in ("referenceNumber", "insurance", "cashOnDelivery"):
        if data.get(key) is not None:
            out[key] = data[key]
    if parcel.cancelled_at is not None:
        out["canceledDate"] = iso(parcel.cancelled_at)
    return out


async def get_parcel(request: web.Request) -> web.Response:
    """``GET /shipment-management/shipments/{shipmentId}``."""
    _, seller = seller_caller(request, scope("shipments:read"))
    return json_response(parcel_json(_parcel(request, seller.id, request.match_info["shipmentId"])))


def _live(request: web.Request, seller_id: str, ids: list[str], unknown: int = 404) -> list[Parcel]:
    """The parcels named, none cancelled; an unknown one is a 404 (or a 400 where the spec
    declares no 404)."""
    found = [_parcel(request, seller_id, str(i), unknown) for i in ids]
    for parcel in found:
        if parcel.cancelled_at is not None:
            raise _bad(f"Shipment {parcel.id} is cancelled.", "shipmentIds")
    return found


async def label(request: web.Request) -> web.Response:
    """``POST /shipment-management/label``: the parcels' labels in one file."""
    _, seller = seller_caller(request, scope("shipments:read"))
    body = await _body(request)
    found = _live(request, seller.id, body["shipmentIds"])
    _desk(request).label_requests += 1
    if (found[0].input.get("labelFormat") or "PDF") == "ZPL":
        text = "".join(
            f"^XA^CF0,40^FO40,40^FD{p.carrier}^FS^FO40,100^FD{w}^FS"
            f"^FO40,160^BCN,120,Y,N,N^FD{w}^FS^XZ\n"
            for p in found
            for w in p.waybills
        )
        return web.Response(body=text.encode("ascii"), content_type=OCTET)
    lines = []
    for parcel in found:
        receiver = parcel.input["receiver"]
        for waybill in parcel.waybills:
            lines += [
                f"{parcel.carrier} {waybill}",
                f"To: {receiver.get('name') or receiver.get('company') or ''}",
                f"{receiver['street']}, {receiver['postalCode']} {receiver['city']}",
            ]
    return web.Response(body=text_pdf(lines), content_type=OCTET)


async def protocol(request: web.Request) -> web.Response:
    """``POST /shipment-management/protocol``: the handover protocol, a PDF."""
    _, seller = seller_caller(request, scope("shipments:read"))
    body = await _body(request)
    found = _live(request, seller.id, body["shipmentIds"])
    now = _now(request)
    lines = [f"Handover protocol {now.date().isoformat()}", f"Parcels: {len(found)}"]
    lines += [f"{p.carrier} {' '.join(p.waybills)}" for p in found]
    return web.Response(body=text_pdf(lines, width=595, height=842), content_type=OCTET)


async def cancel_shipment(request: web.Request) -> web.Response:
    """``POST /shipment-management/shipments/cancel-commands`` -> 200 with the command."""
    _, seller = seller_caller(request, scope("shipments:write"))
    body = await _body(request)
    desk = _desk(request)
    command_id = _command_id(body)
    _refuse_used(desk, command_id)
    shipment_id = str(body["input"]["shipmentId"])
    parcel = desk.parcels.get(shipment_id)
    if parcel is None or parcel.seller_id != seller.id:
        raise _bad(f"Shipment {shipment_id} not found.", "input.shipmentId")
    now = _now(request)
    command = ParcelCommand(
        id=command_id,
        seller_id=seller.id,
        kind="cancel",
        body={"commandId": command_id, "input": {"shipmentId": shipment_id}},
        ready_at=now + timedelta(seconds=COMMAND_SECONDS),
        result_id=shipment_id,
    )
    if parcel.pickup_id is not None:
        command.errors = [
            _error(
                "SHIPMENT_CANNOT_BE_CANCELLED",
                "The shipment was handed over to the carrier and cannot be cancelled.",
                "input.shipmentId",
            )
        ]
    elif parcel.cancelled_at is None:
        parcel.cancelled_at = now
    desk.commands[command_id] = command
    return _accepted(command)


async def cancel_status(request: web.Request) -> web.Response:
    """``GET /shipment-management/shipments/cancel-commands/{commandId}``."""
    _, seller = seller_caller(request, scope("shipments:write"))
    command = _command_of(request, seller.id, "cancel")
    return json_response(_status(request, command), headers={"Retry-After": RETRY_AFTER})


def _pickup_days(start: datetime) -> list[str]:
    """The next three working days from ``start``."""
    days: list[str] = []
    day = start.date()
    while len(days) < 3:
        day += timedelta(days=1)
        if day.weekday() < 5:
            days.append(day.isoformat())
    return days


def _pickup_day(day: str, now: datetime) -> bool:
    """Whether a courier can come on ``day``: a working day within 30 days from tomorrow."""
    try:
        wanted = datetime.fromisoformat(day[:10]).date()
    except ValueError:
        return False
    ahead = (wanted - now.date()).days
    return 1 <= ahead <= 30 and wanted.weekday() < 5


async def pickup_proposals(request: web.Request) -> web.Response:
    """``POST /shipment-management/pickup-proposals``: slots per parcel."""
    _, seller = seller_caller(request, scope("shipments:write"))
    body = await _body(request)
    found = _live(request, seller.id, body["shipmentIds"], unknown=400)
    start = _now(request)
    if body.get("readyDate"):
        try:
            start = datetime.fromisoformat(str(body["readyDate"])[:10]) - timedelta(days=1)
        except ValueError:
            raise _bad("readyDate must be a date (yyyy-MM-dd)", "readyDate", status=400) from None
    days = _pickup_days(start)
    proposals = [
        {
            "shipmentId": parcel.id,
            "proposalItems": [{"id": day, "name": f"{day} 10:00-16:00"} for day in days],
            "pickupTimes": [{"date": day, "minTime": "10:00", "maxTime": "16:00"} for day in days],
        }
        for parcel in found
    ]
    return json_response([{"proposals": proposals, "address": body["address"]}])


async def create_pickup(request: web.Request) -> web.Response:
    """``POST /shipment-management/pickups/create-commands`` -> 200 with the command."""
    _, seller = seller_caller(request, scope("shipments:write"))
    body = await _body(request)
    desk = _desk(request)
    command_id = _command_id(body)
    _refuse_used(desk, command_id)
    data = body["input"]
    parcels = _live(request, seller.id, data["shipmentIds"], unknown=400)
    now = _now(request)
    day = (data.get("pickupTime") or {}).get("date") or data.get("pickupDateProposalId")
    command = ParcelCommand(
        id=command_id,
        seller_id=seller.id,
        kind="pickup",
        body={"commandId": command_id, "input": data},
        ready_at=now + timedelta(seconds=COMMAND_SECONDS),
    )
    taken = [p.id for p in parcels if p.pickup_id is not None]
    if not _pickup_day(str(day), now):
        command.errors = [
            _error(
                "PICKUP_DATE_NOT_AVAILABLE",
                f"Pickup on {day} is not available.",
                "input.pickupTime.date",
            )
        ]
    elif taken:
        command.errors = [
            _error(
                "PICKUP_ALREADY_ORDERED",
                f"A pickup is already ordered for {', '.join(taken)}.",
                "input.shipmentIds",
            )
        ]
    else:
        pickup_id = str(uuid.uuid4())
        command.result_id = pickup_id
        command.extra_id = f"P{uuid.uuid4().int % 10**10:010d}"
        for parcel in parcels:
            parcel.pickup_id = pickup_id
        desk.pickups[pickup_id] = [p.id for p in parcels]
    desk.commands[command_id] = command
    return _accepted(command)


async def pickup_status(request: web.Request) -> web.Response:
    """``GET /shipment-management/pickups/create-commands/{commandId}``."""
    _, seller = seller_caller(request, scope("shipments:write"))
    command = _command_of(request, seller.id, "pickup")
    return json_response(_status(request, command), headers={"Retry-After": RETRY_AFTER})


async def control_parcels(request: web.Request) -> web.Response:
    """``GET /__control__/parcels``: every parcel made, with its state."""
    desk = _desk(request)
    items = [
        {
            "id": p.id,
            "seller_id": p.seller_id,
            "command_id": p.command_id,
            "carrier": p.carrier,
            "waybills": p.waybills,
            "reference": p.input.get("referenceNumber"),
            "cancelled": p.cancelled_at is not None,
            "pickup_id": p.pickup_id,
        }
        for p in desk.parcels.values()
    ]
    return web.json_response(
        {
            "parcels": items,
            "commands": len(desk.commands),
            "pickups": {k: v for k, v in desk.pickups.items()},
            "label_requests": desk.label_requests,
        }
    )


def routes() -> list[web.RouteDef]:
    """Shipment-management routes, and their control view."""
    return [
        web.get(f"{BASE}/delivery-services", delivery_services),
        web.post(f"{BASE}/shipments/create-commands", create_shipment),
        web.get(f"{BASE}/shipments/create-commands/{{commandId}}", create_status),
        web.post(f"{BASE}/shipments/cancel-commands", cancel_shipment),
        web.get(f"{BASE}/shipments/cancel-commands/{{commandId}}", cancel_status),
        web.get(f"{BASE}/shipments/{{shipmentId}}", get_parcel),
        web.post(f"{BASE}/label", label),
        web.post(f"{BASE}/protocol", protocol),
        web.post(f"{BASE}/pickup-proposals", pickup_proposals),
        web.post(f"{BASE}/pickups/create-commands", create_pickup),
        web.get(f"{BASE}/pickups/create-commands/{{commandId}}", pickup_status),
        web.get("/__control__/parcels", control_parcels),
    ]
