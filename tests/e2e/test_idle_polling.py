"""Polling that follows activity (issue 21), against the emulator: a quiet account's journals
back off to their ceilings, its purchase still becomes an order within the order ceiling, its
offer journal is never left unread longer than the offer ceiling, and what changes through us
(a batch command, the manual "fetch now") polls at once. The ceilings are seconds here, not the
production 75 s / 15 min (tests/unit/test_poll_schedule.py holds those to the retention)."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest

from allegro_sync.daemon.app import Daemon
from allegro_sync.daemon.pollers import PollerSettings, PollerSupervisor
from tests.e2e.conftest import Admin, Emulator, daemon_settings
from tests.e2e.flows import Erp, _buy, _shop, bound_offers, commands, erp, stock_changed
from tests.helpers import eventually

BUSY = 0.1


@pytest.fixture
def ceiling() -> float:
    """Both journals' ceiling, in seconds (a test may parametrize it)."""
    return 3.0


@pytest.fixture
async def daemon(
    database_url: str,
    amqp_url: str,
    emulator: Emulator,
    sandbox_emulator: Emulator,
    ceiling: float,
) -> AsyncIterator[Daemon]:
    timing = PollerSettings(
        busy_interval=BUSY,
        ceilings={"order": ceiling, "offer": ceiling},
        quiet_divisor=1.0,  # quiet for t seconds: the next poll in t seconds (up to the ceiling)
        idle_budget_per_minute=9000,
        supervise_interval=0.3,
        lock_check_interval=0.2,
    )
    running = Daemon(
        daemon_settings(database_url, amqp_url, emulator.url, sandbox_emulator.url),
        poller_timing=timing,
    )
    await running.start()
    yield running
    await running.stop()


def scheduler(daemon: Daemon) -> PollerSupervisor:
    return next(s for s in daemon.services if isinstance(s, PollerSupervisor))


async def quiet(daemon: Daemon, account_id: int, journal: str, ceiling: float) -> None:
    """Until the journal is polled at its ceiling."""
    polls = scheduler(daemon)

    async def at_ceiling() -> bool:
        return polls.interval_of(account_id, journal) == ceiling

    await eventually(at_ceiling, timeout=4 * ceiling + 10, interval=0.05)


async def journal_reads(emulator: Emulator) -> dict[str, int]:
    counts = (await emulator.control("GET", "/requests"))["by_path"]
    return {
        "order": int(counts.get("GET /order/events", 0)),
        "offer": int(counts.get("GET /sale/offer-events", 0)),
    }


async def test_a_quiet_accounts_purchase_becomes_an_order_within_the_ceiling(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, daemon: Daemon, ceiling: float
) -> None:
    buyer = Erp(daemon.settings.amqp_url)
    _, account, offers = await _shop(admin, emulator, db, auto_create_orders=True)
    for n, phase in enumerate((0.3, 0.6)):  # bought at different points of the interval
        await quiet(daemon, account["id"], "order", ceiling)
        await asyncio.sleep(phase * ceiling)
        bought = time.monotonic()
        form_id = await _buy(emulator, offers[0])
        created = await buyer.wait_for("order.created", count=n + 1, timeout=ceiling + 10)
        took = time.monotonic() - bought
        assert created[-1]["checkout_form_id"] == form_id
        assert took <= ceiling + 1.5, f"order {n} took {took:.1f}s, ceiling {ceiling}s"


async def test_a_quiet_offer_journal_is_never_left_unread_past_its_ceiling(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, daemon: Daemon, ceiling: float
) -> None:
    _, account, _ = await _shop(admin, emulator, db)
    await quiet(daemon, account["id"], "offer", ceiling)
    polls = scheduler(daemon)
    polls.poll_log = []
    before = await journal_reads(emulator)
    await asyncio.sleep(4 * ceiling)
    after = await journal_reads(emulator)
    starts = [start for a, j, start, _ in polls.poll_log if (a, j) == (account["id"], "offer")]
    polls.poll_log = None
    gaps = [b - a for a, b in itertools.pairwise(starts)]
    assert len(starts) >= 3 and max(gaps) <= ceiling + 0.5, gaps
    # Allegro's side of it: read about once a ceiling, never less
    assert after["offer"] - before["offer"] >= 3
    age = daemon.metrics.registry.get_sample_value(
        "allegro_sync_poll_age_max_seconds", {"journal": "offer"}
    )
    assert age is not None and age <= ceiling + 1.5


