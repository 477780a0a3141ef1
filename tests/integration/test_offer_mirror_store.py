"""The offer mirror's upsert, as one consumer batch uses it (several calls, one transaction)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg

from allegro_sync.adapters.postgres.offer_changes import mirror_applied
from allegro_sync.adapters.postgres.offers import MirrorEntry, upsert_mirror


def entry(offer_id: str, stock: int) -> MirrorEntry:
    return MirrorEntry(
        offer_id,
        f"Offer {offer_id}",
        "BUY_NOW",
        "ACTIVE",
        None,
        stock,
        Decimal("9.99"),
        "PLN",
        None,
        None,
    )


async def test_calls_in_one_transaction_keep_each_offer_with_its_account(db: asyncpg.Pool) -> None:
    async with db.acquire() as conn:
        for login in ("a", "b"):
            await conn.execute(
                "INSERT INTO accounts (allegro_user_id, sandbox, login, name)"
                " VALUES ($1, false, $1, $1)",
                login,
            )
        first, second = [r["id"] for r in await conn.fetch("SELECT id FROM accounts ORDER BY id")]
        now = datetime.now(UTC)
        async with conn.transaction():
            await upsert_mirror(conn, first, [entry("1", 5)], now)
            await upsert_mirror(conn, second, [entry("2", 7), entry("3", 1)], now)
        rows = {r["id"]: r for r in await conn.fetch("SELECT id, account_id, stock FROM offers")}
    assert {k: (v["account_id"], v["stock"]) for k, v in rows.items()} == {
        "1": (first, 5),
        "2": (second, 7),
        "3": (second, 1),
    }


async def test_an_older_read_never_overwrites_a_newer_one(db: asyncpg.Pool) -> None:
    async with db.acquire() as conn:
        await conn.execute(
            "INSERT INTO accounts (allegro_user_id, sandbox, login, name)"
            " VALUES ('a', false, 'a', 'a')"
        )
        account = await conn.fetchval("SELECT id FROM accounts")
        now = datetime.now(UTC)
        await upsert_mirror(conn, account, [entry("1", 3)], now)
        await upsert_mirror(conn, account, [entry("1", 9)], now - timedelta(seconds=5))
        assert await conn.fetchval("SELECT stock FROM offers WHERE id = '1'") == 3


async def test_a_read_from_before_an_applied_command_keeps_the_commands_value(
    db: asyncpg.Pool,
) -> None:
    """Issue 19: the listing asked before a command applied shows the old quantity; it must not
    bring it back, while a read made after the command counts again."""
    async with db.acquire() as conn:
        await conn.execute(
            "INSERT INTO accounts (allegro_user_id, sandbox, login, name)"
            " VALUES ('a', false, 'a', 'a')"
        )
        account = await conn.fetchval("SELECT id FROM accounts")
        start = datetime.now(UTC)
        await upsert_mirror(conn, account, [entry("1", 6)], start - timedelta(seconds=2))
        slow_read_at = start - timedelta(seconds=1)  # asked before the command applied
        await mirror_applied(
            conn, "quantity", {"modification": {"changeType": "FIXED", "value": 5}}, ["1"], start
        )
        ended = MirrorEntry("1", "Renamed", "BUY_NOW", "ENDED", None, 6, None, None, None, None)
        await upsert_mirror(conn, account, [ended], slow_read_at)
        row = await conn.fetchrow("SELECT stock, applied_stock, name, status FROM offers")
        assert dict(row) == {"stock": 5, "applied_stock": 5, "name": "Renamed", "status": "ENDED"}
        await upsert_mirror(conn, account, [entry("1", 4)], start + timedelta(seconds=1))
        assert await conn.fetchval("SELECT stock FROM offers") == 4
