"""Admin API for shipments: the tracking numbers sent to Allegro (``shipment.added``) and their
delivery status (``shipment.status_changed``), and the parcels sent with Allegro that carry no
tracking number yet (requested, being made, failed: ``id`` and ``waybill`` null, the state in
``parcel``). ``status=`` filters by the row's state (lower case: pending, sent, refused; a
parcel being made is pending, a failed one refused) or by the carrier's last status (upper
case: IN_TRANSIT, ...)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
from aiohttp import web

from allegro_sync.adapters.postgres import parcels, shipments
from allegro_sync.contract import DELIVERY_STATUSES
from allegro_sync.daemon.api.params import choice_param, int_param, invalid
from allegro_sync.daemon.api.parcels import parcel_json

STATUSES = ("pending", "sent", "refused")


def _shipment_json(row: asyncpg.Record) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    parcel_only = row["kind"] == "p"
    return {
        "id": None if parcel_only else row["id"],
        "checkout_form_id": str(row["checkout_form_id"]),
        "account_id": row["account_id"],
        "waybill": row["waybill"],
        "carrier_id": row["carrier_id"],
        "carrier_name": row["carrier_name"],
        "line_items": row["line_items"],
        "status": row["status"],
        "allegro_shipment_id": row["allegro_shipment_id"],
        "error": row["error"],
        "created_at": iso(row["created_at"]),
        "sent_at": iso(row["sent_at"]),
        "fulfillment_at": iso(row["fulfillment_at"]),
        "delivery_status": row["delivery_status"],
        "delivery_status_at": iso(row["delivery_status_at"]),
        "tracking_done": row["tracking_done"],
    }


def add_shipment_routes(app: web.Application, pool: asyncpg.Pool) -> None:
    """``GET /shipments``."""

    async def list_shipments(request: web.Request) -> web.Response:
        limit = int_param(request, "limit", 100, low=1, high=1000)
        assert limit is not None
        form_id = None
        if request.query.get("checkout_form_id"):
            try:
                form_id = uuid.UUID(request.query["checkout_form_id"])
            except ValueError:
                raise invalid("checkout_form_id", "must be a UUID") from None
        cursor_time, cursor_kind, cursor_id = None, "s", None
        if request.query.get("cursor"):
            try:
                raw_time, raw_id, *kind = request.query["cursor"].split("|")
                cursor_time, cursor_id = datetime.fromisoformat(raw_time), int(raw_id)
                cursor_kind = kind[0] if kind else "s"
                if len(kind) > 1 or cursor_kind not in ("s", "p"):
                    raise ValueError(cursor_kind)
            except ValueError:
                raise invalid("cursor", "not a cursor this API gave out") from None
        status = choice_param(request, "status", (*STATUSES, *DELIVERY_STATUSES))
        delivery = status if status in DELIVERY_STATUSES else None
        rows = await shipments.list_page(
            pool,
            account_id=int_param(request, "account_id", None),
            checkout_form_id=form_id,
            status=None if delivery else status,
            after=(cursor_time, cursor_kind, cursor_id),
            limit=limit + 1,
            delivery_status=delivery,
        )
        page = rows[:limit]
        found = await parcels.by_shipments(
            pool,
            [
                r["allegro_shipment_id"]
                for r in page
                if r["allegro_shipment_id"] and r["kind"] == "s"
            ],
        )
        waiting = await parcels.by_ids(pool, [r["parcel_id"] for r in page if r["kind"] == "p"])
        items = [
            {
                **_shipment_json(r),
                "parcel": parcel_json(
                    waiting.get(r["parcel_id"])
                    if r["kind"] == "p"
                    else found.get(r["allegro_shipment_id"])
                ),
            }
            for r in page
        ]
        next_cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            next_cursor = f"{last['created_at'].isoformat()}|{last['id']}|{last['kind']}"
        return web.json_response({"items": items, "next": next_cursor})

    app.router.add_get("/shipments", list_shipments)
