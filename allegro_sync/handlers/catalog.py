"""Products, price lists, ERP stock and prices as the ERP announces them.

Each handler records the ERP's latest word; a version guard makes older messages no-ops, so
redelivered and reordered messages converge on the newest state.
"""

from __future__ import annotations

import asyncpg

from allegro_sync.contract import (
    PriceChanged,
    PriceListUpserted,
    ProductUpserted,
    StockChanged,
)


async def upsert_product(message: ProductUpserted, conn: asyncpg.Connection) -> None:
    """Create or update a product."""
    await conn.execute(
        """
        INSERT INTO products (id, ean, name, image_url) VALUES ($1, $2, $3, $4)
        ON CONFLICT (id) DO UPDATE
           SET ean = EXCLUDED.ean, name = EXCLUDED.name, image_url = EXCLUDED.image_url,
               updated_at = now()
        """,
        message.product_id,
        message.ean,
        message.name,
        message.image_url,
    )


async def upsert_price_list(message: PriceListUpserted, conn: asyncpg.Connection) -> None:
    """Make a price list choosable on accounts."""
    await conn.execute(
        """
        INSERT INTO price_lists (id, name) VALUES ($1, $2)
        ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, updated_at = now()
        """,
        message.price_list,
        message.name,
    )


async def record_stock(message: StockChanged, conn: asyncpg.Connection) -> bool:
    """Store the ERP stock unless a newer version is stored; True when it changed."""
    changed = await conn.fetchval(
        """
        INSERT INTO product_stock (product_id, quantity, version) VALUES ($1, $2, $3)
        ON CONFLICT (product_id) DO UPDATE
           SET quantity = EXCLUDED.quantity, version = EXCLUDED.version, updated_at = now()
         WHERE product_stock.version < EXCLUDED.version
        RETURNING true
        """,
        message.product_id,
        message.quantity,
        message.version,
    )
    return bool(changed)


async def record_price(message: PriceChanged, conn: asyncpg.Connection) -> bool:
    """Store the price unless a newer version is stored; True when it changed."""
    changed = await conn.fetchval(
        """
        INSERT INTO product_prices (product_id, price_list, price, currency, version)
        VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (product_id, price_list) DO UPDATE
           SET price = EXCLUDED.price, currency = EXCLUDED.currency,
               version = EXCLUDED.version, updated_at = now()
         WHERE product_prices.version < EXCLUDED.version
        RETURNING true
        """,
        message.product_id,
        message.price_list,
        message.price,
        message.currency,
        message.version,
    )
    return bool(changed)
