"""Admin API for parcels sent with Allegro: a parcel's label again, the handover protocol of
a set of parcels, a courier pickup (``handlers/parcels.py``)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import asyncpg
from aiohttp import web

from allegro_sync.adapters.allegro.client import AllegroRestClient
from allegro_sync.adapters.postgres import parcels
from allegro_sync.daemon.api.errors import ApiError
from allegro_sync.daemon.api.params import invalid, json_body
from allegro_sync.handlers.parcel_handover import (
    PickupPending,
    pickup,
    protocol,
    resume_pickup,
)
from allegro_sync.handlers.parcels import ParcelError

MEDIA_TYPES = {"PDF": "application/pdf", "ZPL": "application/x-zpl"}
MAX_SHIPMENTS = 100


def parcel_json(row: asyncpg.Record | None) -> dict[str, Any] | None:
    """The ``parcel`` field of a ``GET /shipments`` item: the parcel sent with Allegro that
    carries the tracking number, or is still to carry one (None: the ERP's own); a refused
    one (``failed``, or a refused cancel) with Allegro's words, errors and trace id."""
    if row is None:
        return None
    return {
        "id": row["id"],
        "status": row["status"],
        "label_format": row["label_format"],
        "command_id": str(row["command_id"]),
        "pickup_id": row["pickup_id"],
        "created_at": row["created_at"].isoformat(),
        "reason": row["reason"],
        "errors": row["errors"],
        "trace_id": row["trace_id"],
    }


def _request(body: object, *, with_date: bool) -> tuple[int, list[str], date | None]:
    """``{account_id, shipment_ids, date?}``, checked."""
    if not isinstance(body, dict):
        raise invalid("body", "expected a JSON object")
    allowed = {"account_id", "shipment_ids"} | ({"date"} if with_date else set())
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise invalid(unknown[0], "unknown field")
    account_id = body.get("account_id")
    if not isinstance(account_id, int) or isinstance(account_id, bool) or account_id < 1:
        raise invalid("account_id", "must be an account id (a positive integer)")
    ids = body.get("shipment_ids")
    if (
        not isinstance(ids, list)
        or not ids
        or len(ids) > MAX_SHIPMENTS
        or not all(isinstance(i, str) and 0 < len(i) <= 100 and i.isprintable() for i in ids)
    ):
        raise invalid("shipment_ids", f"must be a list of 1-{MAX_SHIPMENTS} shipment ids")
    on = None
    if body.get("date") is not None:
        try:
            on = date.fromisoformat(str(body["date"]))
        except ValueError:
            raise invalid("date", "must be a date (YYYY-MM-DD)") from None
    return account_id, list(ids), on


def _resume(body: dict[str, Any]) -> tuple[int, uuid.UUID]:
    """``{account_id, command_id}`` (a pickup asked for before), checked."""
    unknown = sorted(set(body) - {"account_id", "command_id"})
    if unknown:
        raise invalid(unknown[0], "unknown field")
    account_id = body.get("account_id")
    if not isinstance(account_id, int) or isinstance(account_id, bool) or account_id < 1:
        raise invalid("account_id", "must be an account id (a positive integer)")
    try:
        return account_id, uuid.UUID(str(body["command_id"]))
    except ValueError:
        raise invalid("command_id", "must be a pickup's command id (a UUID)") from None


def add_parcel_routes(app: web.Application, pool: asyncpg.Pool, allegro: AllegroRestClient) -> None:
    """``GET /shipments/{id}/label``, ``POST /shipments/protocol``, ``POST /shipments/pickup``."""

    async def get_label(request: web.Request) -> web.Response:
        shipment_id = request.match_info["id"]
        row = await parcels.label(pool, shipment_id)
        if row is None:
            raise ApiError(404, "not_found", f"no parcel with shipment id {shipment_id}")
        if row["label"] is None:
            raise ApiError(409, "no_label", f"parcel {shipment_id} has no label yet")
        return web.Response(
            body=bytes(row["label"]),
            content_type=MEDIA_TYPES[row["label_format"]],
            headers={
                "Content-Disposition": f'attachment; filename="label-{shipment_id}'
                f'.{row["label_format"].lower()}"'
            },
        )

    async def post_protocol(request: web.Request) -> web.Response:
        account_id, ids, _ = _request(await json_body(request), with_date=False)
        try:
            document = await protocol(allegro, pool, account_id, ids)
        except ParcelError as exc:
            raise ApiError(422, "refused", str(exc)) from None
        return web.Response(body=document, content_type="application/pdf")

    async def post_pickup(request: web.Request) -> web.Response:
        body = await json_body(request)
        try:
            if isinstance(body, dict) and "command_id" in body:
                account_id, command_id = _resume(body)
                result: dict[str, Any] = await resume_pickup(allegro, pool, account_id, command_id)
            else:
                account_id, ids, on = _request(body, with_date=True)
                result = await pickup(allegro, pool, account_id, ids, on)
        except PickupPending as exc:
            # not an error: the courier is being ordered; the same command is read again later
            pending = {"status": "in_progress", "command_id": str(exc.command_id)}
            return web.json_response({**pending, "detail": str(exc)}, status=202)
        except ParcelError as exc:
            raise ApiError(422, "refused", str(exc)) from None
        return web.json_response(result)

    app.router.add_get("/shipments/{id}/label", get_label)
    app.router.add_post("/shipments/protocol", post_protocol)
    app.router.add_post("/shipments/pickup", post_pickup)
