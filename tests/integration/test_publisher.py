"""The confirming publisher on a real broker: what arrives, and what is refused loudly."""

from __future__ import annotations

import json
import uuid

import aio_pika
import aiormq
import pytest

from allegro_sync.adapters.broker.publisher import ConfirmingPublisher, OutgoingMessage


async def test_a_batch_arrives_whole_with_its_properties(
    amqp: aio_pika.abc.AbstractRobustConnection,
) -> None:
    channel = await amqp.channel()
    exchange = await channel.declare_exchange(f"t-{uuid.uuid4().hex[:6]}", "topic")
    queue = await channel.declare_queue(exclusive=True)
    await queue.bind(exchange, "#")
    publisher = await ConfirmingPublisher.open(amqp)
    messages = [
        OutgoingMessage(exchange.name, "thing.made", f"id-{n}", {"n": n, "name": "żółw <&>"})
        for n in range(500)
    ]
    messages.append(
        OutgoingMessage(exchange.name, "thing.made", "with-headers", {}, {"x-attempt": 2})
    )
    await publisher.publish_many(messages)
    got = []
    while (message := await queue.get(fail=False, no_ack=True)) is not None:
        got.append(message)
    assert [m.message_id for m in got] == [m.message_id for m in messages]
    assert json.loads(got[7].body) == {"n": 7, "name": "żółw <&>"}
    assert {m.content_type for m in got} == {"application/json"}
    assert {m.delivery_mode for m in got} == {aio_pika.DeliveryMode.PERSISTENT}
    assert got[-1].headers == {"x-attempt": 2}
    await publisher.close()


async def test_an_unroutable_message_raises_instead_of_vanishing(
    amqp: aio_pika.abc.AbstractRobustConnection,
) -> None:
    channel = await amqp.channel()
    exchange = await channel.declare_exchange(f"t-{uuid.uuid4().hex[:6]}", "topic")
    publisher = await ConfirmingPublisher.open(amqp)
    with pytest.raises(aiormq.exceptions.PublishError):
        await publisher.publish(OutgoingMessage(exchange.name, "nobody.listens", "lost", {}))
    await publisher.close()
