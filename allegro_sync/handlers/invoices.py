"""``invoice.added`` from the ERP: the seller's invoice on the Allegro order (allegro-api.md 6.4).

Two calls: ``POST .../invoices`` (metadata, answers the invoice id) then ``PUT .../file`` (the
PDF). Both run in ``prepare``; each step's result is written to ``invoices`` at once, outside
the batch transaction, because it is a fact on Allegro's side that a crash must not forget:

- no row, or a row without an Allegro id: POST. 409 "already has an invoice" on a redelivery
  (our POST went through but its answer was lost) is resolved by reading the form's invoices
  and taking the one with our number.
- a row with an id but no ``uploaded_at``: PUT the file. 409 "already uploaded" means done.
- ``uploaded_at`` set: nothing to do on Allegro.

The handler (in the batch transaction) then writes the event log entry, keyed by the invoice, so
a redelivery converges on one. No e-mail: the upload is how the invoice reaches the buyer.

Input that can never succeed is dead-lettered before any call: invalid base64, an empty file,
a file over Allegro's 3 MB, something that is not a PDF, an unknown checkout form.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog

from allegro_sync.adapters.allegro.client import AllegroRestClient
from allegro_sync.adapters.allegro.errors import (
    AllegroConflict,
    AllegroNotFound,
    AllegroRejected,
)
from allegro_sync.adapters.postgres import event_log, invoices, orders
from allegro_sync.contract import INVOICE_BASE64_CHARS, INVOICE_MAX_BYTES, InvoiceAdded
from allegro_sync.errors import BadInput, Refused

log = structlog.get_logger(__name__)

MAX_FILE_BYTES = INVOICE_MAX_BYTES  # Allegro answers 413 above this
_BLANKS = " \t\r\n\v\f"


def decode_pdf(content_base64: str) -> bytes:
    """The invoice file, or BadInput saying why it can never be uploaded. Too long a text is
    refused on its length, before anything is decoded."""
    encoded = len(content_base64) - sum(content_base64.count(c) for c in _BLANKS)
    if encoded > INVOICE_BASE64_CHARS:
        raise BadInput(
            f"content_base64 has {encoded} characters, more than the {INVOICE_BASE64_CHARS} of"
            f" a file of 3 MB: Allegro accepts at most 3 MB ({MAX_FILE_BYTES} bytes)"
        )
    try:
        # validate=True: stray characters are an error, not silently skipped
        data = base64.b64decode("".join(content_base64.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadInput(f"content_base64 is not valid base64: {exc}") from None
    if not data:
        raise BadInput("the invoice file is empty")
    if len(data) > MAX_FILE_BYTES:
        raise BadInput(
            f"the invoice file has {len(data)} bytes; Allegro accepts at most 3 MB"
            f" ({MAX_FILE_BYTES} bytes)"
        )
    # PDF readers accept the header anywhere in the first kilobyte.
    if b"%PDF-" not in data[:1024]:
        raise BadInput("the invoice file is not a PDF (Allegro accepts PDF only)")
    return data


@dataclass(frozen=True)
class PreparedInvoice:
    """The invoice is on Allegro with its file; what the handler records."""

    account_id: int
    checkout_form_id: uuid.UUID
    invoice_number: str
    allegro_invoice_id: str


async def upload_invoice(
    allegro: AllegroRestClient, pool: asyncpg.Pool, message: InvoiceAdded
) -> PreparedInvoice:
    """Put the invoice on Allegro (the ``prepare`` step), resuming where an earlier attempt
    stopped; raises what decides the message's fate."""
    data = decode_pdf(message.content_base64)
    form_id, number = message.checkout_form_id, message.invoice_number
    order = await pool.fetchrow(orders.OWNER, form_id)
    if order is None:
        raise BadInput(f"unknown checkout form {form_id}: no such order was received")
    account_id: int = order["account_id"]
    row = await pool.fetchrow(invoices.START, form_id, number, account_id, message.file_name)
    invoice_id: str | None = row["allegro_invoice_id"]
    path = f"/order/checkout-forms/{form_id}/invoices"
    try:
        if row["uploaded_at"] is None:
            if invoice_id is None:
                invoice_id, uploaded = await _create(allegro, account_id, path, message)
                await pool.execute(invoices.SET_ALLEGRO_ID, form_id, number, invoice_id)
                if uploaded:
                    await _mark_uploaded(pool, form_id, number, None)
                    return PreparedInvoice(account_id, form_id, number, invoice_id)
            await _upload(allegro, account_id, f"{path}/{invoice_id}/file", data)
            await _mark_uploaded(pool, form_id, number, data)
    except AllegroRejected as exc:
        if exc.status == 413:  # our size check should have caught it; Allegro's word counts
            raise BadInput(f"the invoice file is too large for Allegro: {exc}") from exc
        await _refusal(pool, account_id, form_id, number, str(exc))
        raise Refused(str(exc)) from exc
    except (AllegroNotFound, _OtherInvoice) as exc:
        await _refusal(pool, account_id, form_id, number, str(exc))
        raise Refused(str(exc)) from exc
    assert invoice_id is not None
    log.info("invoice_uploaded", checkout_form_id=str(form_id), size_bytes=len(data))
    return PreparedInvoice(account_id, form_id, number, invoice_id)


