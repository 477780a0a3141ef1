"""Listing (issue 17) when things go wrong: a step that outlives its lease, a lost answer beside
older offers with the same external id, an offer already bound, a listing Allegro never
finishes, a step that keeps failing, a proposal sent again. On the emulator over HTTP, with the
real broker and database."""

from __future__ import annotations

from typing import Any

import aiohttp
import asyncpg
import pytest

from allegro_sync.adapters.postgres import listings
from allegro_sync.daemon.app import Daemon
from allegro_sync.handlers.listing import ListingDeps, advance_listing
from tests.e2e.conftest import FAST_POLLING, Admin, Emulator, daemon_settings
from tests.e2e.flows import Erp, bound_offers, switch
from tests.e2e.test_listing import (
    CONDITION,
    GTIN,
    UNKNOWN_GTIN,
    listing,
    offer_list,
    product,
    shop,
)
from tests.helpers import eventually

ADDRESS = {"city": "Kraków", "post_code": "30-001", "country_code": "PL"}


async def _posts(emulator: Emulator) -> int:
    received = await emulator.control("GET", "/requests")
    return int(received["by_path"].get("POST /sale/product-offers", 0))


async def test_a_step_whose_lease_was_taken_over_sends_nothing(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    _, account_id = await shop(admin, emulator, "sklep-dzierzawa")
    await product(daemon, db, "P20", GTIN)
    async with db.acquire() as conn, conn.transaction():
        # worker A holds the listing (the service skips it)...
        row, _ = await listings.request(
            conn,
            account_id=account_id,
            product_id="P20",
            price=offer_list("P20", account_id)["price"],
            currency="PLN",
            quantity=7,
            category_id=None,
            publish=True,
            external_id="P20",
        )
        [held_by_a] = await conn.fetch(
            "UPDATE listings SET claimed_until = now() + interval '1 hour',"
            " claim_token = gen_random_uuid() WHERE id = $1 RETURNING *",
            row["id"],
        )
    # ...its step outlives the lease, and worker B takes the row over
    [held_by_b] = await db.fetch(
        "UPDATE listings SET claimed_until = now() + interval '1 hour',"
        " claim_token = gen_random_uuid() WHERE id = $1 RETURNING *",
        row["id"],
    )
    deps = ListingDeps(daemon.allegro, daemon.pool, daemon.budgets)

    # the seller's write budget is at hand (leased from the shared store), so A's step gets
    # as far as its POST
    async def budget_at_hand() -> bool:
        return daemon.budgets.try_spend(account_id, "listing", 1) == 0

    await eventually(budget_at_hand, timeout=10, interval=0.05)
    assert await advance_listing(deps, held_by_a) == "pending"
    assert await _posts(emulator) == 0  # A sent nothing
    after = await db.fetchrow("SELECT * FROM listings WHERE id = $1", row["id"])
    assert (after["state"], after["claim_token"]) == ("pending", held_by_b["claim_token"])
    await advance_listing(deps, held_by_b)  # B goes on (at once, or after the budget's wait)
    await listing(db, "P20", "listed")
    assert await _posts(emulator) == 1


async def test_a_lost_answer_never_adopts_an_ended_or_an_earlier_offer(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    seller = await emulator.seller("sklep-stare-oferty")
    old = {"external_id": "P21", "name": "Stara oferta", "stock": 3}
    ended = await emulator.control("POST", f"/sellers/{seller['id']}/offers", old)
    await emulator.control("POST", f"/offers/{ended['id']}/end", {})
    earlier = await emulator.control("POST", f"/sellers/{seller['id']}/offers", old)
    account_id = int((await admin.connect(emulator, seller))["id"])
    await switch(admin, account_id, address=ADDRESS)

    async def mirrored() -> bool:
        return bool(await db.fetchval("SELECT true FROM offers WHERE id = $1", earlier["id"]))

    await eventually(mirrored, timeout=30)
    await product(daemon, db, "P21", GTIN)
    # the POST fails on Allegro's side: the listing cannot know whether it created the offer
    await emulator.control(
        "POST", "/faults", {"error_5xx_rate": 1.0, "paths": ["/sale/product-offers"]}
    )
    status, _ = await admin.call("POST", "/offers", offer_list("P21", account_id))
    assert status == 202
    await listing(db, "P21", "posting")
    await eventually(lambda: _at_least(emulator, 1), timeout=30)
    await emulator.control("DELETE", "/faults")
    row = await listing(db, "P21", "listed")
    assert row["offer_id"] not in (ended["id"], earlier["id"])
    assert sorted(row["prior_offer_ids"]) == sorted([ended["id"], earlier["id"]])
    assert await _posts(emulator) == 2  # the failed one and the one that created the offer


async def test_a_product_with_a_bound_offer_is_not_listed_again(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    _, account_id, ids = await bound_offers(
        daemon, admin, emulator, db, "sklep-powiazana", {"Kubek": "P30"}
    )
    await product(daemon, db, "P30", GTIN)
    erp_side = Erp(daemon.settings.amqp_url)
    status, body = await admin.call("POST", "/offers", offer_list("P30", account_id))
    assert status == 200, body
    assert (body["state"], body["offer_id"]) == ("listed", ids["Kubek"])
    [listed] = await erp_side.wait_for("offer.listed")
    assert listed == {
        "account_id": account_id,
        "product_id": "P30",
        "offer_id": ids["Kubek"],
        "status": "ACTIVE",
    }
    assert await _posts(emulator) == 0
    logged = await db.fetchval(
        "SELECT message FROM event_log WHERE account_id = $1 AND code = 'offer_already_listed'",
        account_id,
    )
    assert ids["Kubek"] in logged
    # asked again: the same answer, still nothing posted
    status, again = await admin.call("POST", "/offers", offer_list("P30", account_id))
    assert (status, again["offer_id"]) == (200, ids["Kubek"])
    assert await _posts(emulator) == 0


@pytest.mark.parametrize("clocked_emulator", [{"frozen_clock": True}], indirect=True)
async def test_a_listing_allegro_never_finishes_fails_after_the_limit(
    clocked_emulator: Emulator, database_url: str, amqp_url: str, db: asyncpg.Pool
) -> None:
    emulator = clocked_emulator
    running = Daemon(
        daemon_settings(database_url, amqp_url, emulator.url), poller_timing=FAST_POLLING
    )
    await running.start()
    try:
        async with aiohttp.ClientSession() as session:
            admin = Admin(running, session)
            _, account_id = await shop(admin, emulator, "sklep-bez-konca")
            await product(running, db, "P41", GTIN)
            erp_side = Erp(running.settings.amqp_url)
            await admin.call("POST", "/offers", offer_list("P41", account_id))
            row = await listing(db, "P41", "following")
            # the emulated clock stands still; as if Allegro had been at it for four hours
            await db.execute(
                "UPDATE listings SET following_since = now() - interval '4 hours' WHERE id = $1",
                row["id"],
            )
            [failed] = await erp_side.wait_for("offer.list_failed")
            [error] = failed["errors"]
            assert error["code"] == "allegro_sync.operation_timeout"
            assert row["offer_id"] in error["message"] and "3 hours" in error["message"]
            logged = await db.fetchval(
                "SELECT message FROM event_log WHERE account_id = $1"
                " AND code = 'offer_list_failed'",
                account_id,
            )
            assert row["offer_id"] in logged
    finally:
        await running.stop()


async def test_a_step_that_keeps_failing_ends_in_a_clear_refusal(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    _, account_id = await shop(admin, emulator, "sklep-blad")
    await product(daemon, db, "P42", GTIN)
    await db.execute("UPDATE products SET images = '5'::jsonb WHERE id = 'P42'")  # unreadable
    erp_side = Erp(daemon.settings.amqp_url)
    await admin.call("POST", "/offers", offer_list("P42", account_id))

    async def failed() -> Any:
        # time passes faster: each backoff is over at once
        await db.execute(
            "UPDATE listings SET due_at = now() WHERE product_id = 'P42' AND state <> 'failed'"
            " AND claimed_until IS NULL"
        )
        return await db.fetchrow(
            "SELECT * FROM listings WHERE product_id = 'P42' AND state = 'failed'"
        )

    row = await eventually(failed, timeout=60, interval=0.3)
    assert row["step_failures"] == 4  # the fifth failure fails the listing
    [error] = row["errors"]
    assert error["code"] == "allegro_sync.internal_error"
    assert "5 times" in error["message"] and "TypeError" in error["message"]
    [sent] = await erp_side.wait_for("offer.list_failed")
    assert [(e["code"], e["message"]) for e in sent["errors"]] == [
        (error["code"], error["message"])
    ]
    assert await _posts(emulator) == 0


@pytest.mark.parametrize(
    "clocked_emulator", [{"frozen_clock": True, "offer_writes_per_minute": 1}], indirect=True
)
async def test_a_proposal_sent_again_carries_the_proposal(
    clocked_emulator: Emulator, database_url: str, amqp_url: str, db: asyncpg.Pool
) -> None:
    emulator = clocked_emulator
    running = Daemon(
        daemon_settings(database_url, amqp_url, emulator.url), poller_timing=FAST_POLLING
    )
    await running.start()
    try:
        async with aiohttp.ClientSession() as session:
            admin = Admin(running, session)
            _, account_id = await shop(admin, emulator, "sklep-propozycja")
            await product(
                running,
                db,
                "P43",
                UNKNOWN_GTIN,
                category_id="5501",
                images=["https://img.example/p43.jpg"],
                parameters=[*CONDITION, {"id": "248811", "name": None, "values": ["Kubix"]}],
            )
            await admin.call("POST", "/offers", offer_list("P43", account_id))
            # the EAN is unknown (422); the proposal meets the seller's write limit (429)
            await eventually(lambda: _at_least(emulator, 2), timeout=30)
            await listing(db, "P43", "posting")
            await emulator.control("POST", "/clock", {"advance_seconds": 61})
            await eventually(lambda: _at_least(emulator, 3), timeout=30)
            await emulator.control("POST", "/clock", {"advance_seconds": 5})
            row = await listing(db, "P43", "listed")
            # the retry sent the proposal itself, not the plain offer again
            assert await _posts(emulator) == 3
            on_allegro = await emulator.control("GET", f"/offers/{row['offer_id']}")
            assert on_allegro["details"]["product_status"] == "PROPOSED"
    finally:
        await running.stop()


async def _at_least(emulator: Emulator, posts: int) -> bool:
    return await _posts(emulator) >= posts
