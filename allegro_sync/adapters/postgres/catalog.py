"""SQL for the ERP's catalog (products, price_lists), in the open."""

from __future__ import annotations

import asyncpg

from allegro_sync.adapters.postgres.pool import Db


async def get_product(conn: Db, product_id: str) -> asyncpg.Record | None:
    """The product's id and EAN, or None."""
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT id, ean FROM products WHERE id = $1", product_id
    )
    return row


async def price_list_exists(conn: Db, price_list: str) -> bool:
    """Whether the ERP announced this price list."""
    return bool(await conn.fetchval("SELECT true FROM price_lists WHERE id = $1", price_list))
