"""Products, price lists, ERP stock and prices as the ERP announces them.

Each handler records the ERP's latest word; a version guard makes older messages no-ops, so
redelivered and reordered messages converge on the newest state.
"""

from __future__ import annotations

import asyncpg

from allegro_sync.adapters.postgres import catalog
from allegro_sync.contract import (
    PriceChanged,
    PriceListUpserted,
    ProductUpserted,
    StockChanged,
)


async def upsert_product(message: ProductUpserted, conn: asyncpg.Connection) -> None:
    """Create or update a product."""
    await conn.execute(
        catalog.UPSERT_PRODUCT,
        message.product_id,
        message.ean,
        message.name,
        message.image_url,
    )


async def upsert_price_list(message: PriceListUpserted, conn: asyncpg.Connection) -> None:
    """Make a price list choosable on accounts."""
    await conn.execute(
        catalog.UPSERT_PRICE_LIST,
        message.price_list,
        message.name,
    )


async def record_stock(message: StockChanged, conn: asyncpg.Connection) -> bool:
    """Store the ERP stock unless a newer version is stored; True when it changed."""
    changed = await conn.fetchval(
        catalog.RECORD_STOCK,
        message.product_id,
        message.quantity,
        message.version,
    )
    return bool(changed)


async def record_price(message: PriceChanged, conn: asyncpg.Connection) -> bool:
    """Store the price unless a newer version is stored; True when it changed."""
    changed = await conn.fetchval(
        catalog.RECORD_PRICE,
        message.product_id,
        message.price_list,
        message.price,
        message.currency,
        message.version,
    )
    return bool(changed)
