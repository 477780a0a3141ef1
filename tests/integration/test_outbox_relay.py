"""The outbox relay publishes each row once, with confirms, also with two relays at once."""

from __future__ import annotations

import asyncio
from collections import Counter

import aio_pika
import asyncpg
import pytest

from allegro_sync.adapters.broker.publisher import ConfirmingPublisher
from allegro_sync.adapters.broker.topology import ERP_OUTBOUND_QUEUE, EVENTS_EXCHANGE
from allegro_sync.daemon.outbox_relay import OutboxRelay
from allegro_sync.metrics import Metrics
from tests.helpers import drain_queue, eventually


async def _fill_outbox(db: asyncpg.Pool, start: int, count: int) -> None:
    await db.executemany(
        "INSERT INTO outbox (message_id, exchange, routing_key, payload) VALUES ($1, $2, $3, $4)",
        [
            (f"offer.bound:{i}", EVENTS_EXCHANGE, "offer.bound", {"offer_id": str(i)})
            for i in range(start, start + count)
        ],
    )


async def test_two_relays_publish_every_row_exactly_once(
    db: asyncpg.Pool, database_url: str, amqp: aio_pika.abc.AbstractRobustConnection, amqp_url: str
) -> None:
    await _fill_outbox(db, 0, 1500)
    relays = [
        OutboxRelay(
            dsn=database_url,
            pool=db,
            publisher=await ConfirmingPublisher.open(amqp),
            metrics=Metrics(),
            batch_size=100,
        )
        for _ in range(2)
    ]
    for relay in relays:
        await relay.start()
    # rows written while the relays run are woken by NOTIFY, not only by the sweep
    await asyncio.sleep(0.3)
    await _fill_outbox(db, 1500, 500)

    async def empty() -> bool:
        return await db.fetchval("SELECT count(*) FROM outbox") == 0

    await eventually(empty, timeout=30)
    for relay in relays:
        await relay.stop(5)

    received = await drain_queue(amqp_url, ERP_OUTBOUND_QUEUE)
    counts = Counter(m.message_id for m in received)
    assert len(counts) == 2000
    assert max(counts.values()) == 1
    assert all(r.published > 0 for r in relays), [r.published for r in relays]
    sample = next(m for m in received if m.message_id == "offer.bound:7")
    assert sample.body == b'{"offer_id":"7"}'
    assert sample.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert sample.content_type == "application/json"


async def test_rows_stay_in_the_outbox_while_the_broker_refuses_them(
    db: asyncpg.Pool, database_url: str, amqp: aio_pika.abc.AbstractRobustConnection
) -> None:
    await db.execute(
        "INSERT INTO outbox (message_id, exchange, routing_key, payload)"
        " VALUES ('x:1', 'no-such-exchange', 'k', '{}')"
    )
    relay = OutboxRelay(
        dsn=database_url, pool=db, publisher=await ConfirmingPublisher.open(amqp), metrics=Metrics()
    )
    with pytest.raises(aio_pika.exceptions.AMQPError):
        await relay.relay_batch()
    assert await db.fetchval("SELECT count(*) FROM outbox") == 1
