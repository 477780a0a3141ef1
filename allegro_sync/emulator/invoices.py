"""Seller invoices: metadata first, then the PDF (3 MB at most), then an antivirus scan."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from typing import Any

from aiohttp import web

from . import context
from .auth import scope, seller_caller
from .clock import iso
from .errors import ApiError, json_response, not_found, validation
from .models import Invoice
from .orders import form_for, read_json

MAX_FILE = 3 * 1024 * 1024


def _scanning(invoice: Invoice, now_ts: float, scan_seconds: float) -> bool:
    return invoice.uploaded_at is None or now_ts < invoice.uploaded_at.timestamp() + scan_seconds


async def create(request: web.Request) -> web.Response:
    """``POST /order/checkout-forms/{id}/invoices`` -> 201 ``{id}``."""
    _, seller = seller_caller(request, scope("orders:write"))
    emulator = context.get(request)
    form = form_for(request, seller)
    body = await read_json(request)
    if not isinstance(body, dict):
        raise validation("Body must be an object")
    file = body.get("file")
    number = body.get("invoiceNumber")
    if not isinstance(file, dict) or not isinstance(file.get("name"), str) or not file["name"]:
        raise validation("file.name is required", "file.name")
    if not isinstance(number, str) or not number:
        raise validation("invoiceNumber is required", "invoiceNumber")
    if form.status == "CANCELLED":
        raise validation("The order does not allow adding an invoice")
    now = emulator.clock.now()
    if form.invoices:
        mode = emulator.config.switches.invoice_conflict
        last = form.invoices[-1]
        busy = _scanning(last, now.timestamp(), emulator.config.invoice_scan_seconds)
        if mode == "exists" or busy:
            raise ApiError(409, "CONFLICT", "The order already has a seller invoice")
    invoice = Invoice(
        id=emulator.market.ids.uuid(),
        checkout_form_id=form.id,
        invoice_number=number,
        file_name=file["name"],
        created_at=now,
    )
    form.invoices.append(invoice)
    emulator.market.recordings.invoices.append(
        {
            "invoice_id": invoice.id,
            "checkout_form_id": form.id,
            "seller_id": seller.id,
            "invoice_number": number,
            "file_name": invoice.file_name,
            "size": None,
            "sha256": None,
        }
    )
    return json_response({"id": invoice.id}, status=201)


async def upload(request: web.Request) -> web.Response:
    """``PUT .../invoices/{invoiceId}/file`` with ``application/pdf``."""
    _, seller = seller_caller(request, scope("orders:write"))
    emulator = context.get(request)
    form = form_for(request, seller)
    invoice = next((i for i in form.invoices if i.id == request.match_info["invoice_id"]), None)
    if invoice is None:
        raise not_found("Invoice not found")
    data = await request.read()
    if len(data) > MAX_FILE:
        raise ApiError(413, "PAYLOAD_TOO_LARGE", "The invoice file is larger than 3 MB")
    if not data:
        raise validation("The invoice file is empty")
    if invoice.uploaded_at is not None:
        raise ApiError(409, "CONFLICT", "The invoice file has already been uploaded")
    invoice.uploaded_at = emulator.clock.now()
    invoice.size = len(data)
    invoice.sha256 = hashlib.sha256(data).hexdigest()
    for record in emulator.market.recordings.invoices:
        if record["invoice_id"] == invoice.id:
            record.update(size=invoice.size, sha256=invoice.sha256)
    return web.Response(status=200)


def _invoice_json(invoice: Invoice, scan_seconds: float, now_ts: float) -> dict[str, Any]:
    file: dict[str, Any] = {
        "name": invoice.file_name,
        "uploadedAt": None,
        "securityVerification": None,
    }
    if invoice.uploaded_at is not None:
        scanning = _scanning(invoice, now_ts, scan_seconds)
        verified_at = invoice.uploaded_at + timedelta(seconds=scan_seconds)
        file["uploadedAt"] = iso(invoice.uploaded_at)
        file["securityVerification"] = {
            "status": "WAITING" if scanning else "ACCEPTED",  # the spec's enum
            "verifiedAt": None if scanning else iso(verified_at),
        }
    return {
        "id": invoice.id,
        "invoiceNumber": invoice.invoice_number,
        "createdAt": iso(invoice.created_at),
        "file": file,
    }


async def list_invoices(request: web.Request) -> web.Response:
    """``GET /order/checkout-forms/{id}/invoices``."""
    _, seller = seller_caller(request, scope("orders:read"))
    emulator = context.get(request)
    form = form_for(request, seller)
    now_ts = emulator.clock.timestamp()
    scan = emulator.config.invoice_scan_seconds
    return json_response(
        {
            "invoices": [_invoice_json(i, scan, now_ts) for i in form.invoices],
            "hasExternalInvoices": False,
        }
    )


def routes() -> list[web.RouteDef]:
    """Invoice routes."""
    return [
        web.post("/order/checkout-forms/{id}/invoices", create),
        web.get("/order/checkout-forms/{id}/invoices", list_invoices),
        web.put("/order/checkout-forms/{id}/invoices/{invoice_id}/file", upload),
    ]
