"""Journal messages are taken only from this installation (issue 14 finding 1), against the real
broker and database: what the daemon's publisher signs (and the consumer's own retries and
split parts of it) is handled; an unsigned message, one signed under another key, or a signed
body replayed under another type or id goes to the dead letters at once, unhandled."""

from __future__ import annotations

import aio_pika
import asyncpg
from pydantic import BaseModel

from allegro_sync.adapters.broker.publisher import ConfirmingPublisher, OutgoingMessage
from allegro_sync.adapters.broker.signing import (
    SIGNATURE_HEADER,
    UNSIGNED,
    MessageSigner,
)
from allegro_sync.adapters.broker.topology import (
    DEAD_LETTER_QUEUE,
    ERP_EXCHANGE,
    JOURNAL_EXCHANGE,
    JOURNAL_QUEUE,
)
from allegro_sync.daemon.consumer import BatchConsumer
from allegro_sync.errors import TransientError
from allegro_sync.handlers.registry import Route
from allegro_sync.metrics import Metrics
from tests.helpers import drain_queue, eventually, publish_json

KEY = "journal-signing-test-key-0123456789abcdef"
OTHER = "someone-elses-key-0123456789abcdef012345"


class Ping(BaseModel):
    n: int


class Run(BaseModel):
    n: list[int]


def _split_run(body: dict[str, list[int]]) -> list[tuple[str, str, object]]:
    return [("ping", f"ping-{n}", {"n": n}) for n in body["n"]]


def _consumer(
    amqp: aio_pika.abc.AbstractRobustConnection, db: asyncpg.Pool, signer: MessageSigner
) -> BatchConsumer:
    async def store(n: int, conn: asyncpg.Connection) -> None:
        if n == 2:
            raise TransientError("Allegro answered 503")
        await conn.execute("INSERT INTO price_lists (id, name) VALUES ($1, 'x')", f"part-{n}")

    async def one(message: Ping, conn: asyncpg.Connection) -> None:
        await store(message.n, conn)

    async def run(message: Run, conn: asyncpg.Connection) -> None:
        for n in message.n:
            await store(n, conn)

    return BatchConsumer(
        connection=amqp,
        pool=db,
        queue_name=JOURNAL_QUEUE,
        routes={"ping": Route(Ping, one), "run": Route(Run, run, split=_split_run)},
        metrics=Metrics(),
        retry_delays_ms=(1000, 1000),
        signer=signer,
        verify=True,
    )


async def _stored(db: asyncpg.Pool) -> set[str]:
    rows = await db.fetch("SELECT id FROM price_lists WHERE id LIKE 'part-%'")
    return {r["id"] for r in rows}


