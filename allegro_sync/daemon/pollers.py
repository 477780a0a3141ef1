"""Journal pollers: one per (active account, journal) across all replicas.

A supervisor keeps a task per active account and journal. Each task holds a PostgreSQL advisory
lock while it polls (all of a process's locks on one connection), so of N replicas exactly one
polls a given journal; the others try again later and take over when that replica dies. A poll
publishes the page to ``allegro-sync.journal`` with publisher confirms and only then stores the
cursor: a crash in between re-publishes the page under the same message ids, which handlers take
in their stride.

Events of one subject within a page (one checkout form, one offer) are published as one event:
the subject's last event of the page, with the ids of the earlier ones in ``coalesced_event_ids``.
Handlers read the subject's current state from Allegro anyway (the event only says "look
again"), so the earlier events would only repeat that work; a burst of purchases costs one
message per form instead of three (BOUGHT, FILLED_IN, READY_FOR_PROCESSING).

A journal says how many events travel in one message (``events_per_message``, a run:
``{"events": [...]}``). Both journals publish runs of 100: a burst of purchases, or the offer
journal's echo of every change of our own batch commands, costs a publish and a delivery per
100 events instead of one per event, and the handlers read offers and checkout forms 100 per
listing call anyway. A run that fails is split by the consumer into single-event messages
(``Route.split``, ``contract.py``), so a failing event holds up no other.

A poll either succeeds, says "try next interval" (Allegro unavailable: logged once when it goes
down and once when it comes back), or finds the credentials dead (the account is switched off
and the task ends).
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiormq
import asyncpg
import structlog

from allegro_sync.adapters.allegro.errors import AllegroError, AllegroUnavailable
from allegro_sync.adapters.allegro.journal import Journal, JournalGap, Page
from allegro_sync.adapters.broker.publisher import ConfirmingPublisher, OutgoingMessage
from allegro_sync.adapters.broker.topology import JOURNAL_EXCHANGE
from allegro_sync.adapters.postgres import accounts, journal_cursors, notifications
from allegro_sync.adapters.postgres import pool as pg
from allegro_sync.adapters.postgres.advisory_locks import AdvisoryLocks
from allegro_sync.errors import CredentialsDead
from allegro_sync.metrics import Metrics

log = structlog.get_logger(__name__)

WAKE_CHANNEL = "allegro_sync_poll"

# What makes a poll "try next interval" rather than end the task: Allegro away, a broker channel
# or connection closed (a restart), a database connection gone or left mid-protocol (a
# restart). The supervisor restarts a dead task only after supervise_interval (issue 19, 4a).
UNAVAILABLE: tuple[type[BaseException], ...] = (
    AllegroUnavailable,
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    aiormq.exceptions.AMQPError,
    aiormq.exceptions.ChannelInvalidStateError,
)


def lock_key(account_id: int, journal: str) -> int:
    """The advisory-lock key of one (account, journal) poller."""
    return (account_id << 8) ^ zlib.crc32(journal.encode()) & 0xFF


def coalesce(
    journal: Journal, events: Sequence[dict[str, Any]]
) -> list[tuple[dict[str, Any], list[str]]]:
    """The events to publish for a page: per subject its last event, with the ids of the
    subject's earlier events in the page, in the order of those last events."""
    subjects = [journal.subject(event) for event in events]
    last = {subject: index for index, subject in enumerate(subjects) if subject is not None}
    earlier: dict[int, list[str]] = {}
    kept: list[int] = []
    for index, (event, subject) in enumerate(zip(events, subjects, strict=True)):
        if subject is None or last[subject] == index:
            kept.append(index)
        else:
            earlier.setdefault(last[subject], []).append(str(event["id"]))
    return [(dict(events[i]), earlier.get(i, [])) for i in kept]


def page_messages(
    journal: Journal, account_id: int, events: Sequence[tuple[dict[str, Any], dict[str, Any]]]
) -> list[OutgoingMessage]:
    """The messages of a (coalesced) page of ``(event, extra)``: the events, each with its
    extra fields, in runs of ``events_per_message``, each run's id made of its first and last
    event ids (a page read again from the same cursor gives the same runs, but perhaps a longer
    last one; a run that fails is split by the consumer, see ``contract.py``)."""
    size = journal.events_per_message
    messages = []
    for first in range(0, len(events), size):
        run = [{**event, **extra} for event, extra in events[first : first + size]]
        messages.append(
            OutgoingMessage(
                exchange=JOURNAL_EXCHANGE,
                routing_key=journal.routing_key,
                message_id=f"{journal.name}-events:{account_id}:{run[0]['id']}:{run[-1]['id']}",
                payload={"account_id": account_id, "events": run},
            )
        )
    return messages


