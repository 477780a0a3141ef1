"""offer_updates: product changes coalesce per offer; an edit in flight keeps what it carries
until Allegro is done with it; a refused send puts its fields back."""

from __future__ import annotations

from datetime import timedelta

import asyncpg

from allegro_sync.adapters.postgres import offer_updates

LEASE = timedelta(seconds=60)


async def _offers(db: asyncpg.Pool, *, follows: bool) -> int:
    account_id = int(
        await db.fetchval(
            "INSERT INTO accounts (allegro_user_id, sandbox, login, name,"
            " update_offers_from_products) VALUES ($1, false, $1, $1, $2) RETURNING id",
            f"u{follows}",
            follows,
        )
    )
    for offer_id in (f"{account_id}-1", f"{account_id}-2"):
        await db.execute(
            "INSERT INTO offers (id, account_id, name, format, status, product_id)"
            " VALUES ($1, $2, 'Kubek', 'BUY_NOW', 'ACTIVE', 'P1')",
            offer_id,
            account_id,
        )
    return account_id


async def _rows(db: asyncpg.Pool) -> dict[str, tuple[list[str], list[str] | None]]:
    rows = await db.fetch("SELECT offer_id, fields, sending FROM offer_updates")
    return {r["offer_id"]: (list(r["fields"]), r["sending"]) for r in rows}


async def test_changes_coalesce_and_only_followers_are_queued(db: asyncpg.Pool) -> None:
    follower = await _offers(db, follows=True)
    await _offers(db, follows=False)
    async with db.acquire() as conn:
        assert sorted(await offer_updates.queue_for_product(conn, "P1", ["name"])) == [
            f"{follower}-1",
            f"{follower}-2",
        ]
        await offer_updates.queue_for_product(conn, "P1", ["images", "name"])
    assert await _rows(db) == {
        f"{follower}-1": (["images", "name"], None),
        f"{follower}-2": (["images", "name"], None),
    }


async def test_an_edit_in_flight_keeps_its_fields_and_what_came_meanwhile_waits(
    db: asyncpg.Pool,
) -> None:
    follower = await _offers(db, follows=True)
    first = f"{follower}-1"
    async with db.acquire() as conn:
        await offer_updates.queue_for_product(conn, "P1", ["name"])
    claimed = {r["offer_id"]: r for r in await offer_updates.claim_due(db, 10, LEASE)}
    assert list(claimed[first]["sending"]) == ["name"]
    assert await offer_updates.claim_due(db, 10, LEASE) == []  # leased
    async with db.acquire() as conn:
        await offer_updates.queue_for_product(conn, "P1", ["description"])
    await offer_updates.follow(db, first, "/sale/product-offers/x/operations/y", 0)
    (row,) = [r for r in await offer_updates.claim_due(db, 10, LEASE) if r["offer_id"] == first]
    assert row["operation_url"] and list(row["sending"]) == ["name"]  # followed, not re-sent
    await offer_updates.finish(db, first)
    assert (await _rows(db))[first] == (["description"], None)  # the next edit waits
    # A refused attempt (409) gives its fields back, with what came meanwhile.
    (row,) = [r for r in await offer_updates.claim_due(db, 10, LEASE) if r["offer_id"] == first]
    async with db.acquire() as conn:
        await offer_updates.queue_for_product(conn, "P1", ["images"])
    await offer_updates.postpone(db, first, 0)
    assert (await _rows(db))[first] == (["description", "images"], None)
    (row,) = [r for r in await offer_updates.claim_due(db, 10, LEASE) if r["offer_id"] == first]
    await offer_updates.finish(db, first)
    assert first not in await _rows(db)


async def test_edits_no_longer_wanted_are_dropped_before_they_leave(db: asyncpg.Pool) -> None:
    follower = await _offers(db, follows=True)
    async with db.acquire() as conn:
        await offer_updates.queue_for_product(conn, "P1", ["name"])
    await db.execute("UPDATE offers SET product_id = NULL WHERE id = $1", f"{follower}-1")
    assert [r["offer_id"] for r in await offer_updates.claim_due(db, 10, LEASE)] == [
        f"{follower}-2"
    ]
    async with db.acquire() as conn:
        await offer_updates.queue_for_product(conn, "P1", ["images"])
    await db.execute("UPDATE accounts SET update_offers_from_products = false")
    await offer_updates.postpone(db, f"{follower}-2", 0)  # its edit came back (a 409)
    assert await offer_updates.claim_due(db, 10, LEASE) == []
    assert await offer_updates.waiting(db) == 0
