"""E-mail to the buyer (design.md O2, under Allegro's rules of 2 March 2026): who receives it,
what it says, and queueing it in ``mail_outbox`` inside the caller's transaction.

Since 2 March 2026 Allegro stops e-mails that carry an invoice or repeat its own notices (payment
received, order processed or sent, shipment status, a rating request), so the daemon sends no
notification of its own any more: the invoice reaches the buyer through the invoice upload, the
status through the checkout form's fulfillment status, and Allegro tells the buyer. What is left
is the seller's own correspondence about an order, the ERP's ``order.message``
(``handlers/order_messages.py``), which goes here when the account writes by e-mail.

The buyer's address is Allegro's masked one (``<code>+<id>@allegromail.pl``); Allegro delivers
mail to it only with its ``+<id>`` suffix. Each extra recipient the seller configured
(``extra_order_email_recipients``) must be on the account's list of additional addresses
Allegro allows (``allowed_extra_emails``), else it is dropped with an event-log warning. The
mail comes from the seller: the account's main address, or an allowed additional one the
message names (``choose_sender``). The mail relay (``daemon/mail_relay.py``) sends what is
queued here.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import structlog

from allegro_sync.adapters.postgres import event_log, mail_outbox

log = structlog.get_logger(__name__)

# Allegro's masked buyer addresses (allegro-api.md 6.2).
MASKED_DOMAINS = frozenset({"allegromail.pl", "user.allegrogroup.pl"})

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


@dataclass(frozen=True)
class Sender:
    """Whom an ``order.message`` e-mail is from: ``address`` (None: the daemon's ``MAIL_FROM``),
    or why the address the message names may not be used (``refused``)."""

    address: str | None
    refused: str | None = None


def choose_sender(named: str | None, main: str | None, allowed: Sequence[str]) -> Sender:
    """The From rule (issue 13 item 6): the account's main address, unless the message names
    another; a named address must be the main one or one of the additional addresses Allegro
    allows for the account (compared without regard to case). No main address known: None,
    the daemon's ``MAIL_FROM``."""
    if named is None:
        return Sender(main)
    key = named.strip().lower()
    if main is not None and key == main.strip().lower():
        return Sender(main)
    for address in allowed:
        if key == address.strip().lower():
            return Sender(address.strip())
    return Sender(
        None,
        f"{named} is neither the account's e-mail address nor one of the additional addresses"
        " Allegro allows for it (GET /account/additional-emails)",
    )


def masked_with_suffix(email: str | None) -> bool:
    """Whether Allegro delivers mail to ``email``: a masked address (``@allegromail.pl`` or
    ``@user.allegrogroup.pl``) only with its ``+<id>`` suffix; any other address as it is."""
    if not email or "@" not in email:
        return False
    local, _, domain = email.strip().rpartition("@")
    if domain.lower() in MASKED_DOMAINS:
        code, plus, suffix = local.partition("+")
        return bool(code and plus and suffix)
    return bool(local)


def compose_message(form_id: str, subject: str, body: str, *, shop: str) -> Mail:
    """The e-mail of an ``order.message``: the ERP's subject and plain-text body, the order
    number in the subject (the buyer's mail client threads by it), the shop's name below.
    Keyed by its content, so a redelivered message is mailed once."""
    digest = hashlib.sha256(f"{form_id}\n{subject}\n{body}".encode()).hexdigest()[:24]
    title = subject if form_id in subject else f"{subject} ({form_id})"
    return Mail(f"message:{form_id}:{digest}", title, f"{body}\n\n{shop}\n")


# --- effects --------------------------------------------------------------------------------


async def queue_order_message(
    conn: asyncpg.Connection,
    account: Mapping[str, Any],
    form: Mapping[str, Any],
    subject: str,
    body: str,
    sender: str | None = None,
) -> bool:
    """Queue the e-mail of an ``order.message`` for ``form`` in the caller's transaction, from
    ``sender`` (:func:`choose_sender`; None: ``MAIL_FROM``); True when a mail was queued now,
    False when this message was queued already (``dedupe_key``).

    ``account`` is an ``accounts`` row (its settings and ``login``/``name``); ``form`` the
    checkout form as Allegro gives it (``id``, ``buyer.email``). The caller has checked that the
    buyer's address can be written to (:func:`masked_with_suffix`).
    """
    form_id = str(uuid.UUID(str(form["id"])))
    buyer_email = (form.get("buyer") or {}).get("email")
    recipients = decide_recipients(
        buyer_email,
        list(account["extra_order_email_recipients"] or []),
        list(account["allowed_extra_emails"] or []),
    )
    if not recipients.to:
        return False
    mail = compose_message(form_id, subject, body, shop=str(account["name"] or account["login"]))
    queued = await conn.fetchval(
        mail_outbox.QUEUE,
        account["id"],
        mail.dedupe_key,
        list(recipients.to),
        mail.subject,
        mail.body,
        sender,
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
