"""SQL for accounts, in the open."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from allegro_sync.adapters.postgres.pool import Db

SETTING_COLUMNS = (
    "orders_from",
    "auto_create_orders",
    "send_order_emails",
    "bind_offers_by_ean",
    "stock_control",
    "raise_quantity_on_erp_sync",
    "auto_renew",
    "renew_with_current_price",
    "do_not_renew_default",
    "send_customer_card",
    "only_customers_with_nip",
    "sync_prices",
    "price_list",
    "default_category_id",
    "after_sales",
    "shipping_rates_id",
    "address",
    "extra_order_email_recipients",
    "order_message_channel",
    "mark_sent_on_tracking",
    "update_offers_from_products",
    "shipping_sender",
    "default_package",
)
UPDATABLE_COLUMNS = frozenset({"name", "active", *SETTING_COLUMNS})

SELECT_ACCOUNT = """
SELECT a.*, (a.created_at > now() - interval '7 days') AS recently_added
  FROM accounts a
"""


async def get(
    conn: asyncpg.Connection, account_id: int, *, for_update: bool = False
) -> asyncpg.Record | None:
    """One account row or None."""
    lock = " FOR UPDATE" if for_update else ""
    row: asyncpg.Record | None = await conn.fetchrow(
        SELECT_ACCOUNT + " WHERE a.id = $1" + lock, account_id
    )
    return row


async def list_all(
    conn: asyncpg.Connection,
    *,
    active: bool | None,
    sandbox: bool | None,
    after_id: int | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Accounts by id, filtered."""
    rows: list[asyncpg.Record] = await conn.fetch(
        SELECT_ACCOUNT
        + """
         WHERE ($1::boolean IS NULL OR a.active = $1)
           AND ($2::boolean IS NULL OR a.sandbox = $2)
           AND ($3::bigint IS NULL OR a.id > $3)
         ORDER BY a.id
         LIMIT $4
        """,
        active,
        sandbox,
        after_id,
        limit,
    )
    return rows


async def upsert_connected(
    conn: asyncpg.Connection,
    *,
    allegro_user_id: str,
    sandbox: bool,
    login: str,
    email: str | None = None,
) -> tuple[int, bool]:
    """Create the account named after its login, or reactivate the one already connected;
    ``email`` is its main address as ``GET /me`` gives it (kept when Allegro gave none).

    Returns (account id, created).
    """
    row = await conn.fetchrow(
        """
        INSERT INTO accounts (allegro_user_id, sandbox, login, name, email)
        VALUES ($1, $2, $3, $3, $4)
        ON CONFLICT (allegro_user_id, sandbox) DO UPDATE
           SET login = EXCLUDED.login, active = true,
               deactivation_reason = NULL, deactivated_at = NULL,
               email = coalesce(EXCLUDED.email, accounts.email)
        RETURNING id, (xmax = 0) AS created
        """,
        allegro_user_id,
        sandbox,
        login,
        email,
    )
    return int(row["id"]), bool(row["created"])


async def update(conn: Db, account_id: int, changes: dict[str, Any]) -> None:
    """Write the given columns (names checked against UPDATABLE_COLUMNS)."""
    if not changes:
        return
    internal = {
        "bind_offers_by_ean_since",
        "sync_prices_since",
        "deactivation_reason",
        "allowed_extra_emails",
        "orders_backfilled_from",
        "email",
    }
    unknown = set(changes) - UPDATABLE_COLUMNS - internal
    if unknown:
        raise ValueError(f"not updatable: {sorted(unknown)}")
    names = list(changes)
    assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(names, start=2))
    await conn.execute(
        f"UPDATE accounts SET {assignments} WHERE id = $1", account_id, *changes.values()
    )


async def count_bound_offers(conn: asyncpg.Connection, account_id: int) -> int:
    """Offers of the account bound to a product."""
    count: int = await conn.fetchval(
        "SELECT count(*) FROM offers WHERE account_id = $1 AND product_id IS NOT NULL", account_id
    )
    return count


async def shipping_sender(conn: Db, account_id: int) -> dict[str, Any] | None:
    """The account's ``shipping_sender`` (the pickup address); None: not set, or no account."""
    sender: dict[str, Any] | None = await conn.fetchval(
        "SELECT shipping_sender FROM accounts WHERE id = $1", account_id
    )
    return sender


async def is_active(conn: Db, account_id: int) -> bool | None:
    """Whether the account is active; None when there is no such account."""
    active: bool | None = await conn.fetchval(
        "SELECT active FROM accounts WHERE id = $1", account_id
    )
    return active


async def active_ids(conn: Db) -> list[int]:
    """Ids of the active accounts, ascending."""
    return [r["id"] for r in await conn.fetch("SELECT id FROM accounts WHERE active ORDER BY id")]


async def active_among(conn: Db, account_ids: list[int]) -> set[int]:
    """Those of the accounts that are active."""
    rows = await conn.fetch(
        "SELECT id FROM accounts WHERE id = ANY($1::bigint[]) AND active", account_ids
    )
    return {r["id"] for r in rows}


async def lock_active(conn: asyncpg.Connection, account_ids: list[int]) -> dict[int, Any]:
    """The active ones of the accounts by id, locked against change for the transaction."""
    rows = await conn.fetch(
        "SELECT * FROM accounts WHERE id = ANY($1::bigint[]) AND active FOR SHARE", account_ids
    )
    return {row["id"]: row for row in rows}


async def deactivate(conn: Db, account_id: int, reason: str) -> asyncpg.Record | None:
    """Switch the account off (login and epoch second of it), None if already off for that."""
    return await conn.fetchrow(
        """
        UPDATE accounts SET active = false, deactivation_reason = $2, deactivated_at = now()
         WHERE id = $1 AND (active OR deactivation_reason IS DISTINCT FROM $2)
        RETURNING login, extract(epoch FROM deactivated_at)::bigint AS at
        """,
        account_id,
        reason,
    )


async def delete(conn: Db, account_id: int) -> None:
    """Delete the account (its rows go with it by foreign key)."""
    await conn.execute("DELETE FROM accounts WHERE id = $1", account_id)


async def backfill_range(conn: Db, account_id: int) -> asyncpg.Record | None:
    """``orders_from`` and how far back orders were backfilled already."""
    return await conn.fetchrow(
        "SELECT orders_from, orders_backfilled_from FROM accounts WHERE id = $1", account_id
    )


async def sweep_start(conn: Db, account_id: int) -> datetime | None:
    """Up to when the order sweep looked at the account's forms; None when it is not active."""
    since: datetime | None = await conn.fetchval(
        "SELECT orders_swept_to FROM accounts WHERE id = $1 AND active", account_id
    )
    return since


async def swept(conn: Db, account_id: int, until: datetime) -> None:
    """The order sweep looked at every form of the account updated before ``until``."""
    await conn.execute(
        "UPDATE accounts SET orders_swept_to = greatest(orders_swept_to, $2) WHERE id = $1",
        account_id,
        until,
    )
