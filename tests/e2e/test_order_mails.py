"""Buyer e-mail notifications end to end (design.md O2): an ERP message or an order change ->
``mail_outbox`` -> the mail relay -> a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from allegro_sync.daemon.app import Daemon
from tests.e2e.conftest import FAST_POLLING, Admin, Emulator, daemon_settings
from tests.e2e.flows import _buy, _handled, _invoice, _log_codes, _send, _shop
from tests.helpers import eventually
from tests.smtp_server import Received, SmtpServer, smtp  # noqa: F401  (the fixture)


@pytest.fixture
async def daemon(
    database_url: str,
    amqp_url: str,
    emulator: Emulator,
    sandbox_emulator: Emulator,
    smtp: SmtpServer,  # noqa: F811
) -> AsyncIterator[Daemon]:
    """The daemon, sending its mail to the test's SMTP server."""
    running = Daemon(
        daemon_settings(
            database_url,
            amqp_url,
            emulator.url,
            sandbox_emulator.url,
            smtp_url=smtp.url,
            mail_from="sklep@example.com",
        ),
        poller_timing=FAST_POLLING,
    )
    await running.start()
    yield running
    await running.stop()


async def _mails(smtp: SmtpServer, count: int) -> list[Received]:  # noqa: F811
    async def enough() -> bool:
        return len(smtp.capture.received) >= count

    await eventually(enough, timeout=20)
    await asyncio.sleep(1.5)  # anything (wrongly) sent twice arrives meanwhile
    return smtp.capture.received


async def _buyer_email(db: asyncpg.Pool, form_id: str) -> str:
    form: dict[str, Any] = await db.fetchval(
        "SELECT form FROM orders WHERE checkout_form_id = $1::uuid", form_id
    )
    email = str(form["buyer"]["email"])
    assert email.endswith(("@allegromail.pl", "@user.allegrogroup.pl")), email
    return email


async def test_a_status_change_from_the_erp_mails_the_buyer_once(
    admin: Admin,
    emulator: Emulator,
    db: asyncpg.Pool,
    amqp_url: str,
    smtp: SmtpServer,  # noqa: F811
) -> None:
    _, _, offers = await _shop(admin, emulator, db, send_order_emails=True)
    form_id = await _buy(emulator, offers[0])
    await _handled(db, form_id, "READY_FOR_PROCESSING")
    body = {"checkout_form_id": form_id, "status": "SENT"}
    await _send(amqp_url, "order.status_changed", body, "mail-status-1")
    await _send(amqp_url, "order.status_changed", body, "mail-status-1")  # redelivered
    await _send(amqp_url, "order.status_changed", body, "mail-status-2")  # the same fact again

    [mail] = await _mails(smtp, 1)
    assert mail.rcpt_tos == [await _buyer_email(db, form_id)]
    assert mail.message["From"] == "sklep@example.com"
    assert form_id in mail.message["Subject"]
    assert "sent" in mail.message.get_content()


async def test_an_invoice_mail_goes_to_allowed_extra_recipients_only(
    admin: Admin,
    emulator: Emulator,
    db: asyncpg.Pool,
    amqp_url: str,
    smtp: SmtpServer,  # noqa: F811
) -> None:
    # Allegro allows one additional address for this seller; the seller configures two.
    seller = await emulator.seller("mailshop", extra_emails=["biuro@mailshop.pl"])
    account = await admin.connect(emulator, seller)
    status, options = await admin.call("GET", f"/accounts/{account['id']}/options")
    assert status == 200 and options["additional_emails"] == ["biuro@mailshop.pl"]
    status, body = await admin.call(
        "PATCH",
        f"/accounts/{account['id']}",
        {
            "send_order_emails": True,
            # orders stay with the seller here, so the invoice mail is the only one
            "extra_order_email_recipients": ["Biuro@mailshop.pl", "obcy@example.com"],
        },
    )
    assert status == 200, body
    offer = await emulator.control(
        "POST", f"/sellers/{seller['id']}/offers", {"name": "Kubek", "stock": 5, "price": "9.99"}
    )
    await eventually(lambda: _journal_started(db, int(account["id"])))
    form_id = await _buy(emulator, str(offer["id"]))
    await _handled(db, form_id, "READY_FOR_PROCESSING")
    await _send(amqp_url, "invoice.added", _invoice(form_id), "mail-invoice-1")
    await _send(amqp_url, "invoice.added", _invoice(form_id), "mail-invoice-1")  # redelivered

    [mail] = await _mails(smtp, 1)
    assert mail.rcpt_tos == [await _buyer_email(db, form_id), "Biuro@mailshop.pl"]
    assert "FV/1/2026" in mail.message["Subject"]
    codes = await _log_codes(db, int(account["id"]))
    assert codes.count("order_email_recipient_dropped") == 1
    warning = await db.fetchval(
        "SELECT message FROM event_log WHERE code = 'order_email_recipient_dropped'"
    )
    assert "obcy@example.com" in warning and "Biuro" not in warning


async def test_no_mail_while_the_setting_is_off(
    admin: Admin,
    emulator: Emulator,
    db: asyncpg.Pool,
    amqp_url: str,
    smtp: SmtpServer,  # noqa: F811
) -> None:
    _, account, offers = await _shop(admin, emulator, db)
    form_id = await _buy(emulator, offers[0])
    await _handled(db, form_id, "READY_FOR_PROCESSING")
    await _send(
        amqp_url, "order.status_changed", {"checkout_form_id": form_id, "status": "SENT"}, "off"
    )
    await eventually(lambda: _logged(db, int(account["id"]), "fulfillment_status_set"), timeout=20)
    await asyncio.sleep(1.5)
    assert smtp.capture.received == []
    assert await db.fetchval("SELECT count(*) FROM mail_outbox") == 0


async def test_an_order_sent_to_the_erp_and_its_cancellation_mail_the_buyer(
    admin: Admin,
    emulator: Emulator,
    db: asyncpg.Pool,
    smtp: SmtpServer,  # noqa: F811
) -> None:
    _, _, offers = await _shop(admin, emulator, db, auto_create_orders=True, send_order_emails=True)
    form_id = await _buy(emulator, offers[0])
    [ready] = await _mails(smtp, 1)
    assert ready.rcpt_tos == [await _buyer_email(db, form_id)]
    assert form_id in ready.message["Subject"]
    await emulator.control("POST", f"/checkout-forms/{form_id}/cancel", {})
    await _handled(db, form_id, "CANCELLED")
    ready_again, cancelled = await _mails(smtp, 2)
    assert ready_again is ready
    assert "anulowane" in cancelled.message["Subject"]


async def _journal_started(db: asyncpg.Pool, account_id: int) -> bool:
    return bool(
        await db.fetchval(
            "SELECT true FROM journal_cursors WHERE account_id = $1 AND journal = 'order'",
            account_id,
        )
    )


async def _logged(db: asyncpg.Pool, account_id: int, code: str) -> bool:
    return code in await _log_codes(db, account_id)
