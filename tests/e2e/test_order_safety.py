"""No purchase lost (issue 13, items 1 and 2), end to end: the order journal starts where it
stood when the account was connected; a sweep under the journal turns a form whose event
Allegro never wrote into an order, once; an account switched off and on again takes the
purchases made meanwhile."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import asyncpg
import pytest

from allegro_sync.adapters.broker.topology import JOURNAL_EXCHANGE
from allegro_sync.contract import ORDER_BACKFILL
from allegro_sync.daemon.app import Daemon
from allegro_sync.handlers.order_sweep import sweep_message
from tests.e2e.conftest import FAST_POLLING, Admin, Emulator, daemon_settings
from tests.e2e.flows import Erp, _buy, _handled, _shop, switch
from tests.helpers import eventually, publish_json

# Fast sweeps; the lag leaves the journal its time to deliver first, so that what the sweep
# counts is only what the journal did not deliver.
SWEEP = {"order_sweep_interval": 0.5, "order_sweep_lag": 2.0}


@pytest.fixture
async def daemon(
    database_url: str, amqp_url: str, emulator: Emulator, sandbox_emulator: Emulator
) -> AsyncIterator[Daemon]:
    running = Daemon(
        daemon_settings(database_url, amqp_url, emulator.url, sandbox_emulator.url, **SWEEP),
        poller_timing=FAST_POLLING,
    )
    await running.start()
    yield running
    await running.stop()


@pytest.fixture
async def erp(amqp_url: str, daemon: Daemon) -> Erp:
    return Erp(amqp_url)


async def metrics(admin: Admin) -> dict[str, float]:
    """The daemon's ``GET /metrics``, sample name (with labels) -> value."""
    async with aiohttp.ClientSession() as session, session.get(admin.url + "/metrics") as r:
        text = await r.text()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


async def order_log(admin: Admin, account_id: int) -> list[dict[str, Any]]:
    status, page = await admin.call("GET", f"/accounts/{account_id}/event-log?category=orders")
    assert status == 200, page
    items: list[dict[str, Any]] = page["items"]
    return items


async def test_a_purchase_right_after_connecting_becomes_exactly_one_order(
    admin: Admin, emulator: Emulator, erp: Erp
) -> None:
    seller = await emulator.seller("quick")
    offer = await emulator.control(
        "POST", f"/sellers/{seller['id']}/offers", {"name": "Kubek", "stock": 10}
    )
    started = time.monotonic()
    account = await admin.connect(emulator, seller)
    await switch(admin, account["id"], auto_create_orders=True)
    form_id = await _buy(emulator, str(offer["id"]))
    assert time.monotonic() - started < 1.0  # before the poller's first read
    await erp.wait_for("order.created")
    await erp.settle(3.0)  # sweeps come and go
    assert [o["checkout_form_id"] for o in erp.of("order.created")] == [form_id]
    # the journal delivered it, from the start stored at the connection: nothing for the sweep
    assert (await metrics(admin))["allegro_sync_order_sweep_found_total"] == 0
    assert "order_sweep_found" not in [e["code"] for e in await order_log(admin, account["id"])]


async def test_a_ready_event_allegro_never_wrote_becomes_an_order_through_the_sweep_once(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, erp: Erp
) -> None:
    _, account, offers = await _shop(admin, emulator, db, auto_create_orders=True)
    form_id = await _buy(emulator, offers[0], then="fill-in")
    await _handled(db, form_id, "FILLED_IN")  # the journal told of the purchase
    lost = {"type": "READY_FOR_PROCESSING", "count": 1}
    await emulator.control("POST", "/order-events/lose", lost)
    await emulator.control("POST", f"/checkout-forms/{form_id}/pay")
    [order] = await erp.wait_for("order.created", timeout=30)
    assert order["checkout_form_id"] == form_id and order["status"] == "READY_FOR_PROCESSING"
    # the event was never written: the emulator has none left to lose
    assert (await emulator.control("POST", "/order-events/lose", {**lost, "count": 0})) == {
        "pending": {}
    }
    await erp.settle(3.0)  # more sweeps: the form is stored as it is now, nothing found again
    assert len(erp.of("order.created")) == 1

    samples = await metrics(admin)
    assert samples["allegro_sync_order_sweep_found_total"] == 1
    sweeps = samples["allegro_sync_order_sweep_requests_count"]
    assert sweeps >= 2 and samples["allegro_sync_order_sweep_requests_sum"] == sweeps
    [entry] = [e for e in await order_log(admin, account["id"]) if e["code"] == "order_sweep_found"]
    assert entry["level"] == "warning"
    assert form_id in entry["message"] and "1 checkout form " in entry["message"]
    assert entry["details"]["checkout_form_ids"] == [form_id]
    assert entry["details"]["requests"] == 1


