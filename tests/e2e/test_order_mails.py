"""Buyer messages end to end under Allegro's rules of 2 March 2026 (design.md O2): the ERP's
``order.message`` -> ``mail_outbox`` -> the mail relay -> a real SMTP server (aiosmtpd), or ->
Allegro's message centre; no mail for an order, a status change or an invoice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from allegro_sync.daemon.app import Daemon
from tests.e2e.conftest import FAST_POLLING, Admin, Emulator, daemon_settings
from tests.e2e.flows import _buy, _dead_letters, _handled, _invoice, _log_codes, _send, _shop
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


async def test_an_order_message_is_mailed_once_and_status_and_invoice_mail_nothing(
    admin: Admin,
    emulator: Emulator,
    db: asyncpg.Pool,
    amqp_url: str,
    smtp: SmtpServer,  # noqa: F811
) -> None:
    # Since 2 March 2026 Allegro stops mail that repeats its notices or carries an invoice:
    # an order sent to the ERP, a status change and an invoice mail nobody, even with the old
    # switch on; the ERP's own message goes, once, to the masked address with its suffix.
    _, account, offers = await _shop(
        admin, emulator, db, auto_create_orders=True, send_order_emails=True
    )
    assert account["order_message_channel"] == "email"
    form_id = await _buy(emulator, offers[0])
    await _handled(db, form_id, "READY_FOR_PROCESSING")
    await _send(
        amqp_url, "order.status_changed", {"checkout_form_id": form_id, "status": "SENT"}, "st"
    )
    await _send(amqp_url, "invoice.added", _invoice(form_id), "inv")
    await eventually(lambda: _logged(db, int(account["id"]), "invoice_added"), timeout=20)
    await eventually(lambda: _logged(db, int(account["id"]), "fulfillment_status_set"), timeout=20)
    # an account connected before its address was stored: read from GET /me at its first mail
    await db.execute("UPDATE accounts SET email = NULL")
    message = {
        "checkout_form_id": form_id,
        "subject": "Opóźnienie wysyłki",
        "body": "Dzień dobry, paczka wyjdzie jutro rano.",
    }
    await _send(amqp_url, "order.message", message, "msg-1")
    await _send(amqp_url, "order.message", message, "msg-1")  # redelivered

    [mail] = await _mails(smtp, 1)
    buyer = await _buyer_email(db, form_id)
    assert "+" in buyer.partition("@")[0]  # the +<id> suffix Allegro needs
    assert mail.rcpt_tos == [buyer]
    # from the seller's own address on Allegro (GET /me), MAIL_FROM the envelope sender
    assert mail.message["From"] == "shop@example.com"
    assert mail.mail_from == mail.message["Sender"] == "sklep@example.com"
    assert await db.fetchval("SELECT email FROM accounts") == "shop@example.com"
    assert "Opóźnienie wysyłki" in mail.message["Subject"] and form_id in mail.message["Subject"]
    assert "paczka wyjdzie jutro" in mail.message.get_content()
    assert not mail.message.is_multipart()  # plain text, never an attachment
    assert await db.fetchval("SELECT count(*) FROM mail_outbox") == 1


async def test_an_order_message_from_an_additional_address_allegro_allows(
    admin: Admin,
    emulator: Emulator,
    db: asyncpg.Pool,
    amqp_url: str,
    smtp: SmtpServer,  # noqa: F811
) -> None:
    """The additional-emails round trip: the seller's additional addresses on Allegro
    (``GET /account/additional-emails``) -> the ``from`` of an ``order.message`` -> the From of
    the mail the SMTP server receives. An address Allegro does not list for the account is
    dead-lettered with the reason and mails nothing; a redelivery mails once."""
    seller = await emulator.seller("biuro", extra_emails=["Obsluga@Sklep-Biuro.example"])
    account = await admin.connect(emulator, seller)
    await eventually(lambda: _journal_started(db, int(account["id"])), timeout=20)
    assert await db.fetchval("SELECT email FROM accounts") == "biuro@example.com"  # GET /me
    offer = await emulator.control(
        "POST", f"/sellers/{seller['id']}/offers", {"name": "Kubek", "stock": 5, "price": "9.99"}
    )
    form_id = await _buy(emulator, str(offer["id"]))
    await _handled(db, form_id, "READY_FOR_PROCESSING")
    assert await db.fetchval("SELECT allowed_extra_emails FROM accounts") == []  # not read yet
    message = {
        "checkout_form_id": form_id,
        "subject": "Pytanie o adres",
        "body": "Czy paczka może trafić do sąsiada?",
        "from": "obsluga@sklep-biuro.example",
    }
    await _send(amqp_url, "order.message", message, "from-1")
    await _send(amqp_url, "order.message", message, "from-1")  # redelivered
    refused = {**message, "subject": "Inny nadawca", "from": "ktos@obcy.example"}
    await _send(amqp_url, "order.message", refused, "from-2")

    [error] = await _dead_letters(amqp_url, 1)
    assert "ktos@obcy.example" in error and "additional addresses" in error, error
    [mail] = await _mails(smtp, 1)
    assert mail.message["From"] == "Obsluga@Sklep-Biuro.example"  # as Allegro lists it
    assert mail.mail_from == "sklep@example.com"  # MAIL_FROM: the envelope only
    assert "Pytanie o adres" in mail.message["Subject"]
    assert mail.rcpt_tos == [await _buyer_email(db, form_id)]
    stored = await db.fetchval("SELECT allowed_extra_emails FROM accounts")
    assert stored == ["Obsluga@Sklep-Biuro.example"]


async def test_an_order_message_through_the_message_centre_is_written_once(
    admin: Admin,
    emulator: Emulator,
    db: asyncpg.Pool,
    amqp_url: str,
    smtp: SmtpServer,  # noqa: F811
) -> None:
    _, account, offers = await _shop(admin, emulator, db, order_message_channel="message_centre")
    assert account["order_message_channel"] == "message_centre"
    form_id = await _buy(emulator, offers[0])
    await _handled(db, form_id, "READY_FOR_PROCESSING")
    message = {
        "checkout_form_id": form_id,
        "subject": "Brak koloru",
        "body": "Czy może być niebieski?",
    }
    await _send(amqp_url, "order.message", message, "mc-1")
    await _send(amqp_url, "order.message", message, "mc-1")  # redelivered
    await eventually(lambda: _logged(db, int(account["id"]), "order_message_sent"), timeout=20)
    await asyncio.sleep(1.5)
    found = await emulator.control("GET", "/messages")
    [written] = found["messages"]
    form: dict[str, Any] = await db.fetchval(
        "SELECT form FROM orders WHERE checkout_form_id = $1::uuid", form_id
    )
    assert written["relatesTo"]["order"]["id"] == form_id
    assert written["recipient"] == form["buyer"]["login"]
    assert "Brak koloru" in written["text"] and "niebieski" in written["text"]
    assert smtp.capture.received == []


async def test_bad_order_messages_are_dead_lettered_with_a_reason(
    admin: Admin,
    emulator: Emulator,
    db: asyncpg.Pool,
    amqp_url: str,
    smtp: SmtpServer,  # noqa: F811
) -> None:
    _, _, offers = await _shop(admin, emulator, db)
    form_id = await _buy(emulator, offers[0])
    await _handled(db, form_id, "READY_FOR_PROCESSING")
    unknown = "7c6e5e1e-0000-4000-8000-0000000000ff"
    await _send(
        amqp_url, "order.message", {"checkout_form_id": unknown, "subject": "S", "body": "B"}, "b1"
    )
    await _send(
        amqp_url, "order.message", {"checkout_form_id": form_id, "subject": "S", "body": "  "}, "b2"
    )
    await _send(
        amqp_url,
        "order.message",
        {"checkout_form_id": form_id, "subject": "S", "body": "x" * 2001},
        "b3",
    )
    errors = sorted(await _dead_letters(amqp_url, 3))
    assert any("unknown checkout form" in e for e in errors), errors
    assert any("body" in e and "2000" in e for e in errors), errors
    assert any("body" in e and "at least 1" in e for e in errors), errors
    await asyncio.sleep(1.0)
    assert smtp.capture.received == []


async def _journal_started(db: asyncpg.Pool, account_id: int) -> bool:
    return bool(
        await db.fetchval(
            "SELECT true FROM journal_cursors WHERE account_id = $1 AND journal = 'order'",
            account_id,
        )
    )


async def _logged(db: asyncpg.Pool, account_id: int, code: str) -> bool:
    return code in await _log_codes(db, account_id)
