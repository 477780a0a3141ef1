"""Journal polling: one scheduler per replica over every (active account, journal) it owns.

**Who polls what.** Accounts fall into ``SHARDS`` shards (``account_id % SHARDS``); a replica
polls the accounts of the shards whose session advisory lock it holds (all on one connection,
``AdvisoryLocks``), so no account is polled by two replicas at once. Every
``supervise_interval`` a replica counts the daemons on the database (``replicas.py``), keeps at
most its fair share ``ceil(SHARDS / daemons)`` (giving the excess back once its polls in flight
are done) and takes free shards up to that share; the shares add up to at least ``SHARDS``, so
no shard is left without a poller for longer than a round once every replica has had its turn,
and a replica that dies takes its locks with it (its connection closes) for the others to take.

**When.** One due-time heap over all the replica's (account, journal) pairs. The interval of a
pair follows its activity (``next_interval``): the journal's busy interval while events come,
then a quarter of the time it has been quiet, up to the journal's ceiling (``PollerSettings``:
75 s for orders, 15 minutes for offers by default; the offer journal keeps 24 hours, so it is
read a hundred times within its retention). Quiet means no event that is activity
(``Journal.is_activity``): the offer journal's stock and price changes are echoes of purchases
(which the order journal carries) and of our own commands (which wake the journal when sent
and when done), so an account busy with orders keeps its offer journal on the quiet curve; a
page that held echoes only is read again within ``echo_interval`` (30 s), its echoes of one
offer coalesced into one listing read. A full page is read again at once. Idle polls
(of a journal backing off: quiet for longer than 4 busy intervals) take a token from the
idle budget (``idle_budget_per_minute``,
the ``IDLE_POLL_BUDGET_SHARE`` of the client's requests a minute for all the replicas, each
taking the part of the shards it holds); when it runs short, due idle
polls wait and go order journals first (``Journal.idle_rank``: a quiet account's purchase waits
for its order journal's read, while an offer journal's idle read only finds edits made outside
and its journal keeps them a day), then busiest first (smallest interval, then longest overdue;
a journal taken on at start or with a shard queues at its ceiling). A pair whose last
read is older than half its journal's retention skips the budget. ``NOTIFY allegro_sync_poll``
with ``<account_id>:<journal>`` (``<account_id>:`` both) polls now, or at the journal's busy
interval after its last read's start if that is later, and counts as activity: the manual
"fetch now", a batch command sent or settled, a fulfillment status written, an offer bound; so
a stream of commands on one account reads its offer journal once per busy interval (3 s), the
echoes of all of them on one page, not once per command; ``*`` makes the scheduler look at the
accounts again.

**A poll** publishes the page to ``allegro-sync.journal`` with publisher confirms and only then
stores the cursor: a crash in between re-publishes the page under the same message ids, which
handlers take in their stride. With the cursor goes the time of the read (``read_at``,
Allegro's ``Date`` of the answer; stored at least every ``READ_AT_STEP`` while the cursor stays):
Allegro refuses a cursor older than its journal keeps (``JournalGap``), but a cursor still at
its start (None: no event read since the account was connected) reads from the oldest retained
event, so a journal whose last read is older than its retention (the daemon offline for a day)
is taken as a gap too and recovered the same way (the offer journal: a listing sweep and an
``offer_journal_gap`` warning).

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

A poll either succeeds, says "try later" (Allegro unavailable, the broker or the database
away: logged once when it goes down and once when it comes back, retried after 2 s doubling
to 60 s), or finds the credentials dead (the account is switched off and left alone).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import aiormq
import asyncpg
import structlog

from allegro_sync.adapters.allegro.errors import AllegroError, AllegroUnavailable
from allegro_sync.adapters.allegro.journal import Journal, JournalGap, Page
from allegro_sync.adapters.allegro.limits import TokenBucket
from allegro_sync.adapters.broker.publisher import ConfirmingPublisher, OutgoingMessage
from allegro_sync.adapters.broker.topology import JOURNAL_EXCHANGE
from allegro_sync.adapters.postgres import accounts, journal_cursors, notifications
from allegro_sync.adapters.postgres import pool as pg
from allegro_sync.adapters.postgres.advisory_locks import AdvisoryLocks
from allegro_sync.daemon import replicas
from allegro_sync.errors import CredentialsDead
from allegro_sync.metrics import Metrics
from allegro_sync.tasks import CANCEL_GRACE, wait_tasks

log = structlog.get_logger(__name__)

WAKE_CHANNEL = notifications.POLL_CHANNEL

# What makes a poll "try later" rather than leave the account alone: Allegro away, a broker
# channel or connection closed (a restart), a database connection gone or left mid-protocol (a
# restart) (issue 19, 4a).
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

SHARDS = 64
LOCK_NAMESPACE = 0x706F_6C6C  # "poll": the high half of a shard's advisory-lock key
Clock = Callable[[], float]
PENDING_WAKE = 30.0  # seconds a wake for a journal not (yet) polled here is kept
READ_AT_STEP = 60.0  # seconds between stores of the read time of a journal whose cursor stays


def shard_of(account_id: int) -> int:
    """The shard an account is polled with."""
    return account_id % SHARDS


def shard_lock_key(shard: int) -> int:
    """The advisory-lock key of one shard of accounts."""
    return (LOCK_NAMESPACE << 32) | shard


def fair_share(daemons: int) -> int:
    """How many shards one of ``daemons`` replicas keeps (together they cover all)."""
    return math.ceil(SHARDS / max(daemons, 1))


def next_interval(*, busy: float, ceiling: float, quiet_for: float, divisor: float) -> float:
    """Seconds to the next poll of a journal quiet for ``quiet_for`` seconds (no event read
    since): its busy interval at first, then ``quiet_for / divisor``, never above its ceiling.
    With the default divisor 4 the polls of a quiet journal come at 1.25 times the previous
    quiet time: a journal polled every second stays so for 4 s of quiet, reaches 10 s after 40 s
    of quiet and the order journal's 75 s ceiling after 5 minutes."""
    return min(ceiling, max(busy, quiet_for / divisor))


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


