"""The journal scheduler's decisions (daemon/pollers.py): the curve of a quiet journal, its
ceilings against what the journal keeps, the idle budget (busiest first), the shares of shards
between replicas. The polls themselves: tests/e2e/test_idle_polling.py, against the emulator."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, cast

import pytest

from allegro_sync.adapters.allegro.journal import Page
from allegro_sync.adapters.allegro.offer_journal import OfferJournal
from allegro_sync.adapters.allegro.order_journal import OrderJournal
from allegro_sync.config.settings import Settings, SettingsError, load_settings
from allegro_sync.daemon.app import poller_settings
from allegro_sync.daemon.pollers import (
    SHARDS,
    JournalPoller,
    PollerSettings,
    PollerSupervisor,
    Slot,
    fair_share,
    next_interval,
    shard_of,
)
from allegro_sync.metrics import Metrics
from tests.helpers import ADMIN_TOKEN, SECRET_KEY


def quiet_polls(timing: PollerSettings, journal: str, busy: float, horizon: float) -> list[float]:
    """When a journal with no events after t=0 is polled, following the curve."""
    t, times = 0.0, []
    while t < horizon:
        t += next_interval(
            busy=busy, ceiling=timing.ceiling(journal), quiet_for=t, divisor=timing.quiet_divisor
        )
        times.append(t)
    return times


def test_a_quiet_journal_backs_off_from_its_busy_interval_to_its_ceiling() -> None:
    timing = PollerSettings()
    times = quiet_polls(timing, "order", busy=1.0, horizon=3600)
    gaps = [b - a for a, b in zip([0.0, *times], times, strict=False)]
    assert gaps[:4] == [1.0, 1.0, 1.0, 1.0]  # still busy for the first seconds of quiet
    assert all(b >= a for a, b in itertools.pairwise(gaps))  # never faster again
    assert max(gaps) == timing.ceiling("order") == 75.0
    # the ceiling once quiet for 4 x 75 s: five minutes
    reached = next(t - g for t, g in zip(times, gaps, strict=True) if g == 75.0)
    assert 300 <= reached <= 300 * 1.25


def test_the_offer_journal_is_read_far_more_often_than_it_forgets() -> None:
    """24 hours of quiet: never a gap above the ceiling, which is far inside the retention."""
    timing = PollerSettings()
    retention = OfferJournal.retention
    times = quiet_polls(timing, "offer", busy=3.0, horizon=retention)
    gaps = [b - a for a, b in zip([0.0, *times], times, strict=False)]
    assert max(gaps) <= timing.ceiling("offer") + 1e-6
    assert timing.ceiling("offer") == 900.0
    assert len(times) >= retention / 900
    assert OrderJournal.retention > retention  # 60 days: the order ceiling is about latency


def test_the_default_ceilings_keep_a_quiet_account_under_one_request_a_minute() -> None:
    timing = poller_settings(_settings())
    per_minute = 60 / timing.ceiling("order") + 60 / timing.ceiling("offer")
    assert per_minute <= 1.0
    assert timing.idle_budget_per_minute == 0.2 * 9000
    # 2 000 quiet accounts fit in the idle budget without stretching the ceilings
    assert 2000 * per_minute <= timing.idle_budget_per_minute


def test_a_ceiling_near_the_offer_journal_retention_is_refused() -> None:
    with pytest.raises(SettingsError, match="OFFER_POLL_CEILING is invalid"):
        _settings(offer_poll_ceiling=86400)
    with pytest.raises(SettingsError, match="IDLE_POLL_BUDGET_SHARE is invalid"):
        _settings(idle_poll_budget_share=0)
    assert _settings(offer_poll_ceiling=43200).offer_poll_ceiling < OfferJournal.retention


def test_replicas_fair_shares_cover_every_shard() -> None:
    for daemons in range(1, 12):
        assert fair_share(daemons) * daemons >= SHARDS
        assert (fair_share(daemons) - 1) * daemons < SHARDS  # no more than needed
    assert fair_share(1) == SHARDS and fair_share(2) == SHARDS // 2


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Recording(PollerSupervisor):
    """The scheduler with its polls recorded instead of run (the decisions only)."""

    started: list[tuple[int, str, bool]]

    def _start(self, slot: Slot, *, idle: bool) -> None:
        slot.version += 1
        self.started.append((slot.account_id, slot.journal, idle))


def scheduler(clock: Clock, per_minute: float) -> Recording:
    journals: Sequence[Any] = [OrderJournal(cast(Any, None), cast(Any, None))]
    journals = [*journals, OfferJournal(cast(Any, None), cast(Any, None))]
    recording = Recording(
        journals=journals,
        dsn="postgresql://unused",
        pool=cast(Any, None),
        publisher=cast(Any, None),
        metrics=Metrics(),
        timing=PollerSettings(idle_budget_per_minute=per_minute),
        clock=clock,
    )
    recording.started = []
    return recording


def add(sup: Recording, account_id: int, journal: str, **state: Any) -> Slot:
    [j] = [j for j in sup._journals if j.name == journal]
    poller = JournalPoller(
        account_id=account_id,
        journal=j,
        pool=cast(Any, None),
        publisher=cast(Any, None),
        metrics=Metrics(),
    )
    slot = Slot(poller=poller, due=sup._clock(), since=sup._clock(), **state)
    sup._slots[(account_id, journal)] = slot
    sup._schedule(slot, sup._clock())
    return slot


def test_idle_polls_wait_for_the_budget_busiest_first_and_busy_ones_do_not() -> None:
    clock = Clock()
    sup = scheduler(clock, per_minute=60)  # one idle poll a second, a burst of one
    for account, interval in ((1, 75.0), (2, 8.0), (3, 30.0)):
        add(sup, account, "order", interval=interval, last_read=clock.now - interval)
    add(sup, 4, "order", busy=True, interval=1.0)
    sup._move_due(clock.now)
    wait = sup._start_ready()
    # the busy one at once; of the idle ones only one fits, the one polled most often
    assert sup.started == [(4, "order", False), (2, "order", True)]
    assert 0.9 <= wait <= 1.0
    clock.now += wait
    sup._move_due(clock.now)
    sup._start_ready()
    assert sup.started[-1] == (3, "order", True)
    clock.now += 1.0
    sup._start_ready()
    assert sup.started[-1] == (1, "order", True)
    assert len(sup.started) == 4


def test_first_reads_at_start_queue_at_their_ceiling_order_journals_before_offer_ones() -> None:
    """A start with more accounts than the idle budget reads at once: the offer journals'
    first reads (900 s ceiling, 24 hours kept) wait behind the order journals' reads, first
    ones and the quiet curve's (75 s), instead of going before them all."""
    clock = Clock()
    sup = scheduler(clock, per_minute=60)  # one idle poll a second
    add(sup, 1, "order", interval=75.0, last_read=clock.now - 75)  # due on the quiet curve
    offer = add(sup, 1, "offer", interval=900.0, last_read=clock.now - 100)
    sup._schedule(offer, clock.now + 800)  # not due yet
    sup.owned = {shard_of(1), shard_of(2)}
    sup._known_active = {1, 2}  # active before: 2 is taken on with its shard
    sup._sync_slots({1, 2})
    assert sup._slots[(2, "order")].interval == 75.0
    for _ in range(3):
        sup._move_due(clock.now)
        clock.now += sup._start_ready()
    assert sup.started == [(1, "order", True), (2, "order", True), (2, "offer", True)]


