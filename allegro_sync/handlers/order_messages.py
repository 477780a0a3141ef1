"""``order.message`` from the ERP: the seller's own correspondence with a buyer about an order.

Since 2 March 2026 this is the only mail Allegro lets through to a buyer (allegro-2026.md 1); the
account's ``order_message_channel`` chooses how it goes:

- ``email``: queued in ``mail_outbox`` (``order_mails.queue_order_message``) for the mail relay,
  from the account's main address (``GET /me``, stored at connect, read and stored on the first
  message of an account connected before), or from the message's ``from`` when that is one of
  the additional addresses Allegro allows for the account (the stored list, read again from
  ``GET /account/additional-emails`` before an address is refused); the daemon's ``MAIL_FROM``
  only while the account's address is unknown. To the buyer's masked address with its
  ``+<id>`` suffix; an address without it is never delivered by Allegro, so such a message is
  dead-lettered, as is one whose ``from`` Allegro does not allow.
- ``message_centre``: written on Allegro with ``POST /messaging/messages`` (the order id, the
  buyer's login, the subject and body as the text: at most 2000 characters) in ``prepare``;
  ``order_messages`` keys it by its content, so a redelivery writes it once.

Bad input is dead-lettered at once with the reason: no such order, an empty body, a text over
the length Allegro accepts (the schema), an address Allegro would not deliver to.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog

from allegro_sync.adapters.allegro.client import AllegroRestClient
from allegro_sync.adapters.allegro.errors import AllegroNotFound, AllegroRejected
from allegro_sync.adapters.postgres import accounts as account_store
from allegro_sync.adapters.postgres import event_log, order_messages, orders
from allegro_sync.contract import MESSAGE_TEXT_MAX, OrderMessage
from allegro_sync.errors import BadInput
from allegro_sync.handlers.account_options import read_additional_emails
from allegro_sync.handlers.accounts import account_email
from allegro_sync.handlers.order_mails import (
    choose_sender,
    masked_with_suffix,
    queue_order_message,
)

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class PreparedMessage:
    """What the handler records: the message, and Allegro's id when the message centre took it
    (``None``: the e-mail is still to be queued)."""

    message: OrderMessage
    account_id: int
    channel: str
    allegro_message_id: str | None
    written_now: bool
    sender: str | None = None  # the e-mail's From (None: MAIL_FROM)


def centre_text(subject: str, body: str) -> str:
    """The message centre has no subject: it leads the text."""
    return f"{subject}\n\n{body}"


async def prepare_order_message(
    allegro: AllegroRestClient, pool: asyncpg.Pool, message: OrderMessage
) -> PreparedMessage:
    """Check the message against its order and, for the message centre, write it on Allegro."""
    form_id = message.checkout_form_id
    row = await pool.fetchrow(orders.WITH_ACCOUNT, form_id)
    if row is None:
        raise BadInput(f"unknown checkout form {form_id}: no such order was received")
    form: dict[str, Any] = row["form"]
    buyer = form.get("buyer") or {}
    channel: str = row["order_message_channel"]
    if channel == "email":
        if not masked_with_suffix(buyer.get("email")):
            raise BadInput(
                f"order {form_id}: the buyer's address has no +<id> suffix, so Allegro would not"
                " deliver the e-mail; use the message centre (order_message_channel)"
            )
        sender = await _sender(allegro, pool, row, message)
        return PreparedMessage(message, row["id"], channel, None, False, sender)
    text = centre_text(message.subject, message.text)
    if len(text) > MESSAGE_TEXT_MAX:
        raise BadInput(
            f"subject and body make {len(text)} characters; Allegro's message centre accepts"
            f" at most {MESSAGE_TEXT_MAX}"
        )
    if not buyer.get("login"):
        raise BadInput(f"order {form_id}: the checkout form names no buyer login")
    key = _dedupe_key(message)
    claimed = await pool.fetchrow(order_messages.CLAIM, key, row["id"], form_id)
    if claimed is not None and not claimed["new"] and claimed["sent_at"] is not None:
        return PreparedMessage(message, row["id"], channel, None, False)  # written already
    try:
        response = await allegro.request(
            row["id"],
            "POST",
            "/messaging/messages",
            action="write buyer message",
            json={
                "recipient": {"login": str(buyer["login"])},
                "text": text,
                "order": {"id": str(form_id)},
            },
        )
    except (AllegroNotFound, AllegroRejected) as exc:
        raise BadInput(f"Allegro refused the message for order {form_id}: {exc}") from exc
    allegro_id = str((response.body or {}).get("id") or "")
    return PreparedMessage(message, row["id"], channel, allegro_id or None, True)


async def _sender(
    allegro: AllegroRestClient, pool: asyncpg.Pool, account: asyncpg.Record, message: OrderMessage
) -> str | None:
    """The From of the message's e-mail (``order_mails.choose_sender``), reading from Allegro
    what the account row does not know yet: its main address, and the additional addresses
    when the one named is not on the stored list (the seller may have added it since)."""
    account_id: int = account["id"]
    main: str | None = account["email"]
    if main is None:
        try:
            main = account_email(await allegro.get(account_id, "/me", action="read account"))
        except (AllegroNotFound, AllegroRejected) as exc:
            log.warning("account_email_unknown", account_id=account_id, error=str(exc))
        if main is not None:
            await account_store.update(pool, account_id, {"email": main})
    allowed = list(account["allowed_extra_emails"] or [])
    chosen = choose_sender(message.sender, main, allowed)
    if chosen.refused is not None:
        allowed = await read_additional_emails(allegro, account_id)
        await account_store.update(pool, account_id, {"allowed_extra_emails": allowed})
        chosen = choose_sender(message.sender, main, allowed)
    if chosen.refused is not None:
        raise BadInput(f"order {message.checkout_form_id}: {chosen.refused}")
    return chosen.address


def _dedupe_key(message: OrderMessage) -> str:
    digest = hashlib.sha256(
        f"{message.checkout_form_id}\n{message.subject}\n{message.text}".encode()
    ).hexdigest()[:24]
    return f"message:{message.checkout_form_id}:{digest}"


async def record_order_message(prepared: PreparedMessage, conn: asyncpg.Connection) -> None:
    """In the batch transaction: the e-mail queued, or the written message recorded; the event
    log says so (no address, no text: the subject only)."""
    message = prepared.message
    form_id = uuid.UUID(str(message.checkout_form_id))
    if prepared.channel == "email":
        row = await conn.fetchrow(orders.WITH_ACCOUNT, form_id)
        if row is None:
            return  # the order was deleted with its account meanwhile
        queued = await queue_order_message(
            conn, row, row["form"], message.subject, message.text, prepared.sender
        )
        if not queued:
            return
        how = "by e-mail"
    else:
        if not prepared.written_now:
            return
        await conn.execute(
            order_messages.MARK_SENT, _dedupe_key(message), prepared.allegro_message_id
        )
        how = "through Allegro's message centre"
    await event_log.write(
        conn,
        prepared.account_id,
        "orders",
        "info",
        "order_message_sent",
        f"Message about order {form_id} ({message.subject}) sent to the buyer {how}",
        details={"checkout_form_id": str(form_id), "channel": prepared.channel},
    )
    log.info("order_message_sent", checkout_form_id=str(form_id), channel=prepared.channel)
