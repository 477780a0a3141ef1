"""What ``store_product`` reports as changed: the content fields an existing product changed,
for the offers that follow their product (issue 17, item 4)."""

from __future__ import annotations

import asyncpg

from allegro_sync.contract import ProductUpserted
from allegro_sync.handlers.catalog import store_product


async def _store(db: asyncpg.Pool, **fields: object) -> frozenset[str]:
    message = ProductUpserted.model_validate({"product_id": "P1", "ean": None, **fields})
    async with db.acquire() as conn, conn.transaction():
        return await store_product(message, conn)


async def test_changed_fields_are_the_content_an_existing_product_changed(
    db: asyncpg.Pool,
) -> None:
    images = ["https://erp.example.com/a.jpg"]
    assert await _store(db, name="Kubek", images=images) == frozenset()  # new
    assert await _store(db, name="Kubek", images=images) == frozenset()  # the same again
    assert await _store(db, name="Kubek") == frozenset()  # left out: kept
    assert await _store(db, name="Kubek 2", description="Nowy opis") == {"name", "description"}
    assert await _store(db, name="Kubek 2", images=None, category_id="5501") == {"images"}
    params = [{"id": "11323", "values": ["Nowy"]}]
    assert await _store(db, name="Kubek 2", parameters=params) == {"parameters"}
    assert await _store(db, name="Kubek 2", image_url="https://erp.example.com/b.jpg") == {"images"}
