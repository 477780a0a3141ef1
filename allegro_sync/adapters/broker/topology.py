"""Every exchange, queue and dead-letter argument of the contract (design.md section 4).

All exchanges are durable topics, all queues durable quorum queues whose dead-letter route leads
to ``allegro-sync.dead-letters``. Delayed retries use one quorum queue per (consumer queue, delay)
whose expired messages are dead-lettered back to the consumer queue; a queue per delay avoids a
long delay at the head of the queue holding up shorter ones behind it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel

ERP_EXCHANGE = "erp.events"
JOURNAL_EXCHANGE = "allegro-sync.journal"
EVENTS_EXCHANGE = "allegro-sync.events"
DEAD_LETTER_EXCHANGE = "allegro-sync.dead-letter"
DEAD_LETTER_QUEUE = "allegro-sync.dead-letters"

ERP_QUEUE = "allegro-sync.erp"
JOURNAL_QUEUE = "allegro-sync.journal"
# Where ERP-bound messages wait for the ERP; declared by us so that nothing published is lost
# while the ERP is not yet consuming.
ERP_OUTBOUND_QUEUE = "allegro-sync.events.erp"

# RabbitMQ permissions (configure, write, read regular expressions on a virtual host) of the two
# broker users (README "Security"): the ERP may only publish to ``erp.events`` and consume its
# queue on ``allegro-sync.events``; it declares nothing (the daemon declares the topology). The
# daemon may use its own names and the default exchange (retries go straight to a queue).
ERP_PERMISSIONS = ("^$", r"^erp\.events$", r"^allegro-sync\.events\.erp$")
_OURS = r"erp\.events|allegro-sync\..*"
DAEMON_PERMISSIONS = (f"^({_OURS})$", rf"^({_OURS}|amq\.default)$", f"^({_OURS})$")

# Safety net for messages that crash the process before the wrapper can decide (quorum queues
# on RabbitMQ 3.10 have no default delivery limit).
DELIVERY_LIMIT = 20
RETRY_DELAYS_MS = (1_000, 5_000, 30_000, 120_000, 600_000)


@dataclass(frozen=True)
class QueueSpec:
    """A consumer queue and the exchange it is bound to."""

    name: str
    exchange: str
    binding_key: str = "#"


CONSUMER_QUEUES = (
    QueueSpec(ERP_QUEUE, ERP_EXCHANGE),
    QueueSpec(JOURNAL_QUEUE, JOURNAL_EXCHANGE),
)
OUTBOUND_QUEUES = (QueueSpec(ERP_OUTBOUND_QUEUE, EVENTS_EXCHANGE),)


def retry_queue_name(queue: str, delay_ms: int) -> str:
    """The delay queue that returns messages to ``queue`` after ``delay_ms``."""
    return f"{queue}.retry.{delay_ms // 1000}s"


def queue_arguments() -> dict[str, Any]:
    """Arguments of every main queue: quorum, dead-letter route, delivery limit."""
    return {
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
        "x-delivery-limit": DELIVERY_LIMIT,
    }


def retry_queue_arguments(target_queue: str, delay_ms: int) -> dict[str, Any]:
    """Arguments of a delay queue: expired messages go back to ``target_queue``."""
    return {
        "x-queue-type": "quorum",
        "x-message-ttl": delay_ms,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": target_queue,
    }


async def declare_topology(channel: AbstractChannel) -> None:
    """Declare everything; idempotent, so every process may call it at start."""
    topic = aio_pika.ExchangeType.TOPIC
    for name in (ERP_EXCHANGE, JOURNAL_EXCHANGE, EVENTS_EXCHANGE):
        await channel.declare_exchange(name, topic, durable=True)
    dlx = await channel.declare_exchange(
        DEAD_LETTER_EXCHANGE, aio_pika.ExchangeType.FANOUT, durable=True
    )
    dead = await channel.declare_queue(
        DEAD_LETTER_QUEUE, durable=True, arguments={"x-queue-type": "quorum"}
    )
    await dead.bind(dlx, routing_key="")
    for spec in CONSUMER_QUEUES + OUTBOUND_QUEUES:
        queue = await channel.declare_queue(spec.name, durable=True, arguments=queue_arguments())
        await queue.bind(spec.exchange, routing_key=spec.binding_key)
    for spec in CONSUMER_QUEUES:
        for delay in RETRY_DELAYS_MS:
            await channel.declare_queue(
                retry_queue_name(spec.name, delay),
                durable=True,
                arguments=retry_queue_arguments(spec.name, delay),
            )