async def test_only_messages_signed_by_this_installation_are_handled(
    amqp_url: str, amqp: aio_pika.abc.AbstractRobustConnection, db: asyncpg.Pool
) -> None:
    signer = MessageSigner([KEY])
    consumer = _consumer(amqp, db, signer)
    await consumer.start()
    publisher = await ConfirmingPublisher.open(amqp, signer)
    try:
        # as a poller publishes: signed; its failing part goes through split, retries and the
        # dead letters, each copy still verified on its way back
        await publisher.publish(
            OutgoingMessage(JOURNAL_EXCHANGE, "run", "run-1-3", {"n": [1, 2, 3]})
        )
        await publisher.publish(OutgoingMessage(JOURNAL_EXCHANGE, "ping", "ping-4", {"n": 4}))
        # forgeries: unsigned, signed under another key, a signed body under another type
        await publish_json(
            amqp_url, JOURNAL_EXCHANGE, [("ping", "forged-5", b'{"n": 5}')], signed_with=None
        )
        await publish_json(
            amqp_url, JOURNAL_EXCHANGE, [("ping", "forged-6", b'{"n": 6}')], signed_with=OTHER
        )
        body = b'{"n": 7}'
        replayed = aio_pika.Message(
            body,
            message_id="forged-7",
            headers={SIGNATURE_HEADER: signer.sign("forged-7", "run", body)},
        )
        channel = await amqp.channel()
        exchange = await channel.get_exchange(JOURNAL_EXCHANGE)
        await exchange.publish(replayed, routing_key="ping")
        renamed = aio_pika.Message(
            b'{"n": 8}',
            message_id="forged-8",
            headers={SIGNATURE_HEADER: signer.sign("ping-8", "ping", b'{"n": 8}')},
        )
        await exchange.publish(renamed, routing_key="ping")
        await channel.close()

        async def done() -> bool:
            return consumer.stats.outcomes.get("dead", 0) == 5

        await eventually(done, timeout=20)
    finally:
        await publisher.close()
        await consumer.stop(5)
    assert await _stored(db) == {"part-1", "part-3", "part-4"}
    letters = {m.message_id: m for m in await drain_queue(amqp_url, DEAD_LETTER_QUEUE)}
    assert set(letters) == {"ping-2", "forged-5", "forged-6", "forged-7", "forged-8"}
    assert "gave up after 3 attempts" in str((letters["ping-2"].headers or {})["x-error"])
    for forged in ("forged-5", "forged-6", "forged-7", "forged-8"):
        headers = letters[forged].headers or {}
        assert headers["x-error"] == UNSIGNED
        assert "x-attempt" not in headers  # at once, not after retries
    assert await db.fetchval("SELECT count(*) FROM inbox WHERE message_id LIKE 'forged-%'") == 0


async def test_a_redelivered_forgery_is_dead_lettered_again_and_never_handled(
    amqp_url: str, amqp: aio_pika.abc.AbstractRobustConnection, db: asyncpg.Pool
) -> None:
    consumer = _consumer(amqp, db, MessageSigner([KEY]))
    await consumer.start()
    try:
        await publish_json(
            amqp_url,
            JOURNAL_EXCHANGE,
            [("ping", "forged", b'{"n": 9}')] * 3,
            signed_with=OTHER,
        )

        async def done() -> bool:
            return consumer.stats.outcomes.get("dead", 0) == 3

        await eventually(done, timeout=20)
    finally:
        await consumer.stop(5)
    assert await _stored(db) == set()
    assert len(await drain_queue(amqp_url, DEAD_LETTER_QUEUE)) == 3


async def test_messages_signed_under_the_previous_key_verify_during_a_rotation(
    amqp_url: str, amqp: aio_pika.abc.AbstractRobustConnection, db: asyncpg.Pool
) -> None:
    """A replica not yet restarted with the new key, or messages queued before the restart."""
    consumer = _consumer(amqp, db, MessageSigner([OTHER, KEY]))
    await consumer.start()
    try:
        await publish_json(
            amqp_url, JOURNAL_EXCHANGE, [("ping", "old", b'{"n": 1}')], signed_with=KEY
        )

        async def handled() -> bool:
            return await _stored(db) == {"part-1"}

        await eventually(handled, timeout=20)
    finally:
        await consumer.stop(5)


async def test_the_erp_queue_needs_no_signature(
    amqp_url: str, amqp: aio_pika.abc.AbstractRobustConnection, db: asyncpg.Pool
) -> None:
    """Only the journal consumer verifies; the ERP's own messages are not signed."""
    from allegro_sync.adapters.broker.topology import ERP_QUEUE

    async def one(message: Ping, conn: asyncpg.Connection) -> None:
        await conn.execute(
            "INSERT INTO price_lists (id, name) VALUES ($1, 'x')", f"part-{message.n}"
        )

    consumer = BatchConsumer(
        connection=amqp,
        pool=db,
        queue_name=ERP_QUEUE,
        routes={"ping": Route(Ping, one)},
        metrics=Metrics(),
        signer=MessageSigner([KEY]),
    )
    await consumer.start()
    try:
        await publish_json(amqp_url, ERP_EXCHANGE, [("ping", "erp-1", b'{"n": 1}')])

        async def handled() -> bool:
            return await _stored(db) == {"part-1"}

        await eventually(handled, timeout=20)
    finally:
        await consumer.stop(5)
