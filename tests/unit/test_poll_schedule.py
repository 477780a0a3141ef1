"""The journal scheduler's decisions (daemon/pollers.py): the curve of a quiet journal, its
ceilings against what the journal keeps, the idle budget (busiest first), the shares of shards
between replicas. The polls themselves: tests/e2e/test_idle_polling.py, against the emulator."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any, cast

import pytest

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