def test_a_quiet_accounts_order_journal_goes_before_a_busy_accounts_backing_off_offer_journal() -> (
    None
):
    """With the budget short, the offer journal of an account busy with purchases (echoes only:
    read again within 30 s) waits behind the order journal of a quiet account at its ceiling,
    whose purchase would otherwise wait past the ceiling."""
    clock = Clock()
    sup = scheduler(clock, per_minute=60)  # one idle poll a second
    add(sup, 1, "offer", interval=30.0, last_read=clock.now - 30)  # the busy account's echoes
    add(sup, 2, "order", interval=75.0, last_read=clock.now - 75)  # the quiet account
    add(sup, 3, "offer", interval=8.0, last_read=clock.now - 8)
    for _ in range(3):
        sup._move_due(clock.now)
        clock.now += sup._start_ready()
    assert sup.started == [(2, "order", True), (3, "offer", True), (1, "offer", True)]


def test_a_journal_unread_for_half_its_retention_skips_an_exhausted_budget() -> None:
    clock = Clock()
    sup = scheduler(clock, per_minute=60)
    add(sup, 1, "order", interval=75.0, last_read=clock.now - 75)  # takes the one token
    half_day = OfferJournal.retention / 2
    add(sup, 2, "offer", interval=900.0, last_read=clock.now - half_day)
    add(sup, 3, "offer", interval=900.0, last_read=clock.now - 900)
    sup._move_due(clock.now)
    sup._start_ready()
    assert sup.started == [(2, "offer", False), (1, "order", True)]  # 3 waits for a token


