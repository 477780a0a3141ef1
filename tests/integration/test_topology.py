"""The broker topology of design.md section 4 exists with the right types and arguments."""

from __future__ import annotations

import aio_pika

from allegro_sync.adapters.broker.topology import (
    DEAD_LETTER_EXCHANGE,
    DELIVERY_LIMIT,
    ERP_EXCHANGE,
    ERP_INVOICE_QUEUE,
    ERP_QUEUE,
    ERP_ROUTING_EXCHANGE,
    ERP_UNROUTED_EXCHANGE,
    declare_topology,
)
from tests.helpers import drain_queue, publish_json
from tests.helpers import rabbitmq_list as _list


async def test_topology_is_declared(
    amqp: aio_pika.abc.AbstractRobustConnection, vhost: str
) -> None:
    exchanges = {e["name"]: e for e in _list(vhost, "list_exchanges", "name", "type", "durable")}
    for name in ("erp.events", "allegro-sync.journal", "allegro-sync.events"):
        assert exchanges[name]["type"] == "topic"
        assert exchanges[name]["durable"] is True

    queues = {
        q["name"]: q for q in _list(vhost, "list_queues", "name", "type", "durable", "arguments")
    }
    for name in ("allegro-sync.erp", "allegro-sync.journal", "allegro-sync.events.erp"):
        queue = queues[name]
        assert queue["type"] == "quorum"
        assert queue["durable"] is True
        args = queue["arguments"]
        assert args["x-dead-letter-exchange"] == DEAD_LETTER_EXCHANGE
        assert args["x-delivery-limit"] == DELIVERY_LIMIT
    assert queues["allegro-sync.dead-letters"]["type"] == "quorum"
    retry = queues["allegro-sync.erp.retry.1s"]
    assert retry["type"] == "quorum"
    assert retry["arguments"]["x-message-ttl"] == 1000
    assert retry["arguments"]["x-dead-letter-routing-key"] == "allegro-sync.erp"

    bindings = _list(vhost, "list_bindings", "source_name", "destination_name", "routing_key")
    pairs = {(b["source_name"], b["destination_name"], b["routing_key"]) for b in bindings}
    assert ("erp.events", ERP_ROUTING_EXCHANGE, "#") in pairs
    assert (ERP_ROUTING_EXCHANGE, "allegro-sync.erp.invoices", "invoice.added") in pairs
    assert (ERP_ROUTING_EXCHANGE, "allegro-sync.erp", "stock.changed") in pairs
    assert (ERP_UNROUTED_EXCHANGE, "allegro-sync.erp", "") in pairs
    assert ("erp.events", "allegro-sync.erp", "#") not in pairs
    assert ("allegro-sync.journal", "allegro-sync.journal", "#") in pairs
    assert ("allegro-sync.events", "allegro-sync.events.erp", "#") in pairs
    assert (DEAD_LETTER_EXCHANGE, "allegro-sync.dead-letters", "") in pairs


async def test_declaring_twice_is_harmless(amqp: aio_pika.abc.AbstractRobustConnection) -> None:
    from allegro_sync.adapters.broker.topology import declare_topology

    channel = await amqp.channel()
    await declare_topology(channel)
    await channel.close()


async def test_invoices_have_their_own_queue_and_unknown_types_still_reach_the_erp_queue(
    amqp: aio_pika.abc.AbstractRobustConnection, amqp_url: str
) -> None:
    # a broker set up before the split: the ERP queue bound to erp.events itself
    channel = await amqp.channel()
    queue = await channel.get_queue(ERP_QUEUE)
    await queue.bind(ERP_EXCHANGE, routing_key="#")
    await declare_topology(channel)  # the next start
    await channel.close()
    await publish_json(
        amqp_url,
        ERP_EXCHANGE,
        [
            ("invoice.added", "i1", b"{}"),
            ("stock.changed", "s1", b"{}"),
            ("no.such.type", "u1", b"{}"),
        ],
    )
    erp = [m.message_id for m in await drain_queue(amqp_url, ERP_QUEUE)]
    invoices = [m.message_id for m in await drain_queue(amqp_url, ERP_INVOICE_QUEUE)]
    assert (sorted(erp), invoices) == (["s1", "u1"], ["i1"])
