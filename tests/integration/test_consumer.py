"""The consumer wrapper against the real broker and database.

The catalog handlers are the real ones; one test adds a route whose handler fails on purpose to
show the transient-retry path (the real-thing variant, a database connection killed mid-stream,
runs right beside it).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import asyncpg
import pytest
from pydantic import BaseModel

from allegro_sync.adapters.broker.topology import DEAD_LETTER_QUEUE, ERP_EXCHANGE, ERP_QUEUE
from allegro_sync.adapters.postgres import pool as pg
from allegro_sync.contract import ProductUpserted
from allegro_sync.daemon.consumer import BatchConsumer
from allegro_sync.errors import TransientError
from allegro_sync.handlers import catalog, stock
from allegro_sync.handlers.registry import Route, erp_routes
from allegro_sync.metrics import Metrics
from tests.helpers import TcpProxy, drain_queue, eventually, publish_json, rabbitmq_list


def _product(pid: str, name: str = "Mug") -> bytes:
    return json.dumps(
        {"product_id": pid, "ean": "5901234123457", "name": name, "image_url": None}
    ).encode()


@pytest.fixture
async def start_consumer(
    amqp: aio_pika.abc.AbstractRobustConnection, db: asyncpg.Pool
) -> AsyncIterator[object]:
    started: list[BatchConsumer] = []

    async def start(routes: dict[str, Route] | None = None) -> BatchConsumer:
        consumer = BatchConsumer(
            connection=amqp,
            pool=db,
            queue_name=ERP_QUEUE,
            routes=routes if routes is not None else erp_routes(),
            metrics=Metrics(),
            prefetch=50,
        )
        await consumer.start()
        started.append(consumer)
        return consumer

    yield start
    for consumer in started:
        await consumer.stop(5)


async def test_bad_input_is_dead_lettered_with_reason_and_the_rest_flows(
    start_consumer: object, amqp_url: str, db: asyncpg.Pool
) -> None:
    await start_consumer()  # type: ignore[operator]
    await publish_json(
        amqp_url,
        ERP_EXCHANGE,
        [
            ("product.upserted", "m-bad-json", b"{not json"),
            ("product.upserted", "m-bad-schema", json.dumps({"product_id": "p1"}).encode()),
            ("no.such.type", "m-unknown", b"{}"),
            ("product.upserted", "m-good", _product("p1")),
        ],
    )

    async def product_stored() -> bool:
        return bool(await db.fetchval("SELECT count(*) FROM products WHERE id = 'p1'"))

    await eventually(product_stored)
    dead = await drain_queue(amqp_url, DEAD_LETTER_QUEUE)
    reasons = {m.message_id: str((m.headers or {}).get("x-error")) for m in dead}
    assert set(reasons) == {"m-bad-json", "m-bad-schema", "m-unknown"}
    assert reasons["m-bad-json"].startswith("invalid JSON")
    assert (
        reasons["m-bad-schema"].startswith("schema mismatch") and "name" in reasons["m-bad-schema"]
    )
    assert reasons["m-unknown"] == "unknown routing key 'no.such.type'"
    # dead letters keep the original body and type for a later replay
    bad_json = next(m for m in dead if m.message_id == "m-bad-json")
    assert bad_json.body == b"{not json"
    assert (bad_json.headers or {})["x-original-routing-key"] == "product.upserted"


async def test_redelivered_message_id_has_one_effect(
    start_consumer: object, amqp_url: str, db: asyncpg.Pool
) -> None:
    await start_consumer()  # type: ignore[operator]
    await publish_json(
        amqp_url,
        ERP_EXCHANGE,
        [("product.upserted", "same-id", _product("p1", "first"))] * 3,
    )
    await publish_json(
        amqp_url, ERP_EXCHANGE, [("product.upserted", "same-id", _product("p1", "changed"))]
    )

    async def three_seen() -> bool:
        return bool(
            await db.fetchval("SELECT count(*) = 1 FROM inbox WHERE message_id = 'same-id'")
        )

    await eventually(three_seen)
    await asyncio.sleep(0.3)
    assert await db.fetchval("SELECT name FROM products WHERE id = 'p1'") == "first"


class Ping(BaseModel):
    n: int


class LooseStock(BaseModel):
    """``stock.changed`` without the contract's bounds: what reaches the database's own checks."""

    product_id: str
    quantity: int
    version: int


class LooseProduct(ProductUpserted):
    """``product.upserted`` whose text may hold what the database refuses."""

    product_id: str
    ean: str | None = None
    name: str


async def test_values_only_the_database_refuses_are_dead_lettered_at_once(
    start_consumer: object, amqp_url: str, db: asyncpg.Pool
) -> None:
    # the real handlers' SQL, behind schemas that let the values through
    consumer = await start_consumer(  # type: ignore[operator]
        {
            "stock.changed": Route(LooseStock, handle_many=stock.propagate_stock),
            "product.upserted": Route(LooseProduct, catalog.upsert_product),
        }
    )
    stock_body = {"product_id": "p1", "quantity": 1, "version": 1}
    await publish_json(
        amqp_url,
        ERP_EXCHANGE,
        [
            ("stock.changed", "s-int4", json.dumps({**stock_body, "quantity": 2**40}).encode()),
            ("stock.changed", "s-int8", json.dumps({**stock_body, "version": 2**64}).encode()),
            ("stock.changed", "s-good", json.dumps(stock_body).encode()),
            (
                "product.upserted",
                "p-nul",
                json.dumps({"product_id": "p1", "name": "Jan Kowalski\u0000"}).encode(),
            ),
        ],
    )
    dead: list[aio_pika.abc.AbstractIncomingMessage] = []

    async def three_dead() -> bool:
        dead.extend(await drain_queue(amqp_url, DEAD_LETTER_QUEUE, wait=0.2))
        return len(dead) >= 3

    # at once: the first retry delay alone is a second, the fifth ten minutes
    await eventually(three_dead, timeout=5)
    reasons = {m.message_id: str((m.headers or {}).get("x-error")) for m in dead}
    assert set(reasons) == {"s-int4", "s-int8", "p-nul"}
    assert all(r.startswith("bad input: the database refused a value") for r in reasons.values())
    assert "int32 range" in reasons["s-int4"] and "int64 range" in reasons["s-int8"]
    assert "CharacterNotInRepertoire" in reasons["p-nul"] and "Kowalski" not in reasons["p-nul"]
    assert str(2**40) not in reasons["s-int4"]
    assert consumer.stats.outcomes.get("retry") is None
    assert await db.fetchval("SELECT quantity FROM product_stock WHERE product_id = 'p1'") == 1
    assert await db.fetchval("SELECT count(*) FROM products") == 0


async def test_transient_failure_is_retried_later_then_succeeds(
    start_consumer: object, amqp_url: str, db: asyncpg.Pool
) -> None:
    attempts: list[int] = []

    async def flaky(message: Ping, conn: asyncpg.Connection) -> None:
        attempts.append(message.n)
        await conn.execute(
            "INSERT INTO price_lists (id, name) VALUES ($1, 'written before failing')",
            f"attempt-{len(attempts)}",
        )
        if len(attempts) < 3:
            raise TransientError("Allegro answered 503")

    consumer = await start_consumer({"ping": Route(Ping, flaky)})  # type: ignore[operator]
    await publish_json(amqp_url, ERP_EXCHANGE, [("ping", "ping-1", b'{"n": 1}')])

    async def succeeded() -> bool:
        return consumer.stats.outcomes.get("ack", 0) == 1

    await eventually(succeeded, timeout=20)
    assert len(attempts) == 3
    assert consumer.stats.outcomes.get("retry") == 2
    # the failed attempts' writes were rolled back with their savepoints
    ids = [r["id"] for r in await db.fetch("SELECT id FROM price_lists WHERE id LIKE 'attempt-%'")]
    assert ids == ["attempt-3"]
    assert await drain_queue(amqp_url, DEAD_LETTER_QUEUE, wait=0.2) == []


async def test_transient_failures_end_in_the_dead_letter_queue(
    start_consumer: object,
    amqp_url: str,
    amqp: aio_pika.abc.AbstractRobustConnection,
    db: asyncpg.Pool,
) -> None:
    async def always_down(message: Ping, conn: asyncpg.Connection) -> None:
        raise TransientError("Allegro answered 503")

    consumer = BatchConsumer(
        connection=amqp,
        pool=db,
        queue_name=ERP_QUEUE,
        routes={"ping": Route(Ping, always_down)},
        metrics=Metrics(),
        retry_delays_ms=(1000, 1000),
    )
    await consumer.start()
    try:
        await publish_json(amqp_url, ERP_EXCHANGE, [("ping", "ping-2", b'{"n": 2}')])

        async def dead() -> bool:
            return consumer.stats.outcomes.get("dead", 0) == 1

        await eventually(dead, timeout=20)
    finally:
        await consumer.stop(5)
    letters = await drain_queue(amqp_url, DEAD_LETTER_QUEUE)
    assert [m.message_id for m in letters] == ["ping-2"]
    assert "gave up after 3 attempts" in str((letters[0].headers or {})["x-error"])


async def test_killed_database_connections_pause_consumption_without_losing_messages(
    start_consumer: object, amqp_url: str, db: asyncpg.Pool, database_url: str
) -> None:
    consumer = await start_consumer()  # type: ignore[operator]
    total = 600
    messages = [("product.upserted", f"m-{i}", _product(f"p{i}")) for i in range(total)]
    publisher = asyncio.create_task(publish_json(amqp_url, ERP_EXCHANGE, messages))
    admin = await asyncpg.connect(database_url)
    for _ in range(5):
        await asyncio.sleep(0.05)
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    await admin.close()
    await publisher

    async def all_stored() -> int | None:
        # a connection of its own: the test pool's connections were terminated too
        conn = await asyncpg.connect(database_url)
        count = await conn.fetchval("SELECT count(*) FROM products")
        await conn.close()
        return count if count == total else None

    await eventually(all_stored, timeout=30)
    assert consumer.stats.outcomes.get("dead", 0) == 0
    assert consumer.stats.outcomes.get("retry", 0) == 0  # a database outage spends no attempts
    assert await drain_queue(amqp_url, DEAD_LETTER_QUEUE, wait=0.2) == []


async def test_a_failing_handler_does_not_take_its_batch_down(
    start_consumer: object, amqp_url: str, db: asyncpg.Pool
) -> None:
    from allegro_sync.errors import BadInput

    async def picky(message: Ping, conn: asyncpg.Connection) -> None:
        await conn.execute("INSERT INTO price_lists (id, name) VALUES ($1, 'x')", f"n{message.n}")
        if message.n == 3:
            raise BadInput("three is not allowed")

    consumer = await start_consumer({"ping": Route(Ping, picky)})  # type: ignore[operator]
    await publish_json(
        amqp_url, ERP_EXCHANGE, [("ping", f"p{n}", f'{{"n": {n}}}'.encode()) for n in range(1, 7)]
    )

    async def settled() -> bool:
        return sum(consumer.stats.outcomes.values()) == 6

    await eventually(settled)
    stored = {r["id"] for r in await db.fetch("SELECT id FROM price_lists WHERE id LIKE 'n%'")}
    assert stored == {"n1", "n2", "n4", "n5", "n6"}
    dead = await drain_queue(amqp_url, DEAD_LETTER_QUEUE)
    assert [m.message_id for m in dead] == ["p3"]
    assert "three is not allowed" in str((dead[0].headers or {})["x-error"])


async def test_every_message_of_a_busy_queue_is_settled_once(
    start_consumer: object, amqp_url: str, db: asyncpg.Pool, vhost: str
) -> None:
    """Batches are acked with one multiple ack each; bad ones go to the dead letters first.
    Nothing stays unacked and nothing is handled twice."""
    consumer = await start_consumer()  # type: ignore[operator]
    messages = [("product.upserted", f"m-{n}", _product(f"p{n}")) for n in range(600)]
    messages[150] = ("product.upserted", "m-150", b"{broken")
    messages[420] = ("no.such.type", "m-420", b"{}")
    await publish_json(amqp_url, ERP_EXCHANGE, messages)

    async def all_settled() -> bool:
        return sum(consumer.stats.outcomes.values()) == 600  # type: ignore[attr-defined]

    await eventually(all_settled, timeout=30)
    assert consumer.stats.outcomes == {"ack": 598, "dead": 2}  # type: ignore[attr-defined]
    assert await db.fetchval("SELECT count(*) FROM products") == 598
    dead = await drain_queue(amqp_url, DEAD_LETTER_QUEUE)
    assert sorted(m.message_id or "" for m in dead) == ["m-150", "m-420"]
    await asyncio.sleep(0.5)  # acks are not answered; give the broker a moment to count them
    queues = rabbitmq_list(vhost, "list_queues", "name", "messages")
    [queue] = [q for q in queues if q["name"] == ERP_QUEUE]
    assert queue["messages"] == 0  # ready + unacknowledged
    assert consumer.stats.batches > 1  # type: ignore[attr-defined]


class Run(BaseModel):
    n: list[int]


def _split_run(body: dict[str, list[int]]) -> list[tuple[str, str, object]]:
    return [("ping", f"ping-{n}", {"n": n}) for n in body["n"]]


async def test_a_failing_run_is_split_and_only_its_failing_part_is_retried(
    amqp_url: str, amqp: aio_pika.abc.AbstractRobustConnection, db: asyncpg.Pool
) -> None:
    """A message carrying many events (a journal run) that fails is replaced by one message
    per event, sent where the run would have gone (here the delay queue): the good parts are
    handled after the delay, the failing one runs through its own retries into the dead
    letters."""

    async def store(n: int, conn: asyncpg.Connection) -> None:
        if n == 2:
            raise TransientError("Allegro answered 503")
        await conn.execute("INSERT INTO price_lists (id, name) VALUES ($1, 'x')", f"part-{n}")

    async def one(message: Ping, conn: asyncpg.Connection) -> None:
        await store(message.n, conn)

    async def run(message: Run, conn: asyncpg.Connection) -> None:
        for n in message.n:
            await store(n, conn)

    consumer = BatchConsumer(
        connection=amqp,
        pool=db,
        queue_name=ERP_QUEUE,
        routes={"ping": Route(Ping, one), "run": Route(Run, run, split=_split_run)},
        metrics=Metrics(),
        retry_delays_ms=(1000, 1000),
    )
    await consumer.start()
    try:
        await publish_json(amqp_url, ERP_EXCHANGE, [("run", "run-1-3", b'{"n": [1, 2, 3]}')])

        async def dead() -> bool:
            return consumer.stats.outcomes.get("dead", 0) == 1

        await eventually(dead, timeout=20)
    finally:
        await consumer.stop(5)
    assert consumer.stats.outcomes == {"split": 1, "ack": 2, "retry": 1, "dead": 1}
    stored = {r["id"] for r in await db.fetch("SELECT id FROM price_lists WHERE id LIKE 'part-%'")}
    assert stored == {"part-1", "part-3"}  # the run's own writes were rolled back
    letters = await drain_queue(amqp_url, DEAD_LETTER_QUEUE)
    assert [m.message_id for m in letters] == ["ping-2"]
    headers = letters[0].headers or {}
    assert headers["x-split-from"] == "run-1-3"
    assert "gave up after 3 attempts" in str(headers["x-error"])


async def test_a_database_outage_in_a_prepare_step_pauses_without_spending_attempts(
    amqp_url: str,
    amqp: aio_pika.abc.AbstractRobustConnection,
    db: asyncpg.Pool,
    database_url: str,
) -> None:
    """Issue 19, 4b: a route's prepare reads the database (as the order routes read the active
    accounts) through a TCP proxy that is cut: the batch waits and is prepared again, in
    process; with two short delays a spent attempt per failure would dead-letter it."""
    proxy = TcpProxy("127.0.0.1", urlsplit(database_url).port or 5432)
    await proxy.start()
    parts = urlsplit(database_url)
    host = parts.netloc.rsplit(":", 1)[0]
    prepare_pool = await pg.create_pool(
        urlunsplit(parts._replace(netloc=f"{host}:{proxy.port}")), min_size=1, max_size=2
    )
    await db.execute(
        "INSERT INTO accounts (allegro_user_id, sandbox, login, name) VALUES ('c', false, 'c', 'c')"
    )

    async def prepare_many(messages: list[Ping]) -> list[object]:
        active = await prepare_pool.fetchval("SELECT count(*) FROM accounts WHERE active")
        return [(m.n, active) for m in messages]

    async def handle_many(prepared: list[tuple[int, int]], conn: asyncpg.Connection) -> None:
        for n, active in prepared:
            await conn.execute(
                "INSERT INTO price_lists (id, name) VALUES ($1, $2)", f"ping-{n}", str(active)
            )

    metrics = Metrics()
    consumer = BatchConsumer(
        connection=amqp,
        pool=db,
        queue_name=ERP_QUEUE,
        routes={"ping": Route(Ping, prepare_many=prepare_many, handle_many=handle_many)},
        metrics=metrics,
        retry_delays_ms=(100, 100),
    )
    await consumer.start()
    try:
        await proxy.stop()  # the database is gone for the prepare step
        await publish_json(amqp_url, ERP_EXCHANGE, [("ping", "ping-7", b'{"n": 7}')])

        async def paused() -> bool:
            value = metrics.registry.get_sample_value(
                "allegro_sync_consumer_database_pauses_total", {"queue": ERP_QUEUE}
            )
            return (value or 0) >= 3

        await eventually(paused, timeout=20)
        assert consumer.stats.outcomes == {}  # nothing settled, nothing spent
        await proxy.start()

        async def stored() -> bool:
            return bool(await db.fetchval("SELECT count(*) FROM price_lists WHERE id = 'ping-7'"))

        await eventually(stored, timeout=30)
        await eventually(lambda: _acked(consumer), timeout=10)
        assert consumer.stats.outcomes == {"ack": 1}
        assert await drain_queue(amqp_url, DEAD_LETTER_QUEUE, wait=0.2) == []
    finally:
        await consumer.stop(5)
        await prepare_pool.close()
        await proxy.stop()


async def _acked(consumer: BatchConsumer) -> bool:
    return consumer.stats.outcomes.get("ack", 0) == 1
