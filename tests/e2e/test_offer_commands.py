"""Offer commands under failure (issue 7): a crash between persisting and sending a command, and
Allegro answering 429. Nothing is lost, and a command id reaches Allegro once."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from allegro_sync.adapters.broker.topology import ERP_EXCHANGE
from allegro_sync.daemon.app import Daemon
from allegro_sync.daemon.pollers import WAKE_CHANNEL
from tests.e2e.conftest import Admin, Emulator, authorize_in_browser
from tests.e2e.flows import (
    bound_offers,
    commands,
    emulator_offer,
    erp,
    settled,
    stock_changed,
)
from tests.helpers import (
    ADMIN_TOKEN,
    DaemonProcess,
    daemon_env,
    eventually,
    free_port,
    publish_json,
)


@pytest.fixture
async def processes() -> AsyncIterator[list[DaemonProcess]]:
    started: list[DaemonProcess] = []
    yield started
    for process in started:
        process.kill()


def _env(database_url: str, amqp_url: str, emulator: Emulator, **extra: str) -> dict[str, str]:
    return daemon_env(
        database_url,
        amqp_url,
        free_port(),
        ALLEGRO_SYNC_ALLEGRO_API_URL=emulator.url,
        ALLEGRO_SYNC_ALLEGRO_AUTH_URL=emulator.url,
        ALLEGRO_SYNC_CLIENT_ID="demo-client",
        ALLEGRO_SYNC_CLIENT_SECRET="demo-secret",
        **extra,
    )


async def _admin(
    session: aiohttp.ClientSession, daemon: DaemonProcess, method: str, path: str, body: Any = None
) -> Any:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Accept": "application/json"}
    async with session.request(method, daemon.base_url + path, json=body, headers=headers) as r:
        data = await r.json()
        assert r.status == 200, data
        return data


async def test_a_crash_between_persisting_and_sending_sends_the_command_once(
    processes: list[DaemonProcess],
    database_url: str,
    amqp_url: str,
    emulator: Emulator,
    db: asyncpg.Pool,
    tmp_path: Path,
) -> None:
    seller = await emulator.seller("sklep-awaria")
    created = await emulator.control(
        "POST", f"/sellers/{seller['id']}/offers", {"name": "Kubek", "stock": 10}
    )
    offer_id = str(created["id"])
    first = DaemonProcess(
        _env(database_url, amqp_url, emulator, ALLEGRO_SYNC_OFFER_BATCHER_HALT_AFTER_PERSIST="1"),
        tmp_path / "first.log",
    )
    processes.append(first)
    await first.start()
    product = json.dumps({"product_id": "P1", "ean": None, "name": "Kubek"}).encode()
    await publish_json(amqp_url, ERP_EXCHANGE, [("product.upserted", "product:P1", product)])
    async with aiohttp.ClientSession() as session:
        connect = await _admin(session, first, "POST", "/accounts/connect", {"sandbox": False})
        callback = await authorize_in_browser(session, connect["authorize_url"], seller["id"])
        async with session.get(callback, headers={"Accept": "application/json"}) as r:
            account_id = int((await r.json())["account"]["id"])
        await _admin(session, first, "PATCH", f"/accounts/{account_id}", {"stock_control": True})

        async def mirrored() -> bool:
            await db.execute("SELECT pg_notify($1, $2)", WAKE_CHANNEL, f"{account_id}:offer")
            found = await db.fetchval("SELECT count(*) FROM offers WHERE id = $1", offer_id)
            products = await db.fetchval("SELECT count(*) FROM products")
            return bool(found and products)

        await eventually(mirrored, timeout=30, interval=0.3)
        await _admin(session, first, "PATCH", f"/offers/{offer_id}", {"product_id": "P1"})
    stock = json.dumps({"product_id": "P1", "quantity": 4, "version": 1}).encode()
    await publish_json(amqp_url, ERP_EXCHANGE, [("stock.changed", "stock:P1:1", stock)])

    command_id = await eventually(
        lambda: db.fetchval("SELECT id FROM offer_commands WHERE state = 'pending'"), timeout=20
    )
    await eventually(lambda: _halted(first))
    first.kill()  # SIGKILL: persisted, never sent
    assert await commands(emulator, seller) == []

    second = DaemonProcess(_env(database_url, amqp_url, emulator), tmp_path / "second.log")
    processes.append(second)
    await second.start()
    await eventually(
        lambda: db.fetchval("SELECT state = 'done' FROM offer_commands WHERE id = $1", command_id),
        timeout=20,
    )
    received = await commands(emulator, seller)
    assert [c["id"] for c in received] == [str(command_id)]
    assert received[0]["body"]["modification"]["value"] == 4
    assert (await emulator_offer(emulator, offer_id))["stock"] == 4
    assert await db.fetchval("SELECT count(*) FROM offer_commands") == 1
    assert second.terminate() == 0


async def _halted(process: DaemonProcess) -> bool:
    return "offer_batcher_halted_after_persist" in process.log()


async def test_429_backs_off_and_loses_nothing(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    seller, _, ids = await bound_offers(
        daemon, admin, emulator, db, "sklep-limit", {"a": "P1", "b": "P2"}, stock_control=True
    )
    await emulator.control(
        "POST",
        "/faults",
        {"status_429_seconds": 2, "paths": ["/sale/offer-quantity-change-commands"]},
    )
    await erp(daemon, db, stock_changed("P1", 3, 1), stock_changed("P2", 2, 1))
    await settled(daemon, db)
    received = await commands(emulator, seller)
    assert sorted(c["body"]["modification"]["value"] for c in received) == [2, 3]
    assert (await emulator_offer(emulator, ids["a"]))["stock"] == 3
    assert (await emulator_offer(emulator, ids["b"]))["stock"] == 2
    counts = await emulator.control("GET", "/requests")
    puts = sum(v for k, v in counts["by_path"].items() if k.startswith("PUT /sale/"))
    assert puts > len(received)  # some were refused with 429 and sent again