class _OtherInvoice(Exception):
    """Allegro holds a seller invoice for the order under another number."""


async def _create(
    allegro: AllegroRestClient, account_id: int, path: str, message: InvoiceAdded
) -> tuple[str, bool]:
    """The Allegro id of our invoice, POSTing it unless it exists; and whether its file is
    already there."""
    try:
        response = await allegro.request(
            account_id,
            "POST",
            path,
            action="add invoice",
            json={"file": {"name": message.file_name}, "invoiceNumber": message.invoice_number},
        )
        return str(response.body["id"]), False
    except AllegroConflict:
        pass
    # "Already has an invoice": ours, from an attempt whose answer we lost, or another one.
    listing = await allegro.get(account_id, path, action="read invoices")
    for invoice in listing.get("invoices") or []:
        if invoice.get("invoiceNumber") == message.invoice_number:
            uploaded = bool((invoice.get("file") or {}).get("uploadedAt"))
            return str(invoice["id"]), uploaded
    raise _OtherInvoice(
        f"the order already has another seller invoice on Allegro; {message.invoice_number}"
        " was not added"
    )


async def _upload(allegro: AllegroRestClient, account_id: int, path: str, data: bytes) -> None:
    # 409 "file already uploaded": an earlier attempt got there, which is what we want.
    with contextlib.suppress(AllegroConflict):
        await allegro.request(
            account_id,
            "PUT",
            path,
            action="upload invoice file",
            data=data,
            content_type="application/pdf",
        )


async def _mark_uploaded(
    pool: asyncpg.Pool, form_id: uuid.UUID, number: str, data: bytes | None
) -> None:
    size = len(data) if data is not None else None
    digest = hashlib.sha256(data).hexdigest() if data is not None else None
    await pool.execute(invoices.MARK_UPLOADED, form_id, number, size, digest)


async def _refusal(
    pool: asyncpg.Pool, account_id: int, form_id: uuid.UUID, number: str, reason: str
) -> None:
    async with pool.acquire() as conn:
        await event_log.write(
            conn,
            account_id,
            "orders",
            "error",
            "invoice_refused",
            f"Invoice {number} for order {form_id} was not added: {reason}",
            details={"checkout_form_id": str(form_id), "invoice_number": number},
        )


async def record_invoice(prepared: PreparedInvoice, conn: asyncpg.Connection) -> None:
    """In the batch transaction: the event log entry. No e-mail: the upload is how the invoice
    reaches the buyer; Allegro stops a mail that carries or announces one (since 2 March 2026)."""
    form_id, number = prepared.checkout_form_id, prepared.invoice_number
    row: Any = await conn.fetchrow(orders.WITH_ACCOUNT, form_id)
    if row is None:
        return  # the order was deleted with its account meanwhile
    await event_log.write(
        conn,
        prepared.account_id,
        "orders",
        "info",
        "invoice_added",
        f"Invoice {number} added to order {form_id} on Allegro",
        details={
            "checkout_form_id": str(form_id),
            "invoice_number": number,
            "allegro_invoice_id": prepared.allegro_invoice_id,
        },
        dedupe_key=f"invoice:{form_id}:{number}",
    )
