"""Against an Allegro that takes its time (issue 20): what can overlap does. The emulator's
latency profile makes every batch command take 2.5 s; a second flush's command goes out while
the first one's PUT is still on its way, and stock still arrives. What cannot go out yet waits
as changes, not as commands: a flush makes no more commands than the sender has free slots
for, the longest waiting changes first, and the changes of that time share their commands."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import asyncpg
import pytest

from allegro_sync.adapters.allegro.limits import change_key
from allegro_sync.daemon.app import Daemon
from tests.e2e.conftest import FAST_POLLING, Admin, Emulator, daemon_settings
from tests.e2e.flows import bound_offers, emulator_offer, settled, stock_changed
from tests.e2e.flows import erp as erp_sends
from tests.helpers import eventually

SLOW_PUT = {"commands": {"median_ms": 2500, "p99_ms": 2500}}
SLOWER_PUT = {"commands": {"median_ms": 4000, "p99_ms": 4000}}  # room for a loaded machine


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


@pytest.fixture
async def one_slot_daemon(
    database_url: str, amqp_url: str, emulator: Emulator, sandbox_emulator: Emulator
) -> AsyncIterator[Daemon]:
    """A daemon that sends one batch command at a time (``OFFER_COMMANDS_IN_FLIGHT=1``)."""
    running = Daemon(
        daemon_settings(
            database_url,
            amqp_url,
            emulator.url,
            sandbox_emulator.url,
            offer_commands_in_flight=1,
        ),
        poller_timing=FAST_POLLING,
    )
    await running.start()
    yield running
    await running.stop()


async def test_a_flush_makes_no_more_commands_than_the_sender_has_free_slots(
    one_slot_daemon: Daemon, emulator: Emulator, db: asyncpg.Pool
) -> None:
    daemon = one_slot_daemon
    async with aiohttp.ClientSession() as session:
        admin = Admin(daemon, session)
        _, _, ids = await bound_offers(
            daemon,
            admin,
            emulator,
            db,
            "sklep-kolejka",
            {"Kubek": "P1", "Talerz": "P2", "Miska": "P3", "Szklanka": "P4"},
            stock_control=True,
        )
    await emulator.control("POST", "/latency", {"groups": SLOWER_PUT})
    await erp_sends(daemon, db, stock_changed("P1", 3, 1))
    await eventually(
        lambda: db.fetchval("SELECT count(*) = 1 FROM offer_commands WHERE state = 'pending'"),
        timeout=10,
        interval=0.05,
    )
    # the one slot is taken (4 s): changes a window apart wait as changes, not as commands
    await erp_sends(daemon, db, stock_changed("P2", 7, 1))
    await asyncio.sleep(0.6)
    await erp_sends(daemon, db, stock_changed("P3", 4, 1))
    await asyncio.sleep(0.6)
    await erp_sends(daemon, db, stock_changed("P4", 4, 1))
    await asyncio.sleep(0.6)
    assert await db.fetchval("SELECT count(*) FROM offer_commands") == 1
    # ... then one command per free slot, the longest waiting change first (P2's 7, although
    # the 4s come first in the table's order), and P3 and P4 share the next one
    await settled(daemon, db)
    rows = await db.fetch(
        "SELECT offers, created_at, sent_at FROM offer_commands ORDER BY created_at"
    )
    assert [sorted(r["offers"]) for r in rows] == [
        [ids["Kubek"]],
        [ids["Talerz"]],
        sorted([ids["Miska"], ids["Szklanka"]]),
    ]
    assert rows[1]["created_at"] >= rows[0]["sent_at"]
    assert rows[2]["created_at"] >= rows[1]["sent_at"]
    for name, stock in (("Kubek", 3), ("Talerz", 7), ("Miska", 4), ("Szklanka", 4)):
        assert (await emulator_offer(emulator, ids[name]))["stock"] == stock


async def test_a_seller_out_of_budget_holds_up_no_other_seller(
    one_slot_daemon: Daemon, emulator: Emulator, db: asyncpg.Pool
) -> None:
    """The longest waiting changes go first, but not when their seller's budget refuses them:
    with one slot, a seller whose quantity changes are paused for a minute (as after Allegro's
    429 on its commands) must not keep another seller's change waiting for that minute."""
    daemon = one_slot_daemon
    async with aiohttp.ClientSession() as session:
        admin = Admin(daemon, session)
        _, paused_id, paused = await bound_offers(
            daemon, admin, emulator, db, "sklep-bez-budzetu", {"Kubek": "P1"}, stock_control=True
        )
        _, other_id, other = await bound_offers(
            daemon, admin, emulator, db, "sklep-obok", {"Talerz": "P2"}, stock_control=True
        )
    await db.execute(
        "INSERT INTO rate_buckets (key, tokens, blocked_until)"
        " SELECT k, 0, now() + interval '60 seconds' FROM unnest($1::text[]) AS k"
        " ON CONFLICT (key) DO UPDATE SET blocked_until = EXCLUDED.blocked_until",
        [change_key(paused_id, "quantity", window) for window in ("hour", "minute")],
    )
    await erp_sends(daemon, db, stock_changed("P1", 3, 1))
    await asyncio.sleep(1.0)  # refused by its budget: it stays the longest waiting change
    await erp_sends(daemon, db, stock_changed("P2", 4, 1))

    async def other_on_allegro() -> bool:
        return bool((await emulator_offer(emulator, other["Talerz"]))["stock"] == 4)

    await eventually(other_on_allegro, timeout=10, interval=0.1)
    counts = dict(await db.fetch("SELECT account_id, count(*) FROM offer_commands GROUP BY 1"))
    assert counts == {other_id: 1}  # the paused seller's change still waits, as a change
    assert (
        await db.fetchval(
            "SELECT value FROM offer_changes WHERE offer_id = $1 AND command_id IS NULL",
            paused["Kubek"],
        )
        == "3"
    )
