"""ERP -> Allegro order updates end to end: ``order.status_changed`` sets the fulfillment status
and ``invoice.added`` puts the invoice and its PDF on the order (allegro-api.md 6.3, 6.4)."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import asyncpg

from allegro_sync.adapters.broker.topology import DEAD_LETTER_QUEUE
from allegro_sync.contract import INVOICE_BASE64_CHARS
from allegro_sync.daemon.app import Daemon
from tests.e2e.conftest import Admin, Emulator
from tests.e2e.flows import PDF, _buy, _dead_letters, _handled, _invoice, _log_codes, _send, _shop
from tests.helpers import drain_queue, eventually


async def _order(admin: Admin, emulator: Emulator, db: asyncpg.Pool) -> tuple[int, str]:
    """A connected account with one paid order stored: (account id, checkout form id)."""
    _, account, offers = await _shop(admin, emulator, db, auto_create_orders=True)
    form_id = await _buy(emulator, offers[0])
    await _handled(db, form_id, "READY_FOR_PROCESSING")
    return int(account["id"]), form_id


async def _recorded(emulator: Emulator, what: str, form_id: str) -> list[dict[str, Any]]:
    found = await emulator.control("GET", f"/{what}")
    return [r for r in found[what] if r["checkout_form_id"] == form_id]


# --- fulfillment ----------------------------------------------------------------------------


async def test_an_erp_status_sets_the_fulfillment_status_once_per_message(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, amqp_url: str
) -> None:
    account_id, form_id = await _order(admin, emulator, db)
    body = {"checkout_form_id": form_id, "status": "shipped"}  # an ERP alias of SENT
    await _send(amqp_url, "order.status_changed", body, "erp-status-1")
    await _send(amqp_url, "order.status_changed", body, "erp-status-1")  # redelivered

    async def set_on_allegro() -> Any:
        form = await emulator.control("GET", f"/checkout-forms/{form_id}")
        return form["fulfillment"]["status"] == "SENT"

    await eventually(set_on_allegro, timeout=20)
    await eventually(lambda: _has(db, account_id, "fulfillment_status_set"))
    puts = await _recorded(emulator, "fulfillments", form_id)
    assert {p["status"] for p in puts} == {"SENT"}
    assert (await _log_codes(db, account_id)).count("fulfillment_status_set") == 1


async def test_a_stale_revision_is_read_again_and_the_status_set(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, amqp_url: str
) -> None:
    account_id, form_id = await _order(admin, emulator, db)
    await db.execute(
        "UPDATE orders SET revision = 'stale' WHERE checkout_form_id = $1", uuid.UUID(form_id)
    )
    await _send(
        amqp_url,
        "order.status_changed",
        {"checkout_form_id": form_id, "status": "PROCESSING"},
        "s1",
    )
    await eventually(lambda: _has(db, account_id, "fulfillment_status_set"), timeout=20)
    [put] = await _recorded(emulator, "fulfillments", form_id)
    assert put["status"] == "PROCESSING" and put["revision"] not in (None, "stale")


async def test_unknown_statuses_and_forms_are_dead_lettered_with_a_reason(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, amqp_url: str
) -> None:
    _, form_id = await _order(admin, emulator, db)
    await _send(
        amqp_url, "order.status_changed", {"checkout_form_id": form_id, "status": "LOST"}, "u1"
    )
    await _send(
        amqp_url,
        "order.status_changed",
        {"checkout_form_id": str(uuid.uuid4()), "status": "SENT"},
        "u2",
    )
    await _send(
        amqp_url, "order.status_changed", {"checkout_form_id": form_id, "status": "RETURNED"}, "u3"
    )
    errors = await _dead_letters(amqp_url, 3)
    assert any("unknown order status 'LOST'" in e for e in errors), errors
    assert any("unknown checkout form" in e for e in errors), errors
    assert any("RETURNED is set by Allegro only" in e for e in errors), errors
    assert await _recorded(emulator, "fulfillments", form_id) == []


# --- invoices -------------------------------------------------------------------------------


async def test_an_invoice_is_added_with_its_pdf_exactly_once(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, amqp_url: str
) -> None:
    account_id, form_id = await _order(admin, emulator, db)
    body = _invoice(form_id)
    await _send(amqp_url, "invoice.added", body, "inv-1")
    await _send(amqp_url, "invoice.added", body, "inv-1")  # redelivered
    await _send(amqp_url, "invoice.added", body, "inv-1-again")  # re-sent under a new id

    async def uploaded() -> Any:
        return await db.fetchval(
            "SELECT uploaded_at FROM invoices WHERE checkout_form_id = $1", uuid.UUID(form_id)
        )

    await eventually(uploaded, timeout=20)
    await eventually(lambda: _handled_all(db, 3))
    [invoice] = await _recorded(emulator, "invoices", form_id)
    assert invoice["invoice_number"] == "FV/1/2026"
    assert invoice["size"] == len(PDF) and invoice["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert (await _log_codes(db, account_id)).count("invoice_added") == 1
    assert await drain_queue(amqp_url, DEAD_LETTER_QUEUE, wait=0.2) == []


async def test_a_redelivery_after_a_crash_between_post_and_put_uploads_the_file(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, amqp_url: str, daemon: Daemon
) -> None:
    account_id, form_id = await _order(admin, emulator, db)
    assert daemon.allegro is not None
    # The metadata POST went through, but the daemon died before it stored the answer.
    await daemon.allegro.request(
        account_id,
        "POST",
        f"/order/checkout-forms/{form_id}/invoices",
        action="add invoice",
        json={"file": {"name": "FV_1_2026.pdf"}, "invoiceNumber": "FV/1/2026"},
    )
    await _send(amqp_url, "invoice.added", _invoice(form_id), "inv-after-crash")
    await eventually(lambda: _has(db, account_id, "invoice_added"), timeout=20)
    [invoice] = await _recorded(emulator, "invoices", form_id)
    assert invoice["size"] == len(PDF)


async def test_an_invoice_that_can_never_be_uploaded_is_dead_lettered(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, amqp_url: str
) -> None:
    _, form_id = await _order(admin, emulator, db)
    too_big = PDF + b"0" * (3 * 1024 * 1024)
    await _send(amqp_url, "invoice.added", _invoice(form_id, content=too_big), "big")
    await _send(amqp_url, "invoice.added", _invoice(form_id, content=b""), "empty")
    broken = {**_invoice(form_id), "content_base64": "not base64!"}
    await _send(amqp_url, "invoice.added", broken, "broken")
    errors = await _dead_letters(amqp_url, 3)
    assert any("at most 3 MB" in e for e in errors), errors
    assert any("empty" in e for e in errors), errors
    assert any("not valid base64" in e for e in errors), errors
    assert await _recorded(emulator, "invoices", form_id) == []


async def _has(db: asyncpg.Pool, account_id: int, code: str) -> bool:
    return code in await _log_codes(db, account_id)


async def _handled_all(db: asyncpg.Pool, count: int) -> bool:
    seen = await db.fetchval("SELECT count(*) FROM inbox WHERE message_id LIKE 'inv-%'")
    return bool(seen >= count - 1)  # the redelivered one shares its id


async def test_an_invoice_number_or_file_name_with_control_characters_or_a_path_is_refused(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, amqp_url: str
) -> None:
    _, form_id = await _order(admin, emulator, db)
    await _send(amqp_url, "invoice.added", _invoice(form_id, number="FV/1\r\nBcc: x@y.pl"), "crlf")
    traversal = {**_invoice(form_id), "file_name": "../../../../etc/passwd"}
    await _send(amqp_url, "invoice.added", traversal, "path")
    backslash = {**_invoice(form_id), "file_name": "..\\..\\boot.ini"}
    await _send(amqp_url, "invoice.added", backslash, "backslash")
    # too long to be a file of 3 MB: refused on its length, before it is decoded
    too_long = {**_invoice(form_id), "content_base64": "!" * (INVOICE_BASE64_CHARS + 1)}
    await _send(amqp_url, "invoice.added", too_long, "too-long")
    errors = await _dead_letters(amqp_url, 4)
    assert any("invoice_number: Value error, holds a control character" in e for e in errors)
    assert (
        sum("file_name: Value error, holds a control character or a path" in e for e in errors) == 2
    )
    assert any(f"content_base64 has {INVOICE_BASE64_CHARS + 1} characters" in e for e in errors)
    assert await _recorded(emulator, "invoices", form_id) == []
    assert await db.fetchval("SELECT count(*) FROM invoices") == 0