def _default_ceilings() -> dict[str, float]:
    return {"order": 75.0, "offer": 900.0}


@dataclass
class PollerSettings:
    """Timing of the polls (``next_interval``) and the idle budget, see the module docstring.

    The defaults keep a quiet account at 60/75 + 60/900 = 0.87 requests a minute, so 2 000
    quiet accounts take 1 733 of the client's 9 000 a minute (19 %), inside the 20 % budget."""

    busy_interval: float = 1.0  # times the journal's busy_factor
    ceilings: dict[str, float] = field(default_factory=_default_ceilings)
    default_ceiling: float = 75.0  # a journal without its own ceiling
    quiet_divisor: float = 4.0
    # a page of echoes only (``Journal.is_activity``): read again within this, not at once
    echo_interval: float = 30.0
    idle_budget_per_minute: float = 1800.0  # IDLE_POLL_BUDGET_SHARE x requests a minute
    max_concurrent: int = 64  # polls in flight at once
    supervise_interval: float = 5.0  # accounts and shards looked at again
    lock_check_interval: float = 1.0  # the lock connection checked (locks lost: stop polling)

    def ceiling(self, journal: str) -> float:
        """The longest interval between two polls of a quiet journal."""
        return self.ceilings.get(journal, self.default_ceiling)


class JournalPoller:
    """One journal of one account: reads a page, publishes it, stores the cursor."""

    def __init__(
        self,
        *,
        account_id: int,
        journal: Journal,
        pool: asyncpg.Pool,
        publisher: ConfirmingPublisher,
        metrics: Metrics,
    ) -> None:
        self.account_id = account_id
        self.journal = journal
        self._pool = pool
        self._publisher = publisher
        self._metrics = metrics

    async def poll_once(self) -> Page:
        """Read one page, publish it with confirms, then store the cursor."""
        row = await journal_cursors.get(self._pool, self.account_id, self.journal.name)
        if row is None:
            cursor = await self.journal.start_cursor(self.account_id)
            await self._save_cursor(cursor, None)
            return Page((), cursor, full=False)
        cursor, last_read = row["last_event_id"], row["read_at"]
        try:
            page = await self._read_pages(cursor)
            read_at = page.read_at or datetime.now(UTC)
            if cursor is None and read_at - last_read > timedelta(seconds=self.journal.retention):
                # Allegro refuses a stored cursor that fell out of the journal, but a journal
                # still at its start reads from the oldest retained event: what happened
                # between the last read and that event is gone just the same (issue 18)
                raise JournalGap(f"not read since {last_read.isoformat()}")
        except JournalGap as gap:
            log.warning("journal_gap_reconciling", reason=str(gap))
            async with self._pool.acquire() as conn:
                cursor = await self.journal.recover(conn, self.account_id)
            await self._save_cursor(cursor, None)
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
        # the read time is stored with a moved cursor, and on its own every READ_AT_STEP: a
        # journal still at its start is then known to be read within its retention
        if page.cursor != cursor or read_at - last_read >= timedelta(seconds=READ_AT_STEP):
            await self._save_cursor(page.cursor, read_at)
        return page

    async def _read_pages(self, cursor: str | None) -> Page:
        """Up to ``pages_per_poll`` pages while they come full, as one page: a journal that is
        behind (the offer journal after a burst of our own commands) then coalesces an
        offer's events across pages too."""
        page = await self.journal.read(self.account_id, cursor)
        events, read_at = list(page.events), page.read_at  # read as of the first page
        for _ in range(self.journal.pages_per_poll - 1):
            if not page.full:
                break
            page = await self.journal.read(self.account_id, page.cursor)
            events.extend(page.events)
        return Page(events, page.cursor, page.full, read_at)

    async def _save_cursor(self, cursor: str | None, read_at: datetime | None) -> None:
        await journal_cursors.save(self._pool, self.account_id, self.journal.name, cursor, read_at)


