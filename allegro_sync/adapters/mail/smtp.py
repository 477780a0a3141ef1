"""Sending e-mail over SMTP (``SMTP_URL``), with the standard library's ``smtplib`` in a thread.

``aiosmtplib`` is not a dependency; a notification every few seconds does not need an async
client, and a worker thread keeps the event loop free. ``SMTP_URL`` forms:
``smtp://[user:password@]host[:25]`` (plain), ``smtp+starttls://…[:587]`` (STARTTLS),
``smtps://…[:465]`` (TLS from the start).

Failures become two errors: ``MailRejected`` (the server refused for good, a 5xx answer: retrying
cannot help) and ``MailUnavailable`` (connection trouble or a 4xx: try again later). Their texts
never carry an address (``smtplib`` puts refused recipients into its exception text).
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Protocol
from urllib.parse import unquote, urlsplit

from pydantic import SecretStr

DEFAULT_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}


class MailError(Exception):
    """Base of mail delivery failures."""


class MailRejected(MailError):
    """The SMTP server refused the message for good (5xx)."""


class MailUnavailable(MailError):
    """The SMTP server could not be reached or asked to try later (4xx)."""


class Mailer(Protocol):
    """Something that delivers a message to its recipients."""

    async def send(self, message: EmailMessage) -> None: ...


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to connect; ``password`` stays secret in reprs."""

    scheme: str
    host: str
    port: int
    username: str | None
    password: SecretStr | None


def parse_smtp_url(url: SecretStr) -> SmtpConfig:
    """The parts of ``SMTP_URL``; ValueError (without the URL, which may hold a password)."""
    parts = urlsplit(url.get_secret_value())
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ValueError("SMTP_URL must start with smtp://, smtp+starttls:// or smtps://")
    if not parts.hostname:
        raise ValueError("SMTP_URL names no host")
    return SmtpConfig(
        scheme=scheme,
        host=parts.hostname,
        port=parts.port or DEFAULT_PORTS[scheme],
        username=unquote(parts.username) if parts.username else None,
        password=SecretStr(unquote(parts.password)) if parts.password else None,
    )


class SmtpMailer:
    """Delivers messages through one SMTP server, a connection per message (notifications are
    rare; a kept-open connection would only time out in between)."""

    def __init__(self, config: SmtpConfig, *, timeout: float = 30.0) -> None:
        self._config = config
        self._timeout = timeout

    async def send(self, message: EmailMessage) -> None:
        """Deliver ``message`` to every address in its To header."""
        await asyncio.to_thread(self._send_blocking, message)

    def _send_blocking(self, message: EmailMessage) -> None:
        config = self._config
        try:
            client: smtplib.SMTP
            if config.scheme == "smtps":
                client = smtplib.SMTP_SSL(
                    config.host,
                    config.port,
                    timeout=self._timeout,
                    context=ssl.create_default_context(),
                )
            else:
                client = smtplib.SMTP(config.host, config.port, timeout=self._timeout)
            with client:
                if config.scheme == "smtp+starttls":
                    client.starttls(context=ssl.create_default_context())
                if config.username and config.password is not None:
                    client.login(config.username, config.password.get_secret_value())
                refused = client.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = sorted({code for code, _ in exc.recipients.values()})
            raise _by_code(max(codes), f"every recipient refused (codes {codes})") from None
        except smtplib.SMTPResponseException as exc:
            raise _by_code(exc.smtp_code, f"server answered {exc.smtp_code}") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise MailUnavailable(f"SMTP server unreachable ({type(exc).__name__})") from None
        if refused:
            # Some recipients got it: retrying would mail the others twice, so it counts as sent;
            # the caller learns how many were refused.
            raise PartlyDelivered(len(refused))


class PartlyDelivered(MailError):
    """Delivered, but the server refused ``refused`` of the recipients."""

    def __init__(self, refused: int) -> None:
        super().__init__(f"{refused} recipient(s) refused by the SMTP server")
        self.refused = refused


def _by_code(code: int, text: str) -> MailError:
    return MailRejected(text) if code >= 500 else MailUnavailable(text)
