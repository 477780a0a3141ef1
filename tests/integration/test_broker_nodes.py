"""The broker connection over several addresses (the nodes of a cluster): a dead address is
passed over at start, and a lost node is replaced by the next one with consumers restored."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit, urlunsplit

import aio_pika

from allegro_sync.adapters.broker.connection import connect
from tests.helpers import TcpProxy, eventually, free_port


def _through(url: str, port: int) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=f"{parts.username}:{parts.password}@127.0.0.1:{port}"))


async def test_a_dead_first_address_is_passed_over(amqp_url: str) -> None:
    dead = _through(amqp_url, free_port())
    connection = await connect(f"{dead},{amqp_url}", wait_seconds=20)
    try:
        channel = await connection.channel()
        await channel.declare_queue("nodes.probe", auto_delete=True)
    finally:
        await connection.close()


async def test_a_lost_node_is_replaced_by_the_next_with_consumers_back(amqp_url: str) -> None:
    port = urlsplit(amqp_url).port or 5672
    first, second = TcpProxy("127.0.0.1", port), TcpProxy("127.0.0.1", port)
    await first.start()
    await second.start()
    connection = await connect(
        f"{_through(amqp_url, first.port)},{_through(amqp_url, second.port)}", wait_seconds=20
    )
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(
            "nodes.failover", durable=True, arguments={"x-queue-type": "quorum"}
        )
        got: list[bytes] = []

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            got.append(message.body)
            await message.ack()

        await queue.consume(on_message)
        await first.stop()  # the node goes away for good: cut, and refusing new connections

        async def back() -> bool:
            return connection.connected.is_set() and connection.url.port == second.port

        await eventually(back, timeout=60, interval=0.2)
        publisher = await aio_pika.connect(amqp_url)
        out = await publisher.channel(publisher_confirms=True)
        await out.default_exchange.publish(aio_pika.Message(b"after"), routing_key=queue.name)
        await publisher.close()
        await eventually(lambda: asyncio.sleep(0, got == [b"after"]), timeout=30)
        await queue.delete(if_unused=False, if_empty=False)
    finally:
        await connection.close()
        await second.stop()