@dataclass(eq=False)
class Slot:
    """The schedule of one (account, journal)."""

    poller: JournalPoller
    due: float
    since: float  # when this replica took it on (its age before the first read)
    last_activity: float | None = None  # events read or a wake; None: not known (quiet)
    last_read: float | None = None  # the last successful read
    busy: bool = False  # the next poll skips the idle budget (events, a full page, a wake)
    failing: bool = False
    backoff: float = 0.0
    in_flight: bool = False
    rewake: bool = False  # woken while in flight: poll again at its busy interval
    started: float | None = None  # when the last poll started
    removed: bool = False
    version: int = 0
    interval: float = 0.0  # the last interval chosen (busiest first among waiting idle polls)

    @property
    def account_id(self) -> int:
        return self.poller.account_id

    @property
    def journal(self) -> str:
        return self.poller.journal.name


class PollerSupervisor:
    """The replica's scheduler: owns shards of accounts (advisory locks) and polls their
    journals from one due-time heap within the idle budget; see the module docstring."""

    def __init__(
        self,
        *,
        journals: Sequence[Journal],
        dsn: str,
        pool: asyncpg.Pool,
        publisher: ConfirmingPublisher,
        metrics: Metrics,
        timing: PollerSettings | None = None,
        instance: str | None = None,
        replica_count: replicas.ReplicaCount | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self._journals = journals
        self._dsn = dsn
        self._pool = pool
        self._publisher = publisher
        self._metrics = metrics
        self._timing = timing or PollerSettings()
        self._instance = instance  # this daemon's application_name (None: assume alone)
        self._replica_count = replica_count  # where the count goes (the limits' fallback)
        self._clock = clock
        self._locks = AdvisoryLocks(dsn)
        self._generation: int | None = None
        self.owned: set[int] = set()  # shards held
        self._slots: dict[tuple[int, str], Slot] = {}
        self._heap: list[tuple[float, int, int, Slot]] = []  # (due, seq, version, slot)
        self._busy_ready: list[tuple[float, int, int, Slot]] = []
        self._idle_ready: list[tuple[int, float, float, int, int, Slot]] = []
        self._seq = itertools.count()
        rate = max(self._timing.idle_budget_per_minute, 1.0) / 60.0
        self._idle_budget = TokenBucket(capacity=max(rate, 1.0), rate=rate, clock=clock)
        self._running: dict[Slot, asyncio.Task[None]] = {}
        self._kick = asyncio.Event()
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._listener: asyncpg.Connection | None = None
        self._known_active: set[int] | None = None
        self._pending_wakes: dict[tuple[int, str], float] = {}  # (account, journal) -> when
        # (account, journal, start, end) of every poll, kept when a test asks for it
        self.poll_log: list[tuple[int, str, float, float]] | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start supervising and dispatching."""
        self._tasks = [
            asyncio.create_task(self._supervise(), name="poller-supervisor"),
            asyncio.create_task(self._dispatch(), name="poller-dispatcher"),
            asyncio.create_task(self._watch_locks(), name="poller-locks"),
        ]

    async def stop(self, timeout: float) -> None:
        """Stop dispatching, cancel the polls in flight (cursors are only ever saved after a
        confirmed publish), give the shards back; every step bounded (a poll hanging on
        Allegro is cancelled, not waited for)."""
        running = list(self._running.values())
        for task in [*self._tasks, *running]:
            task.cancel()
        await wait_tasks([*self._tasks, *running], min(timeout, CANCEL_GRACE), what="pollers")
        self._running.clear()
        self.owned.clear()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._locks.close(), CANCEL_GRACE)
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._listener.close(), CANCEL_GRACE)

    # -- wakes ---------------------------------------------------------------------------------

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        account, _, journal = payload.partition(":")
        if account == "*":
            self._changed.set()  # accounts were added, activated or deactivated
            return
        with contextlib.suppress(ValueError):
            self.wake(int(account), journal or None)

    def wake(self, account_id: int, journal: str | None = None) -> None:
        """Poll the account's journal (None: every journal) now, at its busy interval after."""
        now = self._clock()
        for j in self._journals:
            if journal is not None and j.name != journal:
                continue
            slot = self._slots.get((account_id, j.name))
            if slot is None or slot.removed:
                # not (yet) polled here: just started, the shard being taken, or another
                # replica's; kept for a while so that a start-up does not swallow it
                self._pending_wakes[(account_id, j.name)] = now
                continue
            slot.last_activity = now
            slot.busy = True
            if slot.in_flight:
                slot.rewake = True
            else:
                self._schedule(slot, min(slot.due, self._soonest(slot, now)))
        self._kick.set()

    def _soonest(self, slot: Slot, now: float) -> float:
        """When a woken journal is read: now, or its busy interval after the last read's start
        (a burst of commands, each waking its account's offer journal, costs one read per
        interval, not one per command: the echoes of all of them are on the next page)."""
        if slot.started is None:
            return now
        return max(now, slot.started + self._timing.busy_interval * slot.poller.journal.busy_factor)

    # -- ownership -------------------------------------------------------------------------------

    async def _supervise(self) -> None:
        while True:
            try:
                if self._listener is None or self._listener.is_closed():
                    self._listener = await pg.connect(self._dsn)
                    await self._listener.add_listener(WAKE_CHANNEL, self._notified)
                await self.reconcile()
            except UNAVAILABLE as exc:
                log.warning("poller_supervisor_failing", error=str(exc))
                if self._listener is not None:
                    with contextlib.suppress(Exception):
                        await self._listener.close()
                self._listener = None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), self._timing.supervise_interval)
            self._changed.clear()

    async def _watch_locks(self) -> None:
        """Stop polling the shards at once when the lock connection is gone (another replica
        may have them now); the next round competes for them again."""
        while True:
            await asyncio.sleep(self._timing.lock_check_interval)
            if self._generation is not None and not await self._locks.holds(self._generation):
                log.warning("journal_poller_lock_lost", shards=len(self.owned))
                self._lose_all()
            self._publish_ages()

    def _lose_all(self) -> None:
        self._generation = None
        self.owned.clear()
        for slot in list(self._slots.values()):
            self._remove(slot)

    async def reconcile(self) -> None:
        """Keep this replica's fair share of shards, then a slot per active account of the
        owned shards and journal (new ones read once at once, paced by the idle budget)."""
        daemons = 1
        if self._instance is not None:
            daemons += await replicas.other_daemons(self._pool, self._instance)
        if self._replica_count is not None:
            self._replica_count.value = daemons
        share = fair_share(daemons)
        if self._generation is not None and not await self._locks.holds(self._generation):
            self._lose_all()
        if len(self.owned) > share:
            await self._release(sorted(self.owned)[share:])
        if len(self.owned) < share:
            await self._take(share)
        self._size_idle_budget(len(self.owned) / SHARDS)
        active = set(await accounts.active_ids(self._pool))
        self._sync_slots(active)
        self._metrics.polled_accounts.set(len({a for a, _ in self._slots}))

    def _size_idle_budget(self, part: float) -> None:
        """This replica's part of the idle budget: that of the shards it holds. The shards are
        held by one replica each, so the parts of all the replicas add up to the budget at
        most, whatever their number."""
        budget = self._idle_budget
        budget.wait_for(0)  # refilled until now at the old rate
        budget.rate = max(self._timing.idle_budget_per_minute * part, 1.0) / 60.0
        budget.capacity = max(budget.rate, 1.0)
        budget.tokens = min(budget.tokens, budget.capacity)

    @property
    def idle_budget_per_minute(self) -> float:
        """This replica's idle budget now (requests a minute)."""
        return self._idle_budget.rate * 60.0

    async def _take(self, share: int) -> None:
        free = [s for s in range(SHARDS) if s not in self.owned]
        random.shuffle(free)  # replicas starting together do not queue on the same shards
        for shard in free:
            if len(self.owned) >= share:
                return
            try:
                generation = await self._locks.try_lock(shard_lock_key(shard))
            except UNAVAILABLE as exc:
                log.warning("poller_locks_failing", error=str(exc))
                return
            if generation is None:
                continue
            if self._generation is not None and generation != self._generation:
                self._lose_all()  # the connection changed under us: older locks are gone
            self._generation = generation
            self.owned.add(shard)

    async def _release(self, shards: Sequence[int]) -> None:
        """Give shards back once their polls in flight are done (never two pollers at once)."""
        generation = self._generation
        self.owned.difference_update(shards)
        gone = [slot for slot in self._slots.values() if shard_of(slot.account_id) in shards]
        in_flight = [self._running[s] for s in gone if s in self._running]
        for slot in gone:
            self._remove(slot)
        if in_flight:
            await asyncio.wait(in_flight, timeout=30.0)
        if generation is not None:
            for shard in shards:
                await self._locks.unlock(shard_lock_key(shard), generation)
        log.info("poller_shards_released", shards=len(shards))

    def _sync_slots(self, active: set[int]) -> None:
        now = self._clock()
        self._pending_wakes = {
            key: at for key, at in self._pending_wakes.items() if now - at < PENDING_WAKE
        }
        first_round = self._known_active is None
        newly_active = set() if first_round else active - (self._known_active or set())
        self._known_active = active
        mine = {a for a in active if shard_of(a) in self.owned}
        for key, slot in list(self._slots.items()):
            if key[0] not in mine:
                self._remove(slot)
        for account_id in mine:
            for journal in self._journals:
                key = (account_id, journal.name)
                if key in self._slots:
                    continue
                slot = Slot(
                    poller=JournalPoller(
                        account_id=account_id,
                        journal=journal,
                        pool=self._pool,
                        publisher=self._publisher,
                        metrics=self._metrics,
                    ),
                    due=now,
                    since=now,
                )
                self._slots[key] = slot
                woken = self._pending_wakes.pop(key, None) is not None
                if account_id in newly_active or woken:
                    slot.last_activity = now  # just connected or switched on: busy for a while
                    slot.busy = True
                    self._schedule(slot, now)
                else:
                    # taken on at start or with a shard: read once now, paced by the idle
                    # budget (a restart or a rebalance must not leave purchases made meanwhile
                    # waiting up to a ceiling); the quiet curve takes over from that read.
                    # Queued as a quiet journal at its ceiling: while the budget is short (a
                    # start with thousands of accounts) the order journals' reads, first ones
                    # and the quiet curve's, go before the offer journals' first reads
                    slot.interval = self._timing.ceiling(journal.name)
                    self._schedule(slot, now)
        self._kick.set()

    def _remove(self, slot: Slot) -> None:
        slot.removed = True
        slot.version += 1
        self._slots.pop((slot.account_id, slot.journal), None)

    # -- the schedule ------------------------------------------------------------------------

    def _schedule(self, slot: Slot, due: float) -> None:
        slot.version += 1
        slot.due = due
        heapq.heappush(self._heap, (due, next(self._seq), slot.version, slot))
        self._kick.set()

    def _urgent(self, slot: Slot, now: float) -> bool:
        """Read since longer than half the journal's retention: skip the idle budget."""
        seen = slot.last_read if slot.last_read is not None else slot.since
        return now - seen >= slot.poller.journal.retention / 2

    def _move_due(self, now: float) -> None:
        while self._heap and self._heap[0][0] <= now:
            due, seq, version, slot = heapq.heappop(self._heap)
            if version != slot.version or slot.removed:
                continue
            if slot.busy or self._urgent(slot, now):
                heapq.heappush(self._busy_ready, (due, seq, version, slot))
            else:  # order journals first, then the busiest: the shortest interval, then the
                # longest overdue
                rank = slot.poller.journal.idle_rank
                heapq.heappush(self._idle_ready, (rank, slot.interval, due, seq, version, slot))

    async def _dispatch(self) -> None:
        while True:
            now = self._clock()
            self._move_due(now)
            wait = self._start_ready()
            if self._heap:
                wait = min(wait, max(self._heap[0][0] - self._clock(), 0.0))
            self._metrics.polls_waiting.set(len(self._idle_ready))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), min(wait, 1.0))
            self._kick.clear()

    def _start_ready(self) -> float:
        """Start what is ready and may start; the seconds until the idle budget has a token
        again (a long time when nothing waits for one)."""
        limit = self._timing.max_concurrent
        while self._busy_ready and len(self._running) < limit:
            _, _, version, slot = heapq.heappop(self._busy_ready)
            if version == slot.version and not slot.removed:
                self._start(slot, idle=False)
        while self._idle_ready and len(self._running) < limit:
            _, _, _, _, version, slot = self._idle_ready[0]
            if version != slot.version or slot.removed:
                heapq.heappop(self._idle_ready)
                continue
            wait = self._idle_budget.wait_for(1.0)
            if wait > 0:
                return wait
            heapq.heappop(self._idle_ready)
            self._idle_budget.take(1.0)
            self._start(slot, idle=True)
        return 60.0

    def _start(self, slot: Slot, *, idle: bool) -> None:
        slot.version += 1  # any other entry of the slot is stale now
        slot.in_flight = True
        slot.busy = False
        if idle:
            self._metrics.idle_polls.labels(slot.journal).inc()
        task = asyncio.create_task(self._poll(slot), name=f"poll:{slot.account_id}:{slot.journal}")
        self._running[slot] = task

    async def _poll(self, slot: Slot) -> None:
        journal = slot.poller.journal
        busy = self._timing.busy_interval * journal.busy_factor
        started = slot.started = self._clock()
        seen = slot.last_read if slot.last_read is not None else slot.since
        self._metrics.poll_age.labels(journal.name).observe(started - seen)
        delay: float | None = None
        bound = structlog.contextvars.bound_contextvars(
            account_id=slot.account_id, journal=journal.name
        )
        try:
            with bound:
                delay = await self._poll_and_decide(slot, busy)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug must not end the account's polling
            log.exception("journal_poll_failed")
            delay = 60.0
        finally:
            if self.poll_log is not None:
                self.poll_log.append((slot.account_id, journal.name, started, self._clock()))
            slot.in_flight = False
            self._running.pop(slot, None)
            if not slot.removed and delay is not None:
                if slot.rewake:
                    slot.rewake, slot.busy, delay = False, True, min(delay, busy)
                slot.interval = delay
                # the interval counts from the poll's start: a slow read (a page of forms
                # enriched and published) does not stretch a busy account's cadence
                self._schedule(slot, max(self._clock(), started + delay))
            self._kick.set()

    async def _poll_and_decide(self, slot: Slot, busy: float) -> float | None:
        """One poll; the seconds to the next (None: leave the account alone)."""
        journal = slot.poller.journal
        try:
            await journal.before_poll(slot.account_id)
            page = await slot.poller.poll_once()
        except CredentialsDead:
            log.warning("journal_poller_stopped_credentials_dead")
            slot.removed = True
            self._slots.pop((slot.account_id, slot.journal), None)
            return None
        except UNAVAILABLE as exc:
            if not slot.failing:
                log.warning("journal_unavailable", error=str(exc))
                slot.failing = True
            slot.backoff = min(max(slot.backoff * 2, 2.0), 60.0)
            return slot.backoff
        except AllegroError as exc:
            log.error("journal_poll_refused", error=str(exc))
            return 60.0
        now = self._clock()
        if slot.failing:
            log.info("journal_available_again")
            slot.failing = False
        slot.backoff = 0.0
        slot.last_read = now
        if any(journal.is_activity(event) for event in page.events):
            slot.last_activity = now
        if page.full:
            slot.busy = True
            return 0.0
        quiet_for = math.inf if slot.last_activity is None else now - slot.last_activity
        ceiling = self._timing.ceiling(journal.name)
        if page.events:  # echoes only (or activity: then the busy interval anyway)
            ceiling = min(ceiling, self._timing.echo_interval)
        interval = next_interval(
            busy=busy, ceiling=ceiling, quiet_for=quiet_for, divisor=self._timing.quiet_divisor
        )
        # still at its busy interval (events a moment ago): a busy poll, not held to the budget
        slot.busy = interval <= busy
        return interval

    def _publish_ages(self) -> None:
        """The oldest read per journal among this replica's accounts."""
        now = self._clock()
        oldest: dict[str, float] = {j.name: 0.0 for j in self._journals}
        for slot in self._slots.values():
            seen = slot.last_read if slot.last_read is not None else slot.since
            oldest[slot.journal] = max(oldest.get(slot.journal, 0.0), now - seen)
        for name, age in oldest.items():
            self._metrics.poll_age_max.labels(name).set(age)

    # -- for tests and the benchmark ------------------------------------------------------------

    def alive(self) -> bool:
        """Whether the scheduler's own tasks all run (none ended by an error)."""
        return bool(self._tasks) and not any(task.done() for task in self._tasks)

    def next_poll_in(self, account_id: int, journal: str) -> float | None:
        """Seconds until the journal's next poll is due (None: not polled here, or in flight)."""
        slot = self._slots.get((account_id, journal))
        if slot is None or slot.in_flight:
            return None
        return slot.due - self._clock()

    def interval_of(self, account_id: int, journal: str) -> float | None:
        """The interval chosen after the last poll of a journal (None: not polled here)."""
        slot = self._slots.get((account_id, journal))
        return None if slot is None else slot.interval


async def wake_poller(conn: asyncpg.Connection, account_id: int | str, journal: str) -> None:
    """Ask whichever replica polls this journal to poll now."""
    await notifications.wake_journal(conn, account_id, journal)