def test_a_wake_makes_a_quiet_journal_due_now_and_busy() -> None:
    clock = Clock()
    sup = scheduler(clock, per_minute=60)
    slot = add(sup, 1, "order", interval=75.0, last_read=clock.now)
    sup._schedule(slot, clock.now + 75)
    sup._move_due(clock.now)
    sup._start_ready()
    assert sup.started == []
    sup.wake(1, "order")
    sup.wake(1, "nonexistent")
    sup._move_due(clock.now)
    sup._start_ready()
    assert sup.started == [(1, "order", False)]  # not held to the idle budget
    assert slot.last_activity == clock.now


def test_wakes_in_a_row_read_the_journal_once_per_busy_interval() -> None:
    """Commands sent one after the other each wake their account's offer journal: the first
    wake reads it now, the next ones within its busy interval (3 s) wait for that interval
    after the read's start, and all of them together make one read."""
    clock = Clock()
    sup = scheduler(clock, per_minute=60)
    slot = add(sup, 1, "offer", interval=900.0, last_read=clock.now)
    sup._schedule(slot, clock.now + 900)
    sup.wake(1, "offer")  # never read here yet: now
    sup._move_due(clock.now)
    sup._start_ready()
    assert sup.started == [(1, "offer", False)]
    slot.started = clock.now  # the read starts now and finds echoes only: again in 30 s
    sup._schedule(slot, clock.now + 30.0)
    for _ in range(5):
        clock.now += 0.4
        sup.wake(1, "offer")
    sup._move_due(clock.now)
    sup._start_ready()
    assert sup.started == [(1, "offer", False)]  # 2 s after the read: not yet
    clock.now = slot.started + 3.0
    sup._move_due(clock.now)
    sup._start_ready()
    assert sup.started == [(1, "offer", False), (1, "offer", False)]  # one read for the five
    # a wake long after the last read is read at once again
    slot.started = clock.now
    clock.now += 10
    sup.wake(1, "offer")
    sup._move_due(clock.now)
    sup._start_ready()
    assert len(sup.started) == 3


def _settings(**extra: Any) -> Settings:
    return load_settings(
        Settings,
        database_url="postgresql://x",
        amqp_url="amqp://x",
        client_id="c",
        client_secret="s",
        secret_key=SECRET_KEY,
        admin_token=ADMIN_TOKEN,
        **extra,
    )


def test_a_wake_before_the_journal_is_polled_here_is_kept_for_its_first_poll() -> None:
    """A fetch-now sent while the daemon starts (before its first round) is not swallowed."""
    clock = Clock()
    sup = scheduler(clock, per_minute=60)
    sup.wake(7, "order")
    sup.owned = {shard_of(7)}
    sup._sync_slots({7, 8})  # the first round: others spread over their first interval
    sup._move_due(clock.now)
    sup._start_ready()
    assert (7, "order", False) in sup.started
    assert all(account == 7 for account, _, _ in sup.started)


