"""``product.upserted`` with what listing a product needs (issue 17, item 1), end to end: the
listing data is stored in Allegro's shapes, a message that leaves a field out keeps it, null
clears it, a redelivery changes nothing, and bad listing data is dead-lettered with its reason."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from allegro_sync.adapters.broker.topology import ERP_EXCHANGE
from allegro_sync.daemon.app import Daemon
from tests.e2e.flows import _dead_letters
from tests.helpers import eventually, publish_json

FULL = {
    "product_id": "P1",
    "ean": "5901234123457",
    "name": "Kubek termiczny 450 ml",
    "description": "Stalowy kubek <450 ml>.\n\nMyć ręcznie.",
    "images": ["https://erp.example.com/img/p1-a.jpg", "https://erp.example.com/img/p1-b.jpg"],
    "parameters": [{"id": "11323", "values": ["Nowy"]}, {"name": "Pojemność", "values": ["450"]}],
    "category_id": "5501",
    "responsible_producer_id": "0b9a7c1e-3c55-4f0e-9d1a-5e4c2b7f8a10",
    "safety_information": {"type": "TEXT", "description": "Gorące napoje mogą poparzyć."},
    "tax_settings": {"rates": [{"rate": "23.00", "country_code": "PL"}], "subject": "GOODS"},
}


async def _send(daemon: Daemon, db: asyncpg.Pool, message_id: str, body: dict[str, Any]) -> None:
    await publish_json(
        daemon.settings.amqp_url,
        ERP_EXCHANGE,
        [("product.upserted", message_id, json.dumps(body).encode())],
    )

    async def handled() -> bool:
        return bool(await db.fetchval("SELECT true FROM inbox WHERE message_id = $1", message_id))

    await eventually(handled)


async def _stored(db: asyncpg.Pool) -> dict[str, Any]:
    row = await db.fetchrow("SELECT * FROM products WHERE id = 'P1'")
    assert row is not None
    return dict(row)


async def test_listing_data_is_stored_in_allegros_shapes_and_kept_when_left_out(
    daemon: Daemon, db: asyncpg.Pool
) -> None:
    await _send(daemon, db, "p1:1", FULL)
    stored = await _stored(db)
    assert stored["description"] == {
        "sections": [
            {
                "items": [
                    {
                        "type": "TEXT",
                        "content": "<p>Stalowy kubek &lt;450 ml&gt;.</p><p>Myć ręcznie.</p>",
                    }
                ]
            }
        ]
    }
    assert stored["images"] == FULL["images"]
    assert stored["image_url"] == FULL["images"][0]
    assert stored["parameters"] == FULL["parameters"]
    assert stored["category_id"] == "5501"
    assert stored["responsible_producer_id"] == FULL["responsible_producer_id"]
    assert stored["safety_information"] == FULL["safety_information"]
    assert stored["tax_settings"] == {
        "rates": [{"rate": "23.00", "countryCode": "PL"}],
        "subject": "GOODS",
        "exemption": None,
    }

    # an ERP that knows only the first fields renames the product and keeps the rest
    await _send(daemon, db, "p1:2", {"product_id": "P1", "ean": FULL["ean"], "name": "Kubek"})
    renamed = await _stored(db)
    assert renamed["name"] == "Kubek"
    assert {k: renamed[k] for k in FULL if k not in ("name",) and k in renamed} == {
        k: stored[k] for k in FULL if k not in ("name",) and k in stored
    }

    # null clears a field, sections are taken as they are, the redelivery changes nothing
    sections = {"sections": [{"items": [{"type": "TEXT", "content": "<h2>Kubek</h2>"}]}]}
    cleared = {**FULL, "description": sections, "category_id": None, "parameters": None}
    await _send(daemon, db, "p1:3", cleared)
    await _send(daemon, db, "p1:3", {**FULL, "name": "redelivered, not applied"})
    after = await _stored(db)
    assert after["description"] == sections
    assert after["category_id"] is None and after["parameters"] is None
    assert after["name"] == FULL["name"] and after["images"] == FULL["images"]


async def test_bad_listing_data_is_dead_lettered_with_its_reason(
    daemon: Daemon, db: asyncpg.Pool
) -> None:
    bad = [
        ("bad-param", {**FULL, "parameters": [{"values": ["Nowy"]}]}),
        ("bad-image", {**FULL, "images": ["http://erp.example.com/a.jpg"]}),
        ("bad-many", {**FULL, "images": [f"https://e.example.com/{n}.jpg" for n in range(17)]}),
        ("bad-tax", {**FULL, "tax_settings": {"rates": [{"rate": 23, "country_code": "PL"}]}}),
        ("bad-gpsr", {**FULL, "safety_information": {"type": "TEXT", "description": ""}}),
        ("bad-long", {**FULL, "description": "ż\n" * 19_000}),
    ]
    await publish_json(
        daemon.settings.amqp_url,
        ERP_EXCHANGE,
        [("product.upserted", mid, json.dumps(body).encode()) for mid, body in bad],
    )
    errors = await _dead_letters(daemon.settings.amqp_url, len(bad))
    assert any("parameter needs its Allegro id or its name" in e for e in errors), errors
    assert sum("images" in e for e in errors) == 2, errors
    assert any("tax_settings" in e for e in errors), errors
    assert any("safety_information" in e for e in errors), errors
    assert any("40000" in e and "description" in e for e in errors), errors
    assert await db.fetchval("SELECT count(*) FROM products") == 0