class LockLost(Exception):  # a condition rather than a failure of ours
    """The poller's advisory lock went with its connection; compete for it again."""


@dataclass
class PollerSettings:
    """Timing of the pollers."""

    busy_interval: float = 1.0
    idle_max_interval: float = 15.0
    lock_retry_interval: float = 10.0
    supervise_interval: float = 5.0


class JournalPoller:
    """One task: polls one journal of one account while holding its advisory lock."""

    def __init__(
        self,
        *,
        account_id: int,
        journal: Journal,
        locks: AdvisoryLocks,
        pool: asyncpg.Pool,
        publisher: ConfirmingPublisher,
        metrics: Metrics,
        timing: PollerSettings,
    ) -> None:
        self.account_id = account_id
        self.journal = journal
        self._locks = locks
        self._pool = pool
        self._publisher = publisher
        self._metrics = metrics
        self._timing = timing
        self.wake = asyncio.Event()
        self.ended = False

    async def run(self) -> None:
        """Hold the lock and poll until cancelled or the account's credentials die."""
        key = lock_key(self.account_id, self.journal.name)
        while True:
            generation = None
            with contextlib.suppress(*UNAVAILABLE):
                generation = await self._locks.try_lock(key)
            if generation is not None:
                try:
                    await self._poll_while_locked(generation)
                    return
                except LockLost:
                    log.warning("journal_poller_lock_lost", account_id=self.account_id)
                finally:
                    await self._locks.unlock(key, generation)
            await self._sleep(self._timing.lock_retry_interval)

    async def _poll_while_locked(self, generation: int) -> None:
        busy = self._timing.busy_interval * self.journal.busy_factor
        interval = busy
        failing = False
        bound = structlog.contextvars.bound_contextvars(
            account_id=self.account_id, journal=self.journal.name
        )
        with bound:
            while True:
                if not await self._locks.holds(generation):
                    raise LockLost
                try:
                    await self.journal.before_poll(self.account_id)
                    page = await self.poll_once()
                    if failing:
                        log.info("journal_available_again")
                        failing = False
                    if page.full:
                        interval = 0.0
                    elif page.events:
                        interval = busy
                    else:
                        interval = min(
                            max(interval * 2, busy),
                            self._timing.idle_max_interval,
                        )
                except CredentialsDead:
                    log.warning("journal_poller_stopped_credentials_dead")
                    self.ended = True
                    return
                except UNAVAILABLE as exc:
                    if not failing:
                        log.warning("journal_unavailable", error=str(exc))
                        failing = True
                    interval = min(max(interval * 2, 2.0), 60.0)
                except AllegroError as exc:
                    log.error("journal_poll_refused", error=str(exc))
                    interval = 60.0
                await self._sleep(interval)

    async def poll_once(self) -> Page:
        """Read one page, publish it with confirms, then store the cursor."""
        cursor, known = await self._cursor()
        if not known:
            cursor = await self.journal.start_cursor(self.account_id)
            await self._save_cursor(cursor)
            return Page((), cursor, full=False)
        try:
            page = await self._read_pages(cursor)
        except JournalGap:
            log.warning("journal_gap_reconciling")
            async with self._pool.acquire() as conn:
                cursor = await self.journal.recover(conn, self.account_id)
            await self._save_cursor(cursor)
            return Page((), cursor, full=True)
        if page.events:
            kept = coalesce(self.journal, page.events)
            extras = await self.journal.enrich(self.account_id, [event for event, _ in kept])
            await self._publisher.publish_many(
                page_messages(
                    self.journal,
                    self.account_id,
                    [
                        (event, {**extra, "coalesced_event_ids": earlier} if earlier else extra)
                        for (event, earlier), extra in zip(kept, extras, strict=True)
                    ],
                )
            )
            self._metrics.journal_events.labels(self.journal.name).inc(len(page.events))
        if page.cursor != cursor:
            await self._save_cursor(page.cursor)
        return page

    async def _read_pages(self, cursor: str | None) -> Page:
        """Up to ``pages_per_poll`` pages while they come full, as one page: a journal that is
        behind (the offer journal after a burst of our own commands) then coalesces an
        offer's events across pages too."""
        page = await self.journal.read(self.account_id, cursor)
        events = list(page.events)
        for _ in range(self.journal.pages_per_poll - 1):
            if not page.full:
                break
            page = await self.journal.read(self.account_id, page.cursor)
            events.extend(page.events)
        return Page(events, page.cursor, page.full)

    async def _cursor(self) -> tuple[str | None, bool]:
        row = await journal_cursors.get(self._pool, self.account_id, self.journal.name)
        return (row["last_event_id"], True) if row is not None else (None, False)

    async def _save_cursor(self, cursor: str | None) -> None:
        await journal_cursors.save(self._pool, self.account_id, self.journal.name, cursor)

    async def _sleep(self, seconds: float) -> None:
        if seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), seconds)
        self.wake.clear()


