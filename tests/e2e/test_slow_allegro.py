"""Against an Allegro that takes its time (issue 20): what can overlap does. The emulator's
latency profile makes every batch command take 2.5 s; a second flush's command goes out while
the first one's PUT is still on its way, and stock still arrives."""

from __future__ import annotations

import asyncio

import asyncpg

from allegro_sync.daemon.app import Daemon
from tests.e2e.conftest import Admin, Emulator
from tests.e2e.flows import bound_offers, emulator_offer, settled, stock_changed
from tests.e2e.flows import erp as erp_sends
from tests.helpers import eventually

SLOW_PUT = {"commands": {"median_ms": 2500, "p99_ms": 2500}}


async def test_a_second_flush_is_sent_while_the_first_is_still_on_its_way(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    _, _, ids = await bound_offers(
        daemon,
        admin,
        emulator,
        db,
        "sklep-powolny",
        {"Kubek": "P1", "Talerz": "P2"},
        stock_control=True,
    )
    await emulator.control("POST", "/latency", {"groups": SLOW_PUT})
    await erp_sends(daemon, db, stock_changed("P1", 3, 1))
    # the first command is persisted and its PUT is on its way (2.5 s) ...
    await eventually(
        lambda: db.fetchval("SELECT count(*) = 1 FROM offer_commands WHERE state = 'pending'"),
        timeout=10,
        interval=0.05,
    )
    await asyncio.sleep(0.3)
    assert await db.fetchval("SELECT count(*) FROM offer_commands WHERE state = 'pending'") == 1
    # ... when the second change comes: its flush does not wait for the first PUT's answer
    await erp_sends(daemon, db, stock_changed("P2", 4, 1))
    await settled(daemon, db)
    first, second = await db.fetch(
        "SELECT created_at, sent_at FROM offer_commands ORDER BY created_at"
    )
    assert second["created_at"] < first["sent_at"]  # flushed while the first was in flight
    # both PUTs take 2.5 s; sent one after the other, the second would end >= 2.5 s later
    assert (second["sent_at"] - first["sent_at"]).total_seconds() < 2.2
    assert (await emulator_offer(emulator, ids["Kubek"]))["stock"] == 3
    assert (await emulator_offer(emulator, ids["Talerz"]))["stock"] == 4
    delays = (await emulator.control("GET", "/latency"))["recent_ms"]
    assert delays["commands"] == [2500.0, 2500.0]
