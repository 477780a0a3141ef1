"""The mails the relay composes leave no reference cycles behind (found by the soak: a header
class per header and mail, about 30 KB of RSS per mail until a full garbage collection)."""

from __future__ import annotations

import gc
import io
from collections.abc import Callable, Iterator
from email import policy
from email.generator import BytesGenerator
from email.headerregistry import BaseHeader
from email.message import EmailMessage
from typing import Any

import pytest

from allegro_sync.daemon.mail_relay import MailRelay

ROW = {
    "id": 1,
    "account_id": 1,
    "dedupe_key": "message:1:abc",
    "recipients": ["jan.kowalski+1a2b3c@allegromail.pl"],
    "subject": "Zamówienie 1: opóźnienie",
    "body": "Przesyłka wyjdzie jutro.",
    "attempts": 1,
    "sender": "sklep@example.pl",
}


@pytest.fixture
def saved_garbage() -> Iterator[Callable[[], list[Any]]]:
    """What the cyclic collector would free, kept for inspection."""
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)

    def found() -> list[Any]:
        gc.collect()
        return list(gc.garbage)

    try:
        yield found
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def header_classes(garbage: list[Any]) -> int:
    return sum(1 for o in garbage if isinstance(o, type) and issubclass(o, BaseHeader))


def flatten(message: EmailMessage) -> bytes:
    """As ``smtplib.SMTP.send_message`` writes it out."""
    out = io.BytesIO()
    BytesGenerator(out).flatten(message, linesep="\r\n")
    return out.getvalue()


def test_composing_and_writing_mails_makes_no_header_classes(
    saved_garbage: Callable[[], list[Any]],
) -> None:
    nothing: Any = None
    relay = MailRelay(pool=nothing, mailer=nothing, mail_from="allegro-sync@example.pl")
    relay._message(ROW)  # the first mail builds the classes once
    gc.collect()
    gc.garbage.clear()
    for _ in range(50):
        message = relay._message(ROW)
        assert b"Subject: =?utf-8?" in flatten(message)
        assert message["To"] == ROW["recipients"][0]
    assert header_classes(saved_garbage()) == 0


def test_the_default_policy_would_make_a_class_per_header_and_mail(
    saved_garbage: Callable[[], list[Any]],
) -> None:
    for _ in range(50):
        message = EmailMessage(policy=policy.default)
        message["From"] = "sklep@example.pl"
        message["Subject"] = "Zamówienie"
        flatten(message)
    assert header_classes(saved_garbage()) >= 100