async def test_idle_requests_drop_once_the_account_is_quiet(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, daemon: Daemon, ceiling: float
) -> None:
    _, account, _ = await _shop(admin, emulator, db)
    await quiet(daemon, account["id"], "order", ceiling)
    await quiet(daemon, account["id"], "offer", ceiling)
    # quiet: at most one read per journal and ceiling (counted by Allegro) over three ceilings
    before, since = await journal_reads(emulator), time.monotonic()
    await asyncio.sleep(3 * ceiling)
    after, window = await journal_reads(emulator), time.monotonic() - since
    idle_reads = sum(after.values()) - sum(before.values())
    assert idle_reads <= 2 * (window / ceiling + 1), (idle_reads, window)
    assert idle_reads >= 2 * (window / ceiling - 1)  # and read all the same
    # a wake (the manual "fetch now" counts as activity): polled at the busy interval again
    status, _ = await admin.call("POST", f"/accounts/{account['id']}/orders/fetch")
    assert status == 202
    before = await journal_reads(emulator)
    await asyncio.sleep(1.0)
    after = await journal_reads(emulator)
    busy_reads = after["order"] - before["order"]
    assert busy_reads >= 4, busy_reads  # 0.1 s, then a few slower polls within the second
    assert busy_reads >= 3 * 2 / ceiling  # a second busy: three times a quiet second and more


@pytest.mark.parametrize("ceiling", [20.0])
async def test_a_command_sent_through_us_polls_the_offer_journal_at_once(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, daemon: Daemon
) -> None:
    seller, account_id, _ = await bound_offers(
        daemon, admin, emulator, db, "wake-shop", {"Kubek": "SKU-W"}, stock_control=True
    )
    polls = scheduler(daemon)

    async def far() -> bool:
        due = polls.next_poll_in(account_id, "offer")
        return due is not None and due >= 4.0

    await eventually(far, timeout=30, interval=0.05)
    polls.poll_log = []
    sent = time.monotonic()
    await erp(daemon, db, stock_changed("SKU-W", 3, 1))

    async def polled() -> float | None:
        starts = [
            s for a, j, s, _ in polls.poll_log or [] if (a, j) == (account_id, "offer") and s > sent
        ]
        return min(starts) if starts else None

    first = await eventually(polled, timeout=10)
    polls.poll_log = None
    assert first - sent < 3.0, "the offer journal waited for its interval"
    assert [c["kind"] for c in await commands(emulator, seller)] == ["quantity"]


@pytest.mark.parametrize("ceiling", [20.0])
async def test_fetch_now_reads_a_quiet_accounts_order_at_once(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, daemon: Daemon
) -> None:
    buyer = Erp(daemon.settings.amqp_url)
    _, account, offers = await _shop(admin, emulator, db, auto_create_orders=True)
    polls = scheduler(daemon)

    async def far() -> bool:
        due = polls.next_poll_in(account["id"], "order")
        return due is not None and due >= 5.0

    await eventually(far, timeout=30, interval=0.05)
    bought = time.monotonic()
    form_id = await _buy(emulator, offers[0])
    status, _ = await admin.call("POST", f"/accounts/{account['id']}/orders/fetch")
    assert status == 202
    [created] = await buyer.wait_for("order.created", timeout=10)
    assert created["checkout_form_id"] == form_id
    assert time.monotonic() - bought < 3.0


@pytest.mark.parametrize("ceiling", [4.0])
async def test_purchases_keep_the_order_journal_busy_and_leave_the_offer_journal_quiet(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, daemon: Daemon, ceiling: float
) -> None:
    """An account that only sells: every purchase echoes on the offer journal as a stock change,
    which is not activity there (the order journal has the purchase). The order journal is read
    at its busy interval, the offer journal on its quiet curve, and the echoes still reach the
    mirror within the offer ceiling."""
    buyer = Erp(daemon.settings.amqp_url)
    _, account, offers = await _shop(admin, emulator, db, auto_create_orders=True)
    await quiet(daemon, account["id"], "offer", ceiling)
    polls = scheduler(daemon)
    polls.poll_log = []
    since = time.monotonic()
    for _ in range(12):
        await _buy(emulator, offers[0])  # 2 pieces each
        await asyncio.sleep(0.5)
    window = time.monotonic() - since
    log, polls.poll_log = polls.poll_log, None
    starts = {
        journal: [s for a, j, s, _ in log if a == account["id"] and j == journal and s >= since]
        for journal in ("order", "offer")
    }
    created = await buyer.wait_for("order.created", count=12, timeout=30)
    assert len(created) == 12
    assert len(starts["order"]) >= 15, starts  # busy: 0.1 s while purchases come
    # before, every poll that found an echo kept it at its busy interval (0.3 s): 20 reads
    assert len(starts["offer"]) <= window / ceiling + 2, starts["offer"]

    async def mirrored() -> bool:
        stock = await db.fetchval("SELECT stock FROM offers WHERE id = $1", offers[0])
        return bool(stock == 50 - 2 * 12)

    await eventually(mirrored, timeout=ceiling + 10)