async def test_the_same_form_from_the_sweep_twice_and_from_the_journal_is_one_order(
    admin: Admin, emulator: Emulator, daemon: Daemon, db: asyncpg.Pool, erp: Erp
) -> None:
    _, account, offers = await _shop(admin, emulator, db, auto_create_orders=True)
    form_id = await _buy(emulator, offers[0], then="fill-in")
    await _handled(db, form_id, "FILLED_IN")
    await emulator.control("POST", "/order-events/lose", {"type": "READY_FOR_PROCESSING"})
    await emulator.control("POST", f"/checkout-forms/{form_id}/pay")
    assert daemon.allegro is not None
    form = await daemon.allegro.get(
        account["id"], f"/order/checkout-forms/{form_id}", action="read checkout form"
    )
    # the sweep's message, delivered twice (a redelivery) and once more under another id (a
    # second sweep), all before the sweep itself finds the form: one order
    message = sweep_message(account["id"], form, datetime.now(UTC))
    body = json.dumps(message.payload).encode()
    await publish_json(
        daemon.settings.amqp_url,
        JOURNAL_EXCHANGE,
        [
            (ORDER_BACKFILL, message.message_id, body),
            (ORDER_BACKFILL, message.message_id, body),
            (ORDER_BACKFILL, message.message_id + ":again", body),
        ],
    )
    await erp.wait_for("order.created")
    # a form the journal delivered, found by a sweep too (its message as a sweep sends it)
    second = await _buy(emulator, offers[1])
    await erp.wait_for("order.created", count=2)
    paid = await daemon.allegro.get(
        account["id"], f"/order/checkout-forms/{second}", action="read checkout form"
    )
    also = sweep_message(account["id"], paid, datetime.now(UTC))
    await publish_json(
        daemon.settings.amqp_url,
        JOURNAL_EXCHANGE,
        [(ORDER_BACKFILL, also.message_id, json.dumps(also.payload).encode())],
    )

    async def handled() -> bool:
        return bool(
            await db.fetchval("SELECT count(*) FROM inbox WHERE message_id = $1", also.message_id)
        )

    await eventually(handled)
    await erp.settle(3.0)  # and more sweeps
    assert sorted(o["checkout_form_id"] for o in erp.of("order.created")) == sorted(
        [form_id, second]
    )
    status, listing = await admin.call("GET", f"/orders?account_id={account['id']}")
    assert status == 200
    assert sorted(o["checkout_form_id"] for o in listing["items"]) == sorted([form_id, second])


async def test_an_account_switched_off_and_on_again_takes_the_purchases_made_meanwhile(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, erp: Erp
) -> None:
    seller, account, offers = await _shop(admin, emulator, db, auto_create_orders=True)
    account_id = account["id"]
    await switch(admin, account_id, active=False)
    while_off = await _buy(emulator, offers[0])
    await erp.settle(3.5)  # longer than the sweep's lag and interval
    assert erp.of("order.created") == []  # orders are fetched only for active accounts (A3)
    status, listing = await admin.call("GET", f"/orders?account_id={account_id}")
    assert status == 200 and listing["items"] == []

    await switch(admin, account_id, active=True)
    [order] = await erp.wait_for("order.created")
    assert order["checkout_form_id"] == while_off

    # switched off again, then connected again (as after tokens that died): the same rule
    await switch(admin, account_id, active=False)
    second = await _buy(emulator, offers[1])
    again = await admin.connect(emulator, seller)
    assert again["id"] == account_id and again["active"] is True
    await erp.wait_for("order.created", count=2)
    await erp.settle(3.0)
    assert [o["checkout_form_id"] for o in erp.of("order.created")] == [while_off, second]


async def test_the_sweep_listing_pages_by_updated_at_and_skips_nothing(
    admin: Admin, emulator: Emulator, daemon: Daemon
) -> None:
    """250 forms, many changed in the same millisecond, one of them paid (moved out of the
    window) while the pages are read: every form of the window is listed, 100 per request."""
    from allegro_sync.adapters.allegro.checkout_forms import forms_updated_between

    seller = await emulator.seller("many")
    offer = await emulator.control(
        "POST", f"/sellers/{seller['id']}/offers", {"name": "Kubek", "stock": 1000}
    )
    account = await admin.connect(emulator, seller)  # orders not created automatically
    since = datetime.now(UTC)
    bought = await emulator.control("POST", "/purchases", {"offer_id": offer["id"], "count": 250})
    until = datetime.now(UTC)
    assert daemon.allegro is not None
    listed: list[str] = []
    sizes = []
    async for page in forms_updated_between(daemon.allegro, account["id"], since, until):
        sizes.append(len(page.forms))
        listed.extend(str(f["id"]) for f in page.forms)
        if len(sizes) == 1:  # a buyer pays the first form: it leaves the window
            await emulator.control("POST", f"/checkout-forms/{listed[0]}/pay")
    assert set(listed) == set(bought["checkout_form_ids"])
    assert sizes[:2] == [100, 100] and len(sizes) <= 4  # ties at a page's end cost a re-read


@pytest.mark.slow
async def test_the_device_flow_stores_the_journal_start_too(
    admin: Admin, emulator: Emulator, daemon: Daemon, erp: Erp
) -> None:
    from tests.e2e.test_accounts import _device_connect

    seller = await emulator.seller("headless-quick")
    offer = await emulator.control(
        "POST", f"/sellers/{seller['id']}/offers", {"name": "Kubek", "stock": 10}
    )
    code, _, err = await _device_connect(daemon, emulator, seller, approve=True)
    assert code == 0, err
    _, listing = await admin.call("GET", "/accounts")
    [account] = listing["items"]
    await switch(admin, account["id"], auto_create_orders=True)
    form_id = await _buy(emulator, str(offer["id"]))
    await erp.wait_for("order.created")
    await erp.settle(3.0)
    assert [o["checkout_form_id"] for o in erp.of("order.created")] == [form_id]
    assert (await metrics(admin))["allegro_sync_order_sweep_found_total"] == 0
