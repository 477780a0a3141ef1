"""SQL for the ERP's catalog: products, price_lists, product_stock, product_prices."""

from __future__ import annotations

import asyncpg

from allegro_sync.adapters.postgres.pool import Db

# Create or update a product.
UPSERT_PRODUCT = """
INSERT INTO products (id, ean, name, image_url) VALUES ($1, $2, $3, $4)
ON CONFLICT (id) DO UPDATE
   SET ean = EXCLUDED.ean, name = EXCLUDED.name, image_url = EXCLUDED.image_url,
       updated_at = now()
"""
# Create or rename a price list.
UPSERT_PRICE_LIST = """
INSERT INTO price_lists (id, name) VALUES ($1, $2)
ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, updated_at = now()
"""
# The ERP's stock of a product unless a newer version is stored (``true`` if written).
RECORD_STOCK = """
INSERT INTO product_stock (product_id, quantity, version) VALUES ($1, $2, $3)
ON CONFLICT (product_id) DO UPDATE
   SET quantity = EXCLUDED.quantity, version = EXCLUDED.version, updated_at = now()
 WHERE product_stock.version < EXCLUDED.version
RETURNING true
"""
# A product's price on a list unless a newer version is stored (``true`` if written).
RECORD_PRICE = """
INSERT INTO product_prices (product_id, price_list, price, currency, version)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (product_id, price_list) DO UPDATE
   SET price = EXCLUDED.price, currency = EXCLUDED.currency,
       version = EXCLUDED.version, updated_at = now()
 WHERE product_prices.version < EXCLUDED.version
RETURNING true
"""


async def get_product(conn: Db, product_id: str) -> asyncpg.Record | None:
    """The product's id and EAN, or None."""
    return await conn.fetchrow("SELECT id, ean FROM products WHERE id = $1", product_id)


async def price_list_exists(conn: Db, price_list: str) -> bool:
    """Whether the ERP announced this price list."""
    return bool(await conn.fetchval("SELECT true FROM price_lists WHERE id = $1", price_list))
