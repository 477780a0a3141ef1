"""The mail relay against real PostgreSQL and a real SMTP server: queued once, sent once,
retried after a temporary refusal."""

from __future__ import annotations

from typing import Any

import asyncpg
from pydantic import SecretStr

from allegro_sync.adapters.mail.smtp import SmtpMailer, parse_smtp_url
from allegro_sync.daemon.mail_relay import MailRelay
from allegro_sync.handlers.order_mails import queue_order_message
from tests.smtp_server import SmtpServer, smtp  # noqa: F401  (the fixture)

BUYER = "wwgp215quo+77c5fa9f6@allegromail.pl"
FORM: dict[str, Any] = {
    "id": "7c6e5e1e-0000-4000-8000-000000000001",
    "buyer": {"email": BUYER},
}


async def _account(db: asyncpg.Pool, **settings: Any) -> asyncpg.Record:
    row: asyncpg.Record = await db.fetchrow(
        "INSERT INTO accounts (allegro_user_id, sandbox, login, name, send_order_emails)"
        " VALUES ('42', false, 'shop', 'Sklep', $1) RETURNING *",
        settings.get("send_order_emails", True),
    )
    return row


async def test_a_queued_mail_is_sent_once_after_a_temporary_refusal(
    db: asyncpg.Pool,
    smtp: SmtpServer,  # noqa: F811
) -> None:
    account = await _account(db)
    async with db.acquire() as conn, conn.transaction():
        assert await queue_order_message(conn, account, FORM, "Opóźnienie", "Wyślemy jutro.")
        # the same message again (a redelivery)
        assert not await queue_order_message(conn, account, FORM, "Opóźnienie", "Wyślemy jutro.")
    relay = MailRelay(
        pool=db,
        mailer=SmtpMailer(parse_smtp_url(SecretStr(smtp.url))),
        mail_from="sklep@example.com",
        backoff_base=0.0,
    )
    smtp.capture.reject_next = 1
    assert await relay.relay_batch() == 1  # 451: retried later
    assert smtp.capture.received == []
    row = await db.fetchrow("SELECT attempts, sent_at, last_error FROM mail_outbox")
    assert row["attempts"] == 1 and row["sent_at"] is None and "451" in row["last_error"]
    assert await relay.relay_batch() == 1
    assert await relay.relay_batch() == 0
    [mail] = smtp.capture.received
    assert mail.rcpt_tos == [BUYER]
    assert mail.message["Message-ID"].endswith("@example.com>")
    # no account address given: MAIL_FROM is the From and the envelope sender, no Sender
    assert mail.message["From"] == mail.mail_from == "sklep@example.com"
    assert mail.message["Sender"] is None
    assert await db.fetchval("SELECT sent_at IS NOT NULL FROM mail_outbox")


async def test_a_mail_comes_from_the_sender_queued_with_it(
    db: asyncpg.Pool,
    smtp: SmtpServer,  # noqa: F811
) -> None:
    account = await _account(db)
    async with db.acquire() as conn, conn.transaction():
        await queue_order_message(conn, account, FORM, "Pytanie", "Treść", "biuro@shop.pl")
    relay = MailRelay(
        pool=db,
        mailer=SmtpMailer(parse_smtp_url(SecretStr(smtp.url))),
        mail_from="sklep@example.com",
    )
    assert await relay.relay_batch() == 1
    [mail] = smtp.capture.received
    assert mail.message["From"] == "biuro@shop.pl"
    assert mail.message["Sender"] == mail.mail_from == "sklep@example.com"
