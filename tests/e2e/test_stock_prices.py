"""Stock and prices end to end (design.md S1, S2, S5, P1, P2; issue 7): ERP messages in, Allegro
batch commands out, checked on what the emulator received and on its offers."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import asyncpg

from allegro_sync.adapters.broker.topology import ERP_EXCHANGE
from allegro_sync.daemon.app import Daemon
from tests.e2e.conftest import FAST_POLLING, Admin, Emulator, daemon_settings
from tests.e2e.flows import (
    bound_offers,
    commands,
    emulator_offer,
    erp,
    new_offer,
    offer,
    price_changed,
    products,
    settled,
    stock_changed,
    stock_set,
    switch,
)
from tests.helpers import eventually, publish_json


async def test_a_decrease_sets_the_quantity_of_every_bound_offer(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    seller, _, ids = await bound_offers(
        daemon,
        admin,
        emulator,
        db,
        "sklep-stany",
        {"a": "P1", "b": "P1", "c": "P2"},
        stock_control=True,
    )
    await erp(daemon, db, stock_changed("P1", 4, 1))
    await settled(daemon, db)
    [command] = await commands(emulator, seller)
    assert command["kind"] == "quantity"
    assert command["body"]["modification"] == {"changeType": "FIXED", "value": 4}
    assert sorted(command["offers"]) == sorted([ids["a"], ids["b"]])
    assert (await emulator_offer(emulator, ids["a"]))["stock"] == 4
    assert (await emulator_offer(emulator, ids["c"]))["stock"] == 10


async def test_an_increase_needs_raise_quantity(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    seller, account_id, ids = await bound_offers(
        daemon, admin, emulator, db, "sklep-wzrost", {"a": "P1"}, stock_control=True
    )
    await erp(daemon, db, stock_changed("P1", 25, 1))
    await settled(daemon, db)
    assert await commands(emulator, seller) == []
    assert (await emulator_offer(emulator, ids["a"]))["stock"] == 10

    await switch(admin, account_id, raise_quantity_on_erp_sync=True)
    await stock_set(daemon, db, emulator, seller, ids["a"], stock_changed("P1", 30, 2))


async def test_stock_zero_ends_the_offer_instead_of_a_quantity_below_one(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    seller, _, ids = await bound_offers(
        daemon, admin, emulator, db, "sklep-zero", {"a": "P1"}, stock_control=True
    )
    await erp(daemon, db, stock_changed("P1", 0, 1))
    await settled(daemon, db)
    [command] = await commands(emulator, seller)
    assert command["kind"] == "publication"
    assert command["body"]["publication"] == {"action": "END"}
    assert (await emulator_offer(emulator, ids["a"]))["status"] == "ENDED"


async def test_sandbox_and_stock_control_off_change_nothing(
    daemon: Daemon,
    admin: Admin,
    emulator: Emulator,
    sandbox_emulator: Emulator,
    db: asyncpg.Pool,
) -> None:
    seller, account_id, ids = await bound_offers(
        daemon, admin, emulator, db, "sklep-bez-kontroli", {"a": "P1"}
    )
    sandbox_seller = await sandbox_emulator.seller("sklep-testowy")
    sandbox_account = await admin.connect(sandbox_emulator, sandbox_seller, sandbox=True)
    assert sandbox_account["warnings"]
    sandbox_id = int(sandbox_account["id"])
    await switch(admin, sandbox_id, stock_control=True, raise_quantity_on_erp_sync=True)
    sandbox_offer = await new_offer(sandbox_emulator, sandbox_seller, name="s", stock=10)
    await offer(admin, db, sandbox_id, sandbox_offer, name="s")
    status, body = await admin.call("PATCH", f"/offers/{sandbox_offer}", {"product_id": "P1"})
    assert status == 200, body

    await erp(daemon, db, stock_changed("P1", 3, 1))
    await settled(daemon, db)
    assert await commands(emulator, seller) == []
    assert (await sandbox_emulator.control("GET", "/commands"))["commands"] == []
    assert (await emulator_offer(sandbox_emulator, sandbox_offer))["stock"] == 10
    assert (await emulator_offer(emulator, ids["a"]))["stock"] == 10
    del account_id


async def test_older_versions_are_ignored_and_redelivery_is_one_effect(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    seller, _, ids = await bound_offers(
        daemon, admin, emulator, db, "sklep-wersje", {"a": "P1"}, stock_control=True
    )
    await erp(daemon, db, stock_changed("P1", 5, 7))
    await settled(daemon, db)
    # an older version arrives late, and the same message again: nothing changes
    await erp(daemon, db, stock_changed("P1", 2, 6), stock_changed("P1", 5, 7))
    await settled(daemon, db)
    received = await commands(emulator, seller)
    assert [c["body"]["modification"]["value"] for c in received] == [5]
    assert (await emulator_offer(emulator, ids["a"]))["stock"] == 5


async def test_prices_follow_the_account_price_list_and_the_offer_flag(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    seller, account_id, ids = await bound_offers(
        daemon,
        admin,
        emulator,
        db,
        "sklep-ceny",
        {"follows": "P1", "own": "P1"},
        sync_prices=True,
    )
    # bound after the switch-on: both follow (P2); the user switches one off by hand
    status, body = await admin.call("PATCH", f"/offers/{ids['own']}", {"sync_price": False})
    assert status == 200 and body["sync_price"] is False
    await erp(
        daemon,
        db,
        price_changed("P1", "17.50", 1, price_list="hurt"),  # not the account's price list
        price_changed("P1", "24.90", 1),
    )
    await settled(daemon, db)
    [command] = await commands(emulator, seller)
    assert command["kind"] == "price"
    assert command["body"]["modification"]["price"] == {"amount": "24.90", "currency": "PLN"}
    assert command["offers"] == [ids["follows"]]
    assert (await emulator_offer(emulator, ids["follows"]))["price"] == "24.90"
    assert (await emulator_offer(emulator, ids["own"]))["price"] == "19.99"

    # the ERP announces the other price list and the account chooses it: its next change applies
    body = json.dumps({"price_list": "hurt", "name": "Hurt"}).encode()
    await publish_json(
        daemon.settings.amqp_url, ERP_EXCHANGE, [("price_list.upserted", "pl:hurt", body)]
    )
    await eventually(lambda: db.fetchval("SELECT true FROM price_lists WHERE id = 'hurt'"))
    await switch(admin, account_id, price_list="hurt")
    await erp(daemon, db, price_changed("P1", "16.00", 2, price_list="hurt"))
    await settled(daemon, db)
    assert (await emulator_offer(emulator, ids["follows"]))["price"] == "16.00"


async def test_prices_do_nothing_with_the_account_setting_off(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    seller, _, ids = await bound_offers(daemon, admin, emulator, db, "sklep-stale", {"a": "P1"})
    await erp(daemon, db, price_changed("P1", "24.90", 1))
    await settled(daemon, db)
    assert await commands(emulator, seller) == []
    assert (await emulator_offer(emulator, ids["a"]))["price"] == "19.99"


# 10 000 ERP changes: 100 versions for each of 100 products (a stock count that goes back and
# forth between a few values), the last ones say 7
BURST = [
    stock_changed(f"P{p}", 7 if v == 100 else 5 + (v + p) % 3, v)
    for v in range(1, 101)
    for p in range(100)
]


async def _two_offers_per_product(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool, login: str
) -> tuple[dict[str, Any], list[str]]:
    """100 products and a seller with stock control whose 200 offers are bound two per product
    (by hand, in one go)."""
    await products(daemon, db, *((f"P{n}", None) for n in range(100)))
    seller = await emulator.seller(login)
    account_id = int((await admin.connect(emulator, seller))["id"])
    await switch(admin, account_id, stock_control=True, raise_quantity_on_erp_sync=True)
    created = await emulator.control(
        "POST", f"/sellers/{seller['id']}/offers", {"name": "o{n}", "count": 200, "stock": 50}
    )
    offer_ids = [str(i) for i in created["ids"]]
    await offer(admin, db, account_id, offer_ids[-1])
    await eventually(lambda: db.fetchval("SELECT count(*) = 200 FROM offers"))
    await db.execute(
        "UPDATE offers SET product_id = 'P' || ((row_number - 1) % 100)"
        " FROM (SELECT id AS oid, row_number() OVER (ORDER BY id) FROM offers) AS n"
        " WHERE offers.id = n.oid"
    )
    return seller, offer_ids


async def test_a_burst_becomes_a_handful_of_commands(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    seller, offer_ids = await _two_offers_per_product(daemon, admin, emulator, db, "sklep-lawina")
    # A command sets one quantity, so what can share a command is what has the same target
    # within one window (<= 250 ms).
    await erp(daemon, db, *BURST)
    await settled(daemon, db)
    received = await commands(emulator, seller)
    # 10 000 changes of 200 offers: at least 99 % coalesced away (how many remain depends on
    # how many flush windows the burst spans while stock events refresh the mirror)
    assert len(received) <= 100, [len(c["offers"]) for c in received]
    for offer_id in offer_ids:
        assert (await emulator_offer(emulator, offer_id))["stock"] == 7


async def _backlogged_burst(
    database_url: str, amqp_url: str, emulator: Emulator, db: asyncpg.Pool, max_hold: float
) -> tuple[dict[str, Any], list[str]]:
    """10 000 stock changes for the 200 offers of 100 products wait in the queue (an ERP
    re-sending its catalogue while the daemon was down; the last version says 7), then a daemon
    with ``offer_batch_max_hold`` takes them; returns once all is handled and sent."""
    settings = daemon_settings(
        database_url, amqp_url, emulator.url, consumer_batch_size=50, offer_batch_max_hold=max_hold
    )
    first = Daemon(settings, poller_timing=FAST_POLLING)
    await first.start()
    try:
        async with aiohttp.ClientSession() as session:
            admin = Admin(first, session)
            seller, offer_ids = await _two_offers_per_product(
                first, admin, emulator, db, "sklep-zaleglosci"
            )
    finally:
        await first.stop()
    await publish_json(
        amqp_url,
        ERP_EXCHANGE,
        [(key, f"stock:{n}", json.dumps(body).encode()) for n, (key, body) in enumerate(BURST)],
    )
    second = Daemon(settings, poller_timing=FAST_POLLING)
    await second.start()
    try:
        handled = "SELECT count(*) = $1 FROM inbox WHERE message_id LIKE 'stock:%'"
        await eventually(lambda: db.fetchval(handled, len(BURST)), timeout=60)
        await settled(second, db)
    finally:
        await second.stop()
    return seller, offer_ids


async def test_a_backlogged_intake_sends_each_offer_once_with_its_latest_value(
    database_url: str, amqp_url: str, emulator: Emulator, db: asyncpg.Pool
) -> None:
    """While the intake is backlogged the batcher holds the changes that do not fill a command,
    so each offer goes out once, with its latest value: one command for the 200 offers, not one
    per flush window and value."""
    seller, offer_ids = await _backlogged_burst(database_url, amqp_url, emulator, db, 120)
    [command] = await commands(emulator, seller)
    assert command["body"]["modification"] == {"changeType": "FIXED", "value": 7}
    assert sorted(command["offers"]) == sorted(offer_ids)
    for offer_id in offer_ids[:5]:
        assert (await emulator_offer(emulator, offer_id))["stock"] == 7


async def test_changes_are_held_no_longer_than_the_max_hold(
    database_url: str, amqp_url: str, emulator: Emulator, db: asyncpg.Pool
) -> None:
    """With a short max hold, commands go out while the backlog is still being consumed."""
    seller, offer_ids = await _backlogged_burst(database_url, amqp_url, emulator, db, 0.3)
    first_command, last_message = await db.fetchrow(
        "SELECT (SELECT min(created_at) FROM offer_commands),"
        " (SELECT max(processed_at) FROM inbox WHERE message_id LIKE 'stock:%')"
    )
    assert first_command < last_message
    assert len(await commands(emulator, seller)) > 1
    for offer_id in offer_ids[:5]:
        assert (await emulator_offer(emulator, offer_id))["stock"] == 7
