"""Retention (issue 14, finding 7): every ``interval`` seconds one replica deletes the rows of
the tables that only grow once they are older than their retention, in small batches.

| table | rows that go | setting |
|---|---|---|
| ``inbox`` | message ids handled more than ``INBOX_RETENTION_DAYS`` ago | 7 |
| ``event_log`` | entries older than ``EVENT_LOG_RETENTION_DAYS`` | 90 |
| ``mail_outbox`` | mails sent or given up more than ``MAIL_OUTBOX_RETENTION_DAYS`` ago | 30 |
| ``order_messages`` | message-centre messages written (or refused) that long ago (same) | 30 |
| ``offer_commands`` | batch commands settled more than ``OFFER_COMMAND_RETENTION_DAYS`` ago | 7 |

The inbox is what recognises a redelivered message, so it is kept far past the longest
redelivery the code makes: a failed message's retries take ``sum(RETRY_DELAYS_MS)`` = 756 s
(12.6 minutes) at most before it is dead-lettered (and a message that is retried was never
claimed: its claim rolled back); a delivery left unacknowledged by a dying daemon comes back at
once, at most ``DELIVERY_LIMIT`` times; a page the poller published before a crash is published
again as soon as a replica polls that journal. What may wait longer is a copy already in a queue
while no daemon consumes it (an outage, a backlog): a week covers that. A copy older than the
retention is handled again, which the handlers' own guards make harmless (stock and price
versions, an order announced once, a mail's or message's dedupe key while it is kept).

Each batch is one short statement of its own (``<table>.prune``: at most ``batch`` rows, found
through the oldest-first indexes of migration 0013), with a pause between batches, so pruning
never holds many row locks or the table for long. One replica: ``daemon/leader.py``. Metric:
``allegro_sync_retention_pruned_total`` by table; one log line per round that deleted rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import asyncpg
import structlog

from allegro_sync.adapters.broker.topology import RETRY_DELAYS_MS
from allegro_sync.adapters.postgres import (
    event_log,
    inbox,
    mail_outbox,
    offer_changes,
    order_messages,
)
from allegro_sync.daemon.leader import Leader
from allegro_sync.metrics import Metrics

log = structlog.get_logger(__name__)

# Negative: the pollers' keys (daemon/pollers.py lock_key) are never negative.
LOCK_KEY = -zlib.crc32(b"allegro-sync:retention")
DAY = 86_400.0
# The longest a failed message is retried before it is dead-lettered, in seconds (756).
RETRY_WINDOW = sum(RETRY_DELAYS_MS) / 1000

Prune = Callable[[asyncpg.Pool, float, int], Awaitable[int]]


@dataclass(frozen=True)
class Rule:
    """A table, how long its rows are kept (seconds) and its batch delete."""

    table: str
    keep: float
    prune: Prune


def retention_rules(
    *, inbox_days: float, event_log_days: float, mail_days: float, command_days: float
) -> list[Rule]:
    """The rules of every table that only grows, from the settings' days."""
    return [
        Rule("inbox", inbox_days * DAY, inbox.prune),
        Rule("event_log", event_log_days * DAY, event_log.prune),
        Rule("mail_outbox", mail_days * DAY, mail_outbox.prune),
        Rule("order_messages", mail_days * DAY, order_messages.prune),
        Rule("offer_commands", command_days * DAY, offer_changes.prune_commands),
    ]


class RetentionService:
    """Prunes every rule's table while this replica holds the lock."""

    def __init__(
        self,
        *,
        dsn: str,
        pool: asyncpg.Pool,
        metrics: Metrics,
        rules: Sequence[Rule],
        interval: float = 300.0,
        batch: int = 5000,
        pause: float = 0.1,
    ) -> None:
        self._pool = pool
        self._metrics = metrics
        self._rules = list(rules)
        self._batch = batch
        self._pause = pause
        self._leader = Leader(
            dsn=dsn,
            key=LOCK_KEY,
            name="retention",
            interval=interval,
            failing_event="retention_failing",
        )

    async def start(self) -> None:
        """Start the loop (the first round at once)."""
        for rule in self._rules:
            if rule.table == "inbox" and rule.keep < RETRY_WINDOW:
                log.warning(
                    "inbox_retention_short",
                    seconds=rule.keep,
                    retry_window=RETRY_WINDOW,
                    effect="a message redelivered after its inbox row went is handled again",
                )
        self._leader.start(self.run_once)

    async def stop(self, timeout: float) -> None:
        """Finish the batch in hand within ``timeout``, then give the lock back."""
        await self._leader.stop(timeout)

    async def run_once(self) -> dict[str, int] | None:
        """One round if this replica leads: rows deleted per table (None: another replica
        leads)."""
        pruned: dict[str, int] = {}
        for rule in self._rules:
            if self._leader.stopping.is_set():
                break
            if not await self._leader.lead():  # also between tables: the lock may have gone
                return pruned or None
            pruned[rule.table] = await self._prune(rule)
        if any(pruned.values()):
            log.info("retention_pruned", **pruned)
        return pruned

    async def _prune(self, rule: Rule) -> int:
        total = 0
        counter = self._metrics.retention_pruned.labels(rule.table)
        while True:
            deleted = await rule.prune(self._pool, rule.keep, self._batch)
            total += deleted
            if deleted:
                counter.inc(deleted)
            stopping = self._leader.stopping
            if deleted < self._batch or stopping.is_set():
                return total
            with contextlib.suppress(TimeoutError):  # let other work have the table
                await asyncio.wait_for(stopping.wait(), self._pause)
