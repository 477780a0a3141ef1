"""Auto-renew end to end (design.md S3, S4, P2; issue 7): ended offers come back under the same id
through batch commands, on the emulator, and every refusal is logged once."""

from __future__ import annotations

from typing import Any

import asyncpg

from allegro_sync.daemon.app import Daemon
from allegro_sync.handlers.offers import sweep_offers
from tests.e2e.conftest import Admin, Emulator
from tests.e2e.flows import (
    commands,
    emulator_offer,
    erp,
    offer,
    price_changed,
    products,
    settled,
    stock_changed,
    switch,
)
from tests.helpers import eventually

RENEWING = {"stock_control": True, "auto_renew": True}


async def account(
    admin: Admin, emulator: Emulator, login: str, **settings: Any
) -> tuple[dict[str, Any], int]:
    seller = await emulator.seller(login)
    account_id = int((await admin.connect(emulator, seller))["id"])
    await switch(admin, account_id, **settings)
    return seller, account_id


async def ended_offer(
    daemon: Daemon,
    emulator: Emulator,
    db: asyncpg.Pool,
    seller: dict[str, Any],
    account_id: int,
    **fields: Any,
) -> str:
    """An offer that ended before the daemon knew it, read in by a listing sweep."""
    created = await emulator.control(
        "POST", f"/sellers/{seller['id']}/offers", {"name": "x", "status": "ENDED", **fields}
    )
    assert daemon.allegro is not None
    async with db.acquire() as conn:
        await sweep_offers(daemon.allegro, conn, account_id)
    return str(created["id"])


async def bind(admin: Admin, offer_id: str, product_id: str, **flags: Any) -> dict[str, Any]:
    status, body = await admin.call(
        "PATCH", f"/offers/{offer_id}", {"product_id": product_id, **flags}
    )
    assert status == 200, body
    return dict(body)


async def log_entries(admin: Admin, account_id: int, code: str) -> list[dict[str, Any]]:
    status, body = await admin.call("GET", f"/accounts/{account_id}/event-log?category=offers")
    assert status == 200, body
    return [e for e in body["items"] if e["code"] == code]


async def test_an_ended_offer_is_renewed_with_the_current_price(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    await products(daemon, db, ("P1", None))
    seller, account_id = await account(
        admin,
        emulator,
        "sklep-wznowienia",
        **RENEWING,
        renew_with_current_price=True,
        sync_prices=True,
    )
    await erp(daemon, db, stock_changed("P1", 10, 1), price_changed("P1", "29.99", 1))
    created = await emulator.control(
        "POST", f"/sellers/{seller['id']}/offers", {"name": "Kubek", "stock": 10, "price": "19.99"}
    )
    offer_id = str(created["id"])
    await offer(admin, db, account_id, offer_id, name="Kubek")
    # bound after the price setting: follows prices (P2); the user switches that off by hand
    await bind(admin, offer_id, "P1", do_not_renew=False)
    await bind(admin, offer_id, "P1", sync_price=False)
    await settled(daemon, db)
    before = len(await commands(emulator, seller))

    await emulator.control("POST", f"/offers/{offer_id}/end")  # OFFER_ENDED in the journal

    async def renewed() -> Any:
        return await log_entries(admin, account_id, "offer_renewed")

    await eventually(renewed, timeout=30)
    seen = await offer(admin, db, account_id, offer_id, status="ACTIVE")
    assert seen["sync_price"] is True  # P2: a renewed offer bound after the switch-on
    state = await emulator_offer(emulator, offer_id)
    assert state["status"] == "ACTIVE" and state["price"] == "29.99" and state["stock"] == 10
    sent = (await commands(emulator, seller))[before:]
    assert [c["kind"] for c in sent][-1] == "publication"
    assert sent[-1]["body"]["publication"] == {"action": "ACTIVATE"}
    assert all(c["offers"] == [offer_id] for c in sent)  # same id: no new offer was created
    assert {c["kind"] for c in sent} == {"quantity", "price", "publication"}


async def test_renewal_within_60_days_only(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    await products(daemon, db, ("P1", None))
    seller, account_id = await account(admin, emulator, "sklep-terminy", **RENEWING)
    await erp(daemon, db, stock_changed("P1", 3, 1))
    recent = await ended_offer(daemon, emulator, db, seller, account_id, ended_days_ago=59)
    old = await ended_offer(daemon, emulator, db, seller, account_id, ended_days_ago=59)
    # The daemon's clock cannot be moved: the mirror is told that the second one ended 61 days
    # ago, as if the daemon had seen it end then (Allegro has archived such offers by now).
    await db.execute("UPDATE offers SET ended_at = now() - interval '61 days' WHERE id = $1", old)
    await bind(admin, recent, "P1", do_not_renew=False)
    await bind(admin, old, "P1", do_not_renew=False)

    await offer(admin, db, account_id, recent, status="ACTIVE")
    assert (await emulator_offer(emulator, recent))["stock"] == 3
    [refusal] = await eventually(lambda: log_entries(admin, account_id, "offer_renewal_refused"))
    assert old in refusal["message"] and "60 days" in refusal["message"]
    # a restock looks again: still refused, and not logged again
    await erp(daemon, db, stock_changed("P1", 8, 2))
    await settled(daemon, db)
    assert len(await log_entries(admin, account_id, "offer_renewal_refused")) == 1
    assert all(old not in c["offers"] for c in await commands(emulator, seller))


async def test_refusals_are_logged_once_and_a_restock_renews(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    await products(daemon, db, ("P1", None), ("P2", None))
    seller, account_id = await account(admin, emulator, "sklep-odmowy", **RENEWING)
    await erp(daemon, db, stock_changed("P1", 5, 1), stock_changed("P2", 0, 1))
    auction = await ended_offer(
        daemon, emulator, db, seller, account_id, format="AUCTION", ended_days_ago=2
    )
    excluded = await ended_offer(daemon, emulator, db, seller, account_id, ended_days_ago=2)
    waiting = await ended_offer(daemon, emulator, db, seller, account_id, ended_days_ago=2)
    await bind(admin, auction, "P1", do_not_renew=False)
    await bind(admin, excluded, "P1")  # "do not renew" stays on (the default)
    await bind(admin, waiting, "P2", do_not_renew=False)  # its product has no stock

    async def three() -> Any:
        found = await log_entries(admin, account_id, "offer_renewal_refused")
        return found if len(found) == 3 else None

    refusals = {e["details"]["offer_id"]: e["details"]["reason"] for e in await eventually(three)}
    assert refusals == {auction: "not_buy_now", excluded: "excluded", waiting: "no_stock"}

    # P2 comes back in stock: the waiting offer is renewed; P1 changes again: nothing new
    await erp(daemon, db, stock_changed("P2", 4, 2), stock_changed("P1", 6, 2))
    await offer(admin, db, account_id, waiting, status="ACTIVE")
    await settled(daemon, db)
    assert len(await log_entries(admin, account_id, "offer_renewal_refused")) == 3
    assert (await emulator_offer(emulator, auction))["status"] == "ENDED"
    assert (await emulator_offer(emulator, excluded))["status"] == "ENDED"
    sent = await commands(emulator, seller)
    assert all(auction not in c["offers"] and excluded not in c["offers"] for c in sent)