class PollerSupervisor:
    """Keeps one poller task per active account and journal; ``NOTIFY allegro_sync_poll``
    with ``<account_id>:<journal>`` wakes a poller at once (the manual "fetch now")."""

    def __init__(
        self,
        *,
        journals: Sequence[Journal],
        dsn: str,
        pool: asyncpg.Pool,
        publisher: ConfirmingPublisher,
        metrics: Metrics,
        timing: PollerSettings | None = None,
    ) -> None:
        self._journals = journals
        self._dsn = dsn
        self._pool = pool
        self._publisher = publisher
        self._metrics = metrics
        self._timing = timing or PollerSettings()
        self._tasks: dict[tuple[int, str], tuple[JournalPoller, asyncio.Task[None]]] = {}
        self._locks = AdvisoryLocks(dsn)
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncpg.Connection | None = None
        self._changed = asyncio.Event()

    async def start(self) -> None:
        """Start supervising."""
        self._task = asyncio.create_task(self._run(), name="poller-supervisor")

    async def stop(self, timeout: float) -> None:
        """Cancel every poller; cursors are only ever saved after a confirmed publish."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for _, task in self._tasks.values():
            task.cancel()
        for _, task in self._tasks.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, timeout)
        self._tasks.clear()
        await self._locks.close()
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        account, _, journal = payload.partition(":")
        if account == "*":
            self._changed.set()  # accounts were added, activated or deactivated
            return
        with contextlib.suppress(ValueError):
            entry = self._tasks.get((int(account), journal))
            if entry is not None:
                entry[0].wake.set()

    async def _run(self) -> None:
        while True:
            try:
                if self._listener is None or self._listener.is_closed():
                    self._listener = await pg.connect(self._dsn)
                    await self._listener.add_listener(WAKE_CHANNEL, self._notified)
                await self.reconcile()
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("poller_supervisor_failing", error=str(exc))
                self._listener = None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), self._timing.supervise_interval)
            self._changed.clear()

    async def reconcile(self) -> None:
        """Start pollers for active accounts, stop those of inactive or deleted ones."""
        active = set(await accounts.active_ids(self._pool))
        wanted = {(a, j.name) for a in active for j in self._journals}
        for key in list(self._tasks):
            poller, task = self._tasks[key]
            if key not in wanted or task.done():
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
                del self._tasks[key]
        for journal in self._journals:
            for account_id in active:
                key = (account_id, journal.name)
                if key in self._tasks:
                    continue
                poller = JournalPoller(
                    account_id=account_id,
                    journal=journal,
                    locks=self._locks,
                    pool=self._pool,
                    publisher=self._publisher,
                    metrics=self._metrics,
                    timing=self._timing,
                )
                task = asyncio.create_task(poller.run(), name=f"poll:{account_id}:{journal.name}")
                self._tasks[key] = (poller, task)


async def wake_poller(conn: asyncpg.Connection, account_id: int | str, journal: str) -> None:
    """Ask whichever replica polls this journal to poll now."""
    await notifications.notify(conn, WAKE_CHANNEL, f"{account_id}:{journal}")
