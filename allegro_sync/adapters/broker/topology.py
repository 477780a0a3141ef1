"""Every exchange, queue and dead-letter argument of the contract (design.md section 4).

All exchanges are durable topics, all queues durable quorum queues whose dead-letter route leads
to ``allegro-sync.dead-letters``.

The ERP's messages are routed by size (issue 14, finding 6): ``invoice.added`` (up to ~4.2 MB of
base64) has a queue of its own, consumed with a small prefetch, so that what the consumers hold
in memory is bounded per queue (prefetch x the largest body). ``erp.events`` is bound with
``#`` to an internal topic exchange, ``allegro-sync.erp.routing``, that routes each known type to
its queue and everything else through its alternate exchange to ``allegro-sync.erp`` (where an
unknown type is dead-lettered with its reason, as before). The routing exchange is ours, so it
can have an alternate exchange; ``erp.events`` already exists on running brokers, and an
exchange's arguments cannot change. Delayed retries use one quorum queue per (consumer queue, delay)
whose expired messages are dead-lettered back to the consumer queue; a queue per delay avoids a
long delay at the head of the queue holding up shorter ones behind it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel

from allegro_sync.contract import ERP_MESSAGES, INVOICE_ADDED

ERP_EXCHANGE = "erp.events"
JOURNAL_EXCHANGE = "allegro-sync.journal"
EVENTS_EXCHANGE = "allegro-sync.events"
DEAD_LETTER_EXCHANGE = "allegro-sync.dead-letter"
DEAD_LETTER_QUEUE = "allegro-sync.dead-letters"

# internal: the ERP's messages by type to their queues; what no queue takes, to ERP_QUEUE
ERP_ROUTING_EXCHANGE = "allegro-sync.erp.routing"
ERP_UNROUTED_EXCHANGE = "allegro-sync.erp.unrouted"

ERP_QUEUE = "allegro-sync.erp"
ERP_INVOICE_QUEUE = "allegro-sync.erp.invoices"
BIG_ERP_MESSAGES = (INVOICE_ADDED,)
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
    binding_keys: tuple[str, ...] = ("#",)


CONSUMER_QUEUES = (
    QueueSpec(
        ERP_QUEUE,
        ERP_ROUTING_EXCHANGE,
        tuple(key for key in ERP_MESSAGES if key not in BIG_ERP_MESSAGES),
    ),
    QueueSpec(ERP_INVOICE_QUEUE, ERP_ROUTING_EXCHANGE, BIG_ERP_MESSAGES),
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
    unrouted = await channel.declare_exchange(
        ERP_UNROUTED_EXCHANGE, aio_pika.ExchangeType.FANOUT, durable=True, internal=True
    )
    routing = await channel.declare_exchange(
        ERP_ROUTING_EXCHANGE,
        topic,
        durable=True,
        internal=True,
        arguments={"alternate-exchange": ERP_UNROUTED_EXCHANGE},
    )
    await routing.bind(ERP_EXCHANGE, routing_key="#")
    for spec in CONSUMER_QUEUES + OUTBOUND_QUEUES:
        queue = await channel.declare_queue(spec.name, durable=True, arguments=queue_arguments())
        for key in spec.binding_keys:
            await queue.bind(spec.exchange, routing_key=key)
        if spec.name == ERP_QUEUE:
            await queue.bind(unrouted, routing_key="")
            # before invoices had their own queue, this queue was bound to erp.events itself
            await queue.unbind(ERP_EXCHANGE, routing_key="#")
    for spec in CONSUMER_QUEUES:
        for delay in RETRY_DELAYS_MS:
            await channel.declare_queue(
                retry_queue_name(spec.name, delay),
                durable=True,
                arguments=retry_queue_arguments(spec.name, delay),
            )
