"""The mail relay: sends ``mail_outbox`` rows over SMTP, marks them sent, retries with backoff.

A row is claimed by pushing its ``next_attempt_at`` forward (a lease) in a short transaction
with ``FOR UPDATE SKIP LOCKED``, so replicas share the work and no transaction stays open while
talking to the SMTP server. Delivery is at least once: a crash after the server accepted a mail
and before it was marked sent mails it again when the lease runs out (rare, and better than a
lost notification). A permanent refusal (5xx), a mail that cannot be composed (a header with a
line break) or running out of attempts marks the row failed, at once, and writes the account's
event log. No address is ever logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

import asyncpg
import structlog

from allegro_sync.adapters.mail.policy import MAIL_POLICY
from allegro_sync.adapters.mail.smtp import Mailer, MailRejected, PartlyDelivered
from allegro_sync.adapters.postgres import event_log
from allegro_sync.adapters.postgres.mail_outbox import CLAIM, MARK_FAILED, MARK_SENT, RETRY_LATER
from allegro_sync.tasks import stop_task

log = structlog.get_logger(__name__)


def backoff_seconds(attempts: int, *, base: float = 30.0, cap: float = 3600.0) -> float:
    """Delay before the next attempt after ``attempts`` failed ones: exponential, capped, with
    jitter so that replicas do not retry in step."""
    delay: float = min(cap, base * 2 ** max(attempts - 1, 0))
    return delay * random.uniform(0.5, 1.0)


class MailRelay:
    """Moves ``mail_outbox`` rows to the SMTP server."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        mailer: Mailer,
        mail_from: str,
        poll_interval: float = 1.0,
        batch_size: int = 20,
        max_attempts: int = 8,
        lease_seconds: float = 120.0,
        backoff_base: float = 30.0,
    ) -> None:
        self._pool = pool
        self._mailer = mailer
        self._mail_from = mail_from
        self._poll_interval = poll_interval
        self._batch_size = batch_size
        self._max_attempts = max_attempts
        self._lease_seconds = lease_seconds
        self._backoff_base = backoff_base
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.sent = 0

    async def start(self) -> None:
        """Start the relay loop."""
        self._task = asyncio.create_task(self._run(), name="mail-relay")

    async def stop(self, timeout: float) -> None:
        """Finish the mail in hand (within ``timeout``) and stop."""
        self._stopping.set()
        await stop_task(self._task, timeout)

    async def _run(self) -> None:
        down = False
        while not self._stopping.is_set():
            try:
                moved = await self.relay_batch()
                if down:
                    log.info("mail_relay_recovered")
                    down = False
                if moved == self._batch_size:
                    continue  # more is waiting
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not down:  # once when it goes down, once when it comes back
                    log.warning("mail_relay_failed", error=f"{type(exc).__name__}: {exc}")
                    down = True
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._poll_interval)

    async def relay_batch(self) -> int:
        """Send the mails that are due; how many were claimed."""
        rows = await self._pool.fetch(CLAIM, self._batch_size, self._lease_seconds)
        for row in rows:
            await self._deliver(row)
        return len(rows)

    async def _deliver(self, row: asyncpg.Record) -> None:
        mail_id: int = row["id"]
        bound: dict[str, Any] = {"mail": row["dedupe_key"], "attempt": row["attempts"]}
        try:
            message = self._message(row)
        except (ValueError, TypeError, LookupError) as exc:
            # a header with a line break, an address that is none: no attempt can compose it
            await self._give_up(row, f"the mail cannot be composed: {type(exc).__name__}: {exc}")
            return
        try:
            await self._mailer.send(message)
        except PartlyDelivered as exc:
            await self._pool.execute(MARK_SENT, mail_id, str(exc))
            log.warning("mail_partly_delivered", refused=exc.refused, **bound)
        except MailRejected as exc:
            await self._give_up(row, str(exc))
            return
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            if row["attempts"] >= self._max_attempts:
                await self._give_up(row, error)
                return
            delay = backoff_seconds(row["attempts"], base=self._backoff_base)
            await self._pool.execute(RETRY_LATER, mail_id, delay, error)
            log.warning("mail_retry_scheduled", error=error, delay_seconds=round(delay), **bound)
            return
        else:
            await self._pool.execute(MARK_SENT, mail_id, None)
            log.info("mail_sent", recipients=len(row["recipients"]), **bound)
        self.sent += 1

    async def _give_up(self, row: asyncpg.Record, error: str) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(MARK_FAILED, row["id"], error)
            if row["account_id"] is not None:
                await event_log.write(
                    conn,
                    row["account_id"],
                    "orders",
                    "error",
                    "order_email_failed",
                    f"E-mail notification ({_printable(row['subject'])}) could not be sent:"
                    f" {error}",
                    details={"mail": row["dedupe_key"]},
                    dedupe_key=f"mail-failed:{row['dedupe_key']}",
                )
        log.warning("mail_failed", mail=row["dedupe_key"], attempt=row["attempts"], error=error)

    def _message(self, row: asyncpg.Record) -> EmailMessage:
        message = EmailMessage(policy=MAIL_POLICY)  # no header class per mail (policy.py)
        # From: the seller (the account's address the handler chose); MAIL_FROM is the
        # daemon's, the envelope sender (smtplib takes it from Sender), and the From only when
        # the account's address is unknown.
        sender = row["sender"] or self._mail_from
        message["From"] = sender
        if sender.lower() != self._mail_from.lower():
            message["Sender"] = self._mail_from
        message["To"] = ", ".join(row["recipients"])
        message["Subject"] = row["subject"]
        message["Date"] = formatdate(localtime=False)
        # Stable per fact: a mail sent twice (see the module docstring) can be recognised.
        fact = uuid.uuid5(uuid.NAMESPACE_URL, "allegro-sync:mail:" + row["dedupe_key"])
        domain = self._mail_from.rpartition("@")[2] or "allegro-sync.invalid"
        message["Message-ID"] = f"<{fact}@{domain}>"
        message.set_content(row["body"])
        return message


def _printable(text: str) -> str:
    """``text`` for one line of the event log: control characters as spaces."""
    return "".join(c if c.isprintable() else " " for c in text)
