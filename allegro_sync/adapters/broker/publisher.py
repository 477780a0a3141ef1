"""Publishing with publisher confirms: a publish returns only once the broker has the message."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractRobustConnection


@dataclass(frozen=True)
class OutgoingMessage:
    """A message to publish; ``message_id`` is derived from the fact it announces."""

    exchange: str
    routing_key: str
    message_id: str
    payload: Any
    headers: Mapping[str, Any] = field(default_factory=dict)


def encode(payload: Any) -> bytes:
    """JSON body of a message (UTF-8, no ASCII escaping, stable key order)."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str).encode()


class ConfirmingPublisher:
    """Publishes persistent, mandatory messages on a confirming channel.

    Unroutable messages raise (``on_return_raises``) instead of silently vanishing.
    """

    def __init__(self, channel: AbstractChannel) -> None:
        self._channel = channel
        self._exchanges: dict[str, AbstractExchange] = {}

    @classmethod
    async def open(cls, connection: AbstractRobustConnection) -> ConfirmingPublisher:
        """A publisher on a fresh confirming channel of ``connection``."""
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        return cls(channel)

    async def _exchange(self, name: str) -> AbstractExchange:
        if name == "":
            return self._channel.default_exchange
        if name not in self._exchanges:
            self._exchanges[name] = await self._channel.get_exchange(name, ensure=False)
        return self._exchanges[name]

    async def publish(self, message: OutgoingMessage) -> None:
        """Publish one message and wait for its confirm."""
        exchange = await self._exchange(message.exchange)
        await exchange.publish(
            aio_pika.Message(
                body=encode(message.payload),
                content_type="application/json",
                message_id=message.message_id,
                headers=dict(message.headers),
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            ),
            routing_key=message.routing_key,
            mandatory=True,
        )

    async def publish_raw(self, exchange: str, routing_key: str, message: aio_pika.Message) -> None:
        """Publish a prepared message (retries and dead letters keep their original body)."""
        target = await self._exchange(exchange)
        await target.publish(message, routing_key=routing_key, mandatory=True)

    async def publish_many(self, messages: Sequence[OutgoingMessage]) -> None:
        """Publish with many confirms in flight at once; raises if any publish failed."""
        await asyncio.gather(*(self.publish(m) for m in messages))

    async def close(self) -> None:
        """Close the channel."""
        await self._channel.close()
