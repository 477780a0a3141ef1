"""SQL for the ERP's catalog: products, price_lists, product_stock, product_prices."""

from __future__ import annotations

from decimal import Decimal

import asyncpg

from allegro_sync.adapters.postgres.pool import Db

# Create or update a product. $5..$11 are the listing data; $12 names those of them the
# message carried (the others keep their stored values). Returns the content fields that an
# existing product changed (``changed``; empty for a new product). ``old`` is read in the
# statement's snapshot (no FOR UPDATE: that would follow the row to the version written here).
UPSERT_PRODUCT = """
WITH old AS MATERIALIZED (
    SELECT name, description, images, parameters FROM products WHERE id = $1
), new AS (
    INSERT INTO products (id, ean, name, image_url, description, images, parameters, category_id,
                          responsible_producer_id, safety_information, tax_settings)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
    ON CONFLICT (id) DO UPDATE
       SET ean = EXCLUDED.ean, name = EXCLUDED.name, image_url = EXCLUDED.image_url,
           description = CASE WHEN 'description' = ANY($12::text[])
                              THEN EXCLUDED.description ELSE products.description END,
           images = CASE WHEN 'images' = ANY($12::text[])
                         THEN EXCLUDED.images ELSE products.images END,
           parameters = CASE WHEN 'parameters' = ANY($12::text[])
                             THEN EXCLUDED.parameters ELSE products.parameters END,
           category_id = CASE WHEN 'category_id' = ANY($12::text[])
                              THEN EXCLUDED.category_id ELSE products.category_id END,
           responsible_producer_id = CASE WHEN 'responsible_producer_id' = ANY($12::text[])
                                          THEN EXCLUDED.responsible_producer_id
                                          ELSE products.responsible_producer_id END,
           safety_information = CASE WHEN 'safety_information' = ANY($12::text[])
                                     THEN EXCLUDED.safety_information
                                     ELSE products.safety_information END,
           tax_settings = CASE WHEN 'tax_settings' = ANY($12::text[])
                               THEN EXCLUDED.tax_settings ELSE products.tax_settings END,
           updated_at = now()
    RETURNING name, description, images, parameters
)
SELECT array_remove(ARRAY[
           CASE WHEN old.name IS DISTINCT FROM new.name THEN 'name' END,
           CASE WHEN old.description IS DISTINCT FROM new.description THEN 'description' END,
           CASE WHEN old.images IS DISTINCT FROM new.images THEN 'images' END,
           CASE WHEN old.parameters IS DISTINCT FROM new.parameters THEN 'parameters' END
       ], NULL) AS changed
  FROM new JOIN old ON true
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


async def get_listing_product(conn: Db, product_id: str) -> asyncpg.Record | None:
    """Everything stored of a product that listing it needs, or None (jsonb decoded)."""
    return await conn.fetchrow(
        """
        SELECT id, ean, name, image_url, images, description, parameters, category_id,
               responsible_producer_id, safety_information, tax_settings
          FROM products WHERE id = $1
        """,
        product_id,
    )


async def get_product(conn: Db, product_id: str) -> asyncpg.Record | None:
    """The product's id and EAN, or None."""
    return await conn.fetchrow("SELECT id, ean FROM products WHERE id = $1", product_id)


async def price_list_exists(conn: Db, price_list: str) -> bool:
    """Whether the ERP announced this price list."""
    return bool(await conn.fetchval("SELECT true FROM price_lists WHERE id = $1", price_list))


async def listing_price(
    conn: Db, product_id: str, price_list: str | None
) -> tuple[Decimal, str] | None:
    """The product's (price, currency) on a price list, or None."""
    if price_list is None:
        return None
    row = await conn.fetchrow(
        "SELECT price, currency FROM product_prices WHERE product_id = $1 AND price_list = $2",
        product_id,
        price_list,
    )
    return None if row is None else (row["price"], row["currency"])


async def erp_stock(conn: Db, product_id: str) -> int | None:
    """The product's ERP stock, or None when the ERP never sent it."""
    value = await conn.fetchval(
        "SELECT quantity FROM product_stock WHERE product_id = $1", product_id
    )
    return None if value is None else int(value)