def test_stock_and_price_changes_are_echoes_other_offer_events_and_order_events_activity() -> None:
    offers = OfferJournal(cast(Any, None), cast(Any, None))
    orders = OrderJournal(cast(Any, None), cast(Any, None))
    assert not offers.is_activity({"type": "OFFER_STOCK_CHANGED", "offer": {"id": "1"}})
    assert not offers.is_activity({"type": "OFFER_PRICE_CHANGED", "offer": {"id": "1"}})
    for kind in ("OFFER_ACTIVATED", "OFFER_CHANGED", "OFFER_ENDED", "OFFER_ARCHIVED"):
        assert offers.is_activity({"type": kind, "offer": {"id": "1"}})
    assert orders.is_activity({"type": "BOUGHT", "order": {"checkoutForm": {"id": "x"}}})


class PagePoller:
    """A poller whose next read gives ``events`` (the scheduler's decision after it)."""

    def __init__(self, journal: Any, events: list[dict[str, Any]], full: bool = False) -> None:
        self.account_id = 1
        self.journal = journal
        self.events = events
        self.full = full

    async def poll_once(self) -> Page:
        return Page(self.events, "c", full=self.full)


async def _decide(
    sup: Recording, journal: str, events: list[dict[str, Any]], **state: Any
) -> tuple[float | None, Slot]:
    slot = add(sup, 1, journal, **state)
    reading: Any = slot.poller.journal
    if journal == "order":  # its before_poll runs the backfill: none here

        async def no_backfill(account_id: int) -> None:
            return None

        reading = OrderJournal(cast(Any, None), no_backfill)
    slot.poller = cast(Any, PagePoller(reading, events))
    busy = sup._timing.busy_interval * slot.poller.journal.busy_factor
    return await sup._poll_and_decide(slot, busy), slot


async def test_an_account_busy_with_purchases_keeps_its_offer_journal_off_the_busy_interval() -> (
    None
):
    """The offer journal of an account that only sells: its purchases' stock echoes are read
    within the echo interval (30 s), not every 3 s; the order journal stays at 1 s."""
    clock = Clock()
    sup = scheduler(clock, per_minute=1800)
    echoes = [{"id": str(n), "type": "OFFER_STOCK_CHANGED", "offer": {"id": "9"}} for n in range(5)]
    interval, slot = await _decide(sup, "offer", echoes)
    assert interval == sup._timing.echo_interval == 30.0
    assert not slot.busy and slot.last_activity is None  # an idle poll next, on the budget
    # the echoes keep coming: still 30 s, never the busy interval
    interval, _ = await _decide(sup, "offer", echoes, last_activity=clock.now - 3600)
    assert interval == 30.0
    # no event at all: the quiet curve up to the ceiling
    interval, _ = await _decide(sup, "offer", [], last_activity=clock.now - 3600)
    assert interval == 900.0
    # an offer edited or created is activity: the busy interval
    edited = [*echoes, {"id": "6", "type": "OFFER_CHANGED", "offer": {"id": "9"}}]
    interval, slot = await _decide(sup, "offer", edited, last_activity=clock.now - 3600)
    assert interval == 3.0 and slot.busy and slot.last_activity == clock.now
    # a command of ours wakes it: busy for a while, echoes or not
    interval, _ = await _decide(sup, "offer", echoes, last_activity=clock.now - 1)
    assert interval == 3.0
    bought = [{"id": "1", "type": "BOUGHT", "order": {"checkoutForm": {"id": "f"}}}]
    interval, slot = await _decide(sup, "order", bought, last_activity=None)
    assert interval == 1.0 and slot.busy


async def test_a_full_page_of_echoes_is_read_on_at_once() -> None:
    clock = Clock()
    sup = scheduler(clock, per_minute=1800)
    slot = add(sup, 1, "offer")
    events = [{"id": "1", "type": "OFFER_STOCK_CHANGED", "offer": {"id": "9"}}]
    slot.poller = cast(Any, PagePoller(slot.poller.journal, events, full=True))
    assert await sup._poll_and_decide(slot, 3.0) == 0.0
    assert slot.busy and slot.last_activity is None
