"""Carrier parcel tracking: ``GET /order/carriers/{carrierId}/tracking?waybill=..&waybill=..``.

Every tracking number added to an order (``shipments.py`` notes when, ``tracked_since``) gets
a tracking history that
advances with the emulator's clock, from the moment it was added: by default ``SCRIPT`` (handed
to the carrier, on its way, out for delivery, delivered after 26 hours); a waybill starting
with ``RET`` takes ``RETURN_SCRIPT`` (a notice left, then returned to the sender). The control
API scripts a waybill's history (``PUT /__control__/tracking/{carrierId}/{waybill}``).

As the spec says: one to 20 waybills per call (400 otherwise, and for an unknown carrier id);
a waybill the carrier does not know is answered with its number alone (no ``trackingDetails``);
statuses oldest first, each with ``occurredAt`` and ``code``; ``createdAt`` is the start of
the recording and ``updatedAt`` the time of the last change. Application or user tokens.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from . import context
from .auth import caller
from .clock import iso
from .errors import ApiError, json_response, validation
from .shipments import CARRIER_IDS

MAX_WAYBILLS = 20
HOUR = 3600.0
CODES = frozenset(
    {
        "AVAILABLE_FOR_PICKUP",
        "DELIVERED",
        "IN_TRANSIT",
        "ISSUE",
        "NOTICE_LEFT",
        "PENDING",
        "RELEASED_FOR_DELIVERY",
        "RETURNED",
    }
)
# (seconds after the tracking number was added, code)
SCRIPT: tuple[tuple[float, str], ...] = (
    (0.0, "PENDING"),
    (6 * HOUR, "IN_TRANSIT"),
    (20 * HOUR, "IN_TRANSIT"),  # at the destination hub: the same code again
    (22 * HOUR, "RELEASED_FOR_DELIVERY"),
    (26 * HOUR, "DELIVERED"),
)
RETURN_SCRIPT: tuple[tuple[float, str], ...] = (
    (0.0, "PENDING"),
    (6 * HOUR, "IN_TRANSIT"),
    (24 * HOUR, "NOTICE_LEFT"),
    (96 * HOUR, "RETURNED"),
)


def script_of(waybill: str) -> tuple[tuple[float, str], ...]:
    """The default history of a waybill."""
    return RETURN_SCRIPT if waybill.upper().startswith("RET") else SCRIPT


def history(
    started_at: datetime, script: tuple[tuple[float, str], ...], now: datetime
) -> dict[str, Any] | None:
    """``trackingDetails`` as of ``now`` (None: nothing recorded yet)."""
    seen = [
        (started_at + timedelta(seconds=after), code)
        for after, code in script
        if started_at + timedelta(seconds=after) <= now
    ]
    if not seen:
        return None
    return {
        "statuses": [{"occurredAt": iso(at), "code": code} for at, code in seen],
        "createdAt": iso(started_at),
        "updatedAt": iso(seen[-1][0]),
    }


async def get_tracking(request: web.Request) -> web.Response:
    """``GET /order/carriers/{carrierId}/tracking``."""
    caller(request, None)
    emulator = context.get(request)
    carrier = request.match_info["carrierId"]
    if carrier not in CARRIER_IDS:
        raise validation(f"Unknown carrier id: {carrier}", "carrierId", status=400)
    waybills = request.query.getall("waybill", [])
    if not waybills:
        raise validation("At least one waybill is required", "waybill", status=400)
    if len(waybills) > MAX_WAYBILLS:
        raise validation(
            f"At most {MAX_WAYBILLS} waybills can be given at once", "waybill", status=400
        )
    if any(not w.strip() for w in waybills):
        raise validation("Waybill cannot be empty", "waybill", status=400)
    now = emulator.clock.now()
    out = []
    for waybill in dict.fromkeys(waybills):
        entry: dict[str, Any] = {"waybill": waybill}
        started = emulator.market.tracked_since.get((carrier, waybill))
        script = emulator.market.parcel_scripts.get((carrier, waybill)) or script_of(waybill)
        details = history(started, script, now) if started is not None else None
        if details is not None:
            entry["trackingDetails"] = details
        out.append(entry)
    return json_response({"carrierId": carrier, "waybills": out})


async def put_script(request: web.Request) -> web.Response:
    """``PUT /__control__/tracking/{carrierId}/{waybill}`` ``{"statuses": [{"code",
    "after_seconds"}]], "started_at"?}``: the waybill's history from now (or ``started_at``)."""
    emulator = context.get(request)
    try:
        body = json.loads(await request.text())
        statuses = [(float(s["after_seconds"]), str(s["code"])) for s in body["statuses"]]
    except (ValueError, KeyError, TypeError):
        raise ApiError(400, "INVALID_JSON", "statuses: [{code, after_seconds}] expected") from None
    unknown = [code for _, code in statuses if code not in CODES]
    if unknown:
        raise validation(f"Unknown status codes: {', '.join(unknown)}", "statuses", status=400)
    key = (request.match_info["carrierId"], request.match_info["waybill"])
    emulator.market.tracked_since[key] = emulator.clock.now()
    emulator.market.parcel_scripts[key] = tuple(sorted(statuses))
    return json_response({"carrierId": key[0], "waybill": key[1]})


def routes() -> list[web.RouteDef]:
    """The tracking route and its control route."""
    return [
        web.get("/order/carriers/{carrierId}/tracking", get_tracking),
        web.put("/__control__/tracking/{carrierId}/{waybill}", put_script),
    ]
