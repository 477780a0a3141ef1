"""ERP messages that can never succeed (issue 14, findings 4, 6, 8, 15), end to end: each goes
to the dead letters at once with its reason, nothing reaches the database or Allegro, and the
good messages around them still flow."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg

from allegro_sync.adapters.broker.topology import (
    ERP_EXCHANGE,
    ERP_INVOICE_QUEUE,
    ERP_QUEUE,
    JOURNAL_QUEUE,
)
from allegro_sync.daemon.app import Daemon
from tests.e2e.conftest import Admin, Emulator
from tests.e2e.flows import (
    _dead_letters,
    bound_offers,
    commands,
    emulator_offer,
    erp,
    price_changed,
    settled,
    stock_changed,
    stock_set,
)
from tests.helpers import eventually, publish_json, rabbitmq_list

# Well inside every retry delay but the first (1 s): a message retried as if its failure were
# transient reaches the dead letters only after 1 + 5 + 30 + 120 + 600 seconds.
AT_ONCE = 20


async def _publish(daemon: Daemon, *messages: tuple[str, str, Any]) -> None:
    await publish_json(
        daemon.settings.amqp_url,
        ERP_EXCHANGE,
        [(key, message_id, json.dumps(body).encode()) for key, message_id, body in messages],
    )


async def test_numbers_and_text_the_database_refuses_are_dead_lettered_at_once(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    seller, _, ids = await bound_offers(
        daemon, admin, emulator, db, "sklep-liczby", {"a": "P1"}, stock_control=True
    )
    stock = {"product_id": "P1", "quantity": 3, "version": 1}
    await _publish(
        daemon,
        ("stock.changed", "bad-1e20", {**stock, "quantity": 1e20}),
        ("stock.changed", "bad-int4", {**stock, "quantity": 2**31}),
        ("stock.changed", "bad-int8", {**stock, "version": 2**63}),
        ("stock.changed", "bad-true", {**stock, "quantity": True}),
        ("stock.changed", "bad-text", {**stock, "quantity": "2"}),
        ("product.upserted", "bad-nul", {"product_id": "P9", "ean": None, "name": "Mug\x00"}),
        ("product.upserted", "bad-lf", {"product_id": "P\r\n9", "ean": None, "name": "Mug"}),
    )
    errors = await _dead_letters(daemon.settings.amqp_url, 7)
    assert len(errors) == 7 and all(e.startswith("schema mismatch") for e in errors), errors
    assert sum("quantity" in e for e in errors) == 4, errors
    assert any("version" in e for e in errors), errors
    assert sum("control character" in e for e in errors) == 2, errors
    # nothing was written, nothing went to Allegro; a good message still flows
    assert await db.fetchval("SELECT count(*) FROM product_stock") == 0
    assert await db.fetchval("SELECT count(*) FROM products WHERE id LIKE 'P%9'") == 0
    await stock_set(daemon, db, emulator, seller, ids["a"], stock_changed("P1", 4, 1))


async def test_prices_must_be_positive_text_in_the_offers_currency(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    seller, _, ids = await bound_offers(
        daemon, admin, emulator, db, "sklep-waluty", {"a": "P1"}, sync_prices=True
    )
    _, price = price_changed("P1", "24.90", 1)
    await _publish(
        daemon,
        ("price.changed", "bad-zero", {**price, "price": "0"}),
        ("price.changed", "bad-negative", {**price, "price": "-1.00"}),
        ("price.changed", "bad-number", {**price, "price": 24.9}),
        ("price.changed", "bad-huge", {**price, "price": "1e20"}),
        ("price.changed", "bad-xyz", {**price, "currency": "XYZ"}),
        ("price.changed", "bad-eur", {**price, "currency": "EUR"}),
    )
    errors = await _dead_letters(daemon.settings.amqp_url, 6)
    assert sum(e.startswith("schema mismatch") and "price" in e for e in errors) == 4, errors
    [mismatch] = [e for e in errors if "EUR" in e]
    assert mismatch.startswith("bad input") and "PLN" in mismatch and ids["a"] in mismatch
    assert any("XYZ" in e for e in errors), errors
    assert await db.fetchval("SELECT count(*) FROM product_prices") == 0
    await settled(daemon, db)
    assert await commands(emulator, seller) == []
    assert (await emulator_offer(emulator, ids["a"]))["price"] == "19.99"

    await erp(daemon, db, ("price.changed", price))
    await settled(daemon, db)
    [command] = await commands(emulator, seller)
    assert command["body"]["modification"]["price"] == {"amount": "24.90", "currency": "PLN"}


async def test_an_id_reused_by_another_type_is_a_new_message_and_a_redelivery_is_not(
    daemon: Daemon, db: asyncpg.Pool
) -> None:
    product = {"product_id": "P42", "ean": None, "name": "Kubek"}
    price_list = {"price_list": "hurt", "name": "Hurt"}
    await _publish(
        daemon,
        ("product.upserted", "42", product),
        ("price_list.upserted", "42", price_list),
        ("product.upserted", "42", {**product, "name": "redelivered, not applied"}),
    )

    async def both_handled() -> bool:
        count = await db.fetchval("SELECT count(*) FROM inbox WHERE message_id = '42'")
        return bool(count == 2)

    await eventually(both_handled)
    await asyncio.sleep(0.5)  # the redelivery too
    assert await db.fetchval("SELECT name FROM products WHERE id = 'P42'") == "Kubek"
    assert await db.fetchval("SELECT name FROM price_lists WHERE id = 'hurt'") == "Hurt"
    types = [r["message_type"] for r in await db.fetch("SELECT message_type FROM inbox")]
    assert sorted(types) == ["price_list.upserted", "product.upserted"]


async def test_a_message_over_its_size_limit_is_dead_lettered_before_it_is_parsed(
    daemon: Daemon, db: asyncpg.Pool
) -> None:
    limit, invoice_limit = (
        daemon.settings.max_message_bytes,
        daemon.settings.max_invoice_message_bytes,
    )
    assert (limit, invoice_limit) == (256 * 1024, 5 * 1024 * 1024)
    # not even JSON: a parser would say so, the size check comes first
    await publish_json(
        daemon.settings.amqp_url,
        ERP_EXCHANGE,
        [
            ("stock.changed", "big-stock", b"{" + b" " * limit),
            ("invoice.added", "big-invoice", b"{" + b" " * invoice_limit),
            # an invoice under its own limit is not held to the other one
            ("invoice.added", "invoice-size", b"{" + b" " * (limit + 10)),
        ],
    )
    errors = await _dead_letters(daemon.settings.amqp_url, 3)
    assert sorted(errors) == sorted(
        [
            f"message too large: {limit + 1} bytes, stock.changed takes at most {limit} bytes",
            f"message too large: {invoice_limit + 1} bytes, invoice.added takes at most"
            f" {invoice_limit} bytes",
            "invalid JSON: Invalid JSON: EOF while parsing an object at line 1 column 262155",
        ]
    ), errors
    assert await db.fetchval("SELECT count(*) FROM inbox") == 0


async def test_the_prefetch_of_each_queue_bounds_the_bodies_held_in_memory(
    daemon: Daemon, vhost: str
) -> None:
    settings = daemon.settings
    consumers = {
        str(c["queue_name"]): c["prefetch_count"]
        for c in rabbitmq_list(vhost, "list_consumers", "queue_name", "prefetch_count")
    }
    assert consumers == {
        ERP_QUEUE: settings.consumer_prefetch,
        ERP_INVOICE_QUEUE: settings.invoice_consumer_prefetch,
        JOURNAL_QUEUE: settings.consumer_prefetch,
    }
    held = {
        ERP_QUEUE: settings.consumer_prefetch * settings.max_message_bytes,
        ERP_INVOICE_QUEUE: settings.invoice_consumer_prefetch * settings.max_invoice_message_bytes,
    }
    assert held == {ERP_QUEUE: 150 * 1024 * 1024, ERP_INVOICE_QUEUE: 20 * 1024 * 1024}
