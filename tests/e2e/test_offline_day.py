"""The offer journal against its 24-hour retention, on the emulator's clock (issues 18 and 21):
a journal still at its start (no event read since the account was connected) sees a day
offline as a gap, as one with a cursor does, and sweeps the listing; a shorter absence is read
from the journal; and a running daemon, with the production ceilings and its scheduler's clock
moved with Allegro's, reads the journal through more than a day without ever leaving it unread
past its retention (no gap, every offer from its event)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import aiohttp
import asyncpg
import pytest

from allegro_sync.daemon.app import Daemon
from allegro_sync.daemon.pollers import PollerSettings
from tests.e2e.conftest import FAST_POLLING, Admin, Emulator, daemon_settings
from tests.e2e.flows import new_offer, offer
from tests.helpers import eventually

HOUR = 3600.0


async def gap_warnings(db: asyncpg.Pool, account_id: int) -> int:
    count: int = await db.fetchval(
        "SELECT count(*) FROM event_log WHERE account_id = $1 AND code = 'offer_journal_gap'",
        account_id,
    )
    return count


async def offer_cursor(db: asyncpg.Pool, account_id: int) -> asyncpg.Record:
    row: asyncpg.Record = await db.fetchrow(
        "SELECT last_event_id, read_at FROM journal_cursors"
        " WHERE account_id = $1 AND journal = 'offer'",
        account_id,
    )
    return row


async def emulator_now(emulator: Emulator) -> datetime:
    now = (await emulator.control("GET", "/clock"))["now"]
    return datetime.fromisoformat(now.replace("Z", "+00:00"))


async def offer_journal_reads(emulator: Emulator) -> int:
    counts = (await emulator.control("GET", "/requests"))["by_path"]
    return int(counts.get("GET /sale/offer-events", 0))


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as opened:
        yield opened


@pytest.mark.parametrize(
    ("offline_hours", "read_first", "gap"),
    [
        (25, True, True),  # read at its start, then a day and more away: a gap
        (25, False, True),  # stopped at once after connecting: the connection's time counts
        (23, True, False),  # away for less than the journal keeps: read from the journal
    ],
)
async def test_a_journal_still_at_its_start_sees_a_day_offline_as_a_gap(
    database_url: str,
    amqp_url: str,
    emulator: Emulator,
    db: asyncpg.Pool,
    session: aiohttp.ClientSession,
    offline_hours: int,
    read_first: bool,
    gap: bool,
) -> None:
    settings = daemon_settings(database_url, amqp_url, emulator.url)
    first = Daemon(settings, poller_timing=FAST_POLLING)
    await first.start()
    admin = Admin(first, session)
    try:
        seller = await emulator.seller("sklep-offline")
        account_id = int((await admin.connect(emulator, seller))["id"])
        if read_first:  # read a few times: the journal has no event, so the cursor stays

            async def read_twice() -> bool:
                return await offer_journal_reads(emulator) >= 2

            await eventually(read_twice)
    finally:
        await first.stop()
    assert (await offer_cursor(db, account_id))["last_event_id"] is None

    # listed while the daemon is away; after a day and more its event is out of the journal
    missed = await new_offer(emulator, seller, name="Przegapiona", stock=4)
    await emulator.control("POST", "/clock", {"advance_seconds": offline_hours * HOUR})
    later = await new_offer(emulator, seller, name="Późniejsza")

    second = Daemon(settings, poller_timing=FAST_POLLING)
    await second.start()
    try:
        seen = await offer(admin, db, account_id, missed, name="Przegapiona", stock=4)
        assert seen["status"] == "ACTIVE"
        await offer(admin, db, account_id, later, name="Późniejsza")

        async def warned() -> int:
            return await gap_warnings(db, account_id)

        if gap:
            assert await eventually(warned) == 1
            [entry] = await db.fetch(
                "SELECT level, message, details FROM event_log"
                " WHERE account_id = $1 AND code = 'offer_journal_gap'",
                account_id,
            )
            assert entry["level"] == "warning" and "24 hours" in entry["message"]
        # and from then on the journal goes on from its events, with no other warning
        after = await new_offer(emulator, seller, name="Jeszcze późniejsza")
        await offer(admin, db, account_id, after, name="Jeszcze późniejsza")
        assert await gap_warnings(db, account_id) == (1 if gap else 0)
        cursor = await offer_cursor(db, account_id)
        assert cursor["last_event_id"] is not None  # past its start now
        assert abs((cursor["read_at"] - await emulator_now(emulator)).total_seconds()) < 60
    finally:
        await second.stop()


class MovedClock:
    """The scheduler's monotonic clock, moved forward with the emulator's."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset


async def test_the_offer_journal_is_never_left_unread_past_its_retention(
    database_url: str,
    amqp_url: str,
    emulator: Emulator,
    db: asyncpg.Pool,
    session: aiohttp.ClientSession,
) -> None:
    """Production ceilings and idle budget (the offer journal at most 15 minutes unread), 28
    hours on both clocks in steps of 3.5 hours: after every step the journal is read again at
    once, its last read never lags Allegro's clock by more than a step (far inside the 24 hours),
    every offer comes from its event, and no gap is ever seen."""
    clock = MovedClock()
    timing = PollerSettings(supervise_interval=0.3, lock_check_interval=0.2)
    assert timing.ceiling("offer") == 900.0 and timing.idle_budget_per_minute == 1800.0
    daemon = Daemon(
        daemon_settings(database_url, amqp_url, emulator.url),
        poller_timing=timing,
        poller_clock=clock,
    )
    await daemon.start()
    admin = Admin(daemon, session)
    try:
        seller = await emulator.seller("sklep-doba")
        account_id = int((await admin.connect(emulator, seller))["id"])
        step = 3.5 * HOUR
        lags: list[float] = []
        for n in range(8):
            # listed, then 3.5 hours pass: its event is read after the step, from the journal
            listed = await new_offer(emulator, seller, name=f"Oferta {n}")
            clock.offset += step
            moved = await emulator.control("POST", "/clock", {"advance_seconds": step})
            # to the second: Allegro's Date (the read time stored) has no fractions
            jumped = datetime.fromisoformat(moved["now"].replace("Z", "+00:00"))
            jumped = jumped.replace(microsecond=0)

            async def read_since_the_step(jumped: datetime = jumped) -> Any:
                row = await offer_cursor(db, account_id)
                return row if row["read_at"] >= jumped else None

            row = await eventually(read_since_the_step, timeout=20)
            lags.append((row["read_at"] - jumped).total_seconds())
            # nothing nudges the journal here but the scheduler (no wake, no sweep)
            await eventually(lambda listed=listed: _listed(admin, listed), timeout=20)
        assert await gap_warnings(db, account_id) == 0
        assert max(lags) < timing.ceiling("offer"), lags
    finally:
        await daemon.stop()


async def _listed(admin: Admin, offer_id: str) -> bool:
    status, page = await admin.call("GET", f"/offers?text={offer_id}")
    return status == 200 and any(o["id"] == offer_id for o in page["items"])
