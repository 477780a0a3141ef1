"""A real local SMTP server (aiosmtpd) that keeps every message it receives."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.helpers import free_port


@dataclass
class Received:
    """One delivered message: the envelope recipients, the parsed message, the envelope
    sender."""

    rcpt_tos: list[str]
    message: EmailMessage
    mail_from: str = ""  # the envelope sender (MAIL FROM)


@dataclass
class SmtpCapture:
    """The aiosmtpd handler: accepts everything, keeps it; ``reject_next`` answers a 4xx."""

    received: list[Received] = field(default_factory=list)
    reject_next: int = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.reject_next > 0:
            self.reject_next -= 1
            return "451 Try again later"
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.received.append(Received(list(envelope.rcpt_tos), parsed, envelope.mail_from))
        return "250 OK"


@dataclass
class SmtpServer:
    """The running server: where to send (``url``) and what arrived (``capture``)."""

    url: str
    capture: SmtpCapture


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    """An SMTP server on a free port for one test."""
    capture = SmtpCapture()
    port = free_port()
    controller = Controller(capture, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer(f"smtp://127.0.0.1:{port}", capture)
    finally:
        controller.stop()
