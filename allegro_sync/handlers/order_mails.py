"""E-mail notifications to the buyer (design.md O2): who receives them, what they say, and
queueing them in ``mail_outbox`` inside the caller's transaction.

The buyer's address is Allegro's masked one (``…@allegromail.pl``); mail sent to it reaches the
buyer. Rule: where the recipients are the buyer alone, send; each extra recipient the seller
configured (``extra_order_email_recipients``) must be on the account's list of additional
addresses Allegro allows (``allowed_extra_emails``), else it is dropped with an event-log
warning. The mail relay (``daemon/mail_relay.py``) sends what is queued here.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg
import structlog

from allegro_sync.adapters.postgres import event_log, mail_outbox

log = structlog.get_logger(__name__)

MailKind = Literal["ready", "fulfillment", "cancelled", "invoice"]

# Allegro's fulfillment statuses in words a buyer understands (Polish first, English after).
STATUS_WORDS: dict[str, tuple[str, str]] = {
    "NEW": ("nowe", "new"),
    "PROCESSING": ("w realizacji", "being processed"),
    "READY_FOR_SHIPMENT": ("gotowe do wysyłki", "ready for shipment"),
    "READY_FOR_PICKUP": ("gotowe do odbioru", "ready for pickup"),
    "SENT": ("wysłane", "sent"),
    "PICKED_UP": ("odebrane", "picked up"),
    "CANCELLED": ("anulowane", "cancelled"),
    "SUSPENDED": ("wstrzymane", "on hold"),
    "RETURNED": ("zwrócone", "returned"),
}


# --- pure decisions -------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipients:
    """Where a notification goes: ``to`` (buyer first) and the extra addresses dropped."""

    to: tuple[str, ...]
    dropped: tuple[str, ...]


def decide_recipients(
    buyer_email: str | None, extra: Sequence[str], allowed: Sequence[str]
) -> Recipients:
    """The O2 rule. No buyer address: nobody (the notification is the buyer's). Extra
    recipients go along only when Allegro allows them for the account (compared without
    regard to case, as mail domains are); the others are dropped. Duplicates collapse."""
    if not buyer_email or not buyer_email.strip():
        return Recipients((), ())
    allowed_keys = {a.strip().lower() for a in allowed}
    to = [buyer_email.strip()]
    seen = {to[0].lower()}
    dropped: list[str] = []
    for address in extra:
        address = address.strip()
        key = address.lower()
        if not address or key in seen:
            continue
        seen.add(key)
        (to if key in allowed_keys else dropped).append(address)
    return Recipients(tuple(to), tuple(dropped))


@dataclass(frozen=True)
class Mail:
    """A notification's text and the fact it announces (``dedupe_key``)."""

    dedupe_key: str
    subject: str
    body: str


def compose_mail(
    kind: MailKind,
    *,
    form_id: str,
    shop: str,
    status: str | None = None,
    invoice_number: str | None = None,
) -> Mail:
    """The notification for ``kind``; short, plain, bilingual, no personal data beyond the
    order number (the text may be read on any device)."""
    footer = f"\n\n{shop}\n(wiadomość automatyczna / automatic message)\n"
    if kind == "ready":
        return Mail(
            f"ready:{form_id}",
            f"Zamówienie {form_id} przyjęte / Order received",
            f"Dziękujemy! Przyjęliśmy Twoje zamówienie {form_id} do realizacji.\n"
            f"Thank you! Your order {form_id} has been received and is being prepared." + footer,
        )
    if kind == "cancelled":
        return Mail(
            f"cancelled:{form_id}",
            f"Zamówienie {form_id} anulowane / Order cancelled",
            f"Zamówienie {form_id} zostało anulowane.\nOrder {form_id} has been cancelled."
            + footer,
        )
    if kind == "fulfillment":
        assert status is not None
        polish, english = STATUS_WORDS.get(status, (status, status))
        return Mail(
            f"fulfillment:{form_id}:{status}",
            f"Zamówienie {form_id}: {polish} / Order {english}",
            f"Status zamówienia {form_id}: {polish}.\nYour order {form_id} is now {english}."
            + footer,
        )
    assert invoice_number is not None
    return Mail(
        f"invoice:{form_id}:{invoice_number}",
        f"Faktura {invoice_number} do zamówienia {form_id} / Invoice added",
        f"Do zamówienia {form_id} dodaliśmy fakturę {invoice_number}; znajdziesz ją w"
        " szczegółach zakupu na Allegro.\n"
        f"Invoice {invoice_number} for order {form_id} was added; you can find it in the"
        " purchase details on Allegro." + footer,
    )


# --- effects --------------------------------------------------------------------------------


async def queue_order_mail(
    conn: asyncpg.Connection,
    account: Mapping[str, Any],
    form: Mapping[str, Any],
    kind: MailKind,
    *,
    status: str | None = None,
    invoice_number: str | None = None,
) -> bool:
    """Queue the ``kind`` notification for ``form`` in the caller's transaction; True when a
    mail was queued now. Nothing when the account's ``send_order_emails`` is off, when the form
    has no buyer address, or when this fact was mailed already (``dedupe_key``).

    ``account`` is an ``accounts`` row (its settings and ``login``/``name``); ``form`` the
    checkout form as Allegro gives it (``id``, ``buyer.email``).
    """
    if not account["send_order_emails"]:
        return False
    form_id = str(uuid.UUID(str(form["id"])))
    buyer_email = (form.get("buyer") or {}).get("email")
    recipients = decide_recipients(
        buyer_email,
        list(account["extra_order_email_recipients"] or []),
        list(account["allowed_extra_emails"] or []),
    )
    if not recipients.to:
        return False
    mail = compose_mail(
        kind,
        form_id=form_id,
        shop=str(account["name"] or account["login"]),
        status=status,
        invoice_number=invoice_number,
    )
    queued = await conn.fetchval(
        mail_outbox.QUEUE,
        account["id"],
        mail.dedupe_key,
        list(recipients.to),
        mail.subject,
        mail.body,
    )
    if queued and recipients.dropped:
        # The seller's own addresses, so the seller's event log may name them.
        await event_log.write(
            conn,
            account["id"],
            "orders",
            "warning",
            "order_email_recipient_dropped",
            "E-mail about order "
            f"{form_id} not sent to {', '.join(recipients.dropped)}: Allegro does not allow"
            " these additional addresses for this account (refresh the account options after"
            " adding them on Allegro)",
            details={"dropped": list(recipients.dropped), "mail": mail.dedupe_key},
            dedupe_key=f"mail-dropped:{mail.dedupe_key}",
        )
    # Counts only: no address reaches the log.
    log.info(
        "order_mail_queued" if queued else "order_mail_already_queued",
        mail=mail.dedupe_key,
        recipients=len(recipients.to),
        dropped=len(recipients.dropped),
    )
    return bool(queued)
