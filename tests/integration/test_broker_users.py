"""The broker users (issue 14 finding 1), on the real RabbitMQ: the ERP's user, with exactly the
permissions the README gives it, publishes to ``erp.events`` and consumes its queue on
``allegro-sync.events`` but is refused (ACCESS_REFUSED) on the journal exchange and everything
else of the daemon's; the daemon's user runs the whole topology."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import aio_pika
import aiormq
import pytest

from allegro_sync.adapters.broker.publisher import ConfirmingPublisher, OutgoingMessage
from allegro_sync.adapters.broker.topology import (
    DAEMON_PERMISSIONS,
    ERP_EXCHANGE,
    ERP_OUTBOUND_QUEUE,
    ERP_PERMISSIONS,
    ERP_QUEUE,
    EVENTS_EXCHANGE,
    JOURNAL_EXCHANGE,
    JOURNAL_QUEUE,
    declare_topology,
    retry_queue_name,
)
from tests.helpers import drain_queue

ROOT = Path(__file__).parents[2]


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


def _as(amqp_url: str, user: str, password: str) -> str:
    parts = urlsplit(amqp_url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{quote(user)}:{quote(password)}@{host}"))


@pytest.fixture
def users(vhost: str) -> Iterator[dict[str, tuple[str, str]]]:
    """An ERP and a daemon user with the README's permissions on the test's virtual host
    (users are the broker's, so unique names, deleted afterwards)."""
    suffix = uuid.uuid4().hex[:8]
    made = {
        "erp": (f"erp-{suffix}", uuid.uuid4().hex, ERP_PERMISSIONS),
        "daemon": (f"allegro-sync-{suffix}", uuid.uuid4().hex, DAEMON_PERMISSIONS),
    }
    for name, password, permissions in made.values():
        _rabbitmqctl("add_user", name, password)
        _rabbitmqctl("set_permissions", "-p", vhost, name, *permissions)
    yield {role: (name, password) for role, (name, password, _) in made.items()}
    for name, _, _ in made.values():
        _rabbitmqctl("delete_user", name)


async def _refused(amqp_url: str, action: str) -> None:
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        with pytest.raises(aiormq.exceptions.ChannelAccessRefused, match="ACCESS_REFUSED"):
            if action == "publish journal":
                exchange = await channel.get_exchange(JOURNAL_EXCHANGE, ensure=False)
                await exchange.publish(
                    aio_pika.Message(b"{}", message_id="x"), "allegro.order_event"
                )
            elif action == "publish to the journal queue":
                await channel.default_exchange.publish(
                    aio_pika.Message(b"{}", message_id="x"), JOURNAL_QUEUE
                )
            elif action == "publish events":
                exchange = await channel.get_exchange(EVENTS_EXCHANGE, ensure=False)
                await exchange.publish(aio_pika.Message(b"{}", message_id="x"), "order.created")
            elif action == "read the journal queue":
                queue = await channel.get_queue(JOURNAL_QUEUE, ensure=False)
                await queue.get(fail=False)
            elif action == "delete erp.events":
                await channel.exchange_delete(ERP_EXCHANGE)
            elif action == "declare a queue":
                await channel.declare_queue("erp-side-queue", durable=True)
    finally:
        await connection.close()


async def test_the_erp_user_publishes_erp_events_and_reads_its_queue_only(
    amqp_url: str, amqp: aio_pika.abc.AbstractRobustConnection, users: dict[str, tuple[str, str]]
) -> None:
    erp_url = _as(amqp_url, *users["erp"])
    # what the daemon published for the ERP
    publisher = await ConfirmingPublisher.open(amqp)
    await publisher.publish(
        OutgoingMessage(EVENTS_EXCHANGE, "order.created", "order.created:1", {"n": 1})
    )
    await publisher.close()

    connection = await aio_pika.connect(erp_url)
    channel = await connection.channel(publisher_confirms=True)
    erp_events = await channel.get_exchange(ERP_EXCHANGE, ensure=False)
    await erp_events.publish(
        aio_pika.Message(b'{"n": 2}', message_id="stock-1"), routing_key="stock.changed"
    )
    inbound = await channel.get_queue(ERP_OUTBOUND_QUEUE, ensure=False)
    message = await inbound.get(timeout=5)
    assert message is not None and message.message_id == "order.created:1"
    await message.ack()
    await connection.close()
    [taken] = await drain_queue(amqp_url, ERP_QUEUE)
    assert taken.message_id == "stock-1"

    for action in (
        "publish journal",
        "publish to the journal queue",
        "publish events",
        "read the journal queue",
        "delete erp.events",
        "declare a queue",
    ):
        await _refused(erp_url, action)
    assert await drain_queue(amqp_url, JOURNAL_QUEUE, wait=0.2) == []


async def test_the_daemon_user_runs_the_topology(
    amqp_url: str, amqp: aio_pika.abc.AbstractRobustConnection, users: dict[str, tuple[str, str]]
) -> None:
    connection = await aio_pika.connect_robust(_as(amqp_url, *users["daemon"]))
    channel = await connection.channel()
    await declare_topology(channel)
    await channel.close()
    publisher = await ConfirmingPublisher.open(connection)
    await publisher.publish(OutgoingMessage(JOURNAL_EXCHANGE, "allegro.order_event", "j-1", {}))
    await publisher.publish(OutgoingMessage("", retry_queue_name(JOURNAL_QUEUE, 1000), "r-1", {}))
    await publisher.publish(OutgoingMessage(EVENTS_EXCHANGE, "order.created", "e-1", {}))
    await publisher.close()  # every publish above was confirmed
    channel = await connection.channel()
    queue = await channel.get_queue(JOURNAL_QUEUE, ensure=False)
    message = await queue.get(timeout=5)
    assert message is not None and message.message_id == "j-1"
    await message.ack()
    await connection.close()


def test_the_readme_and_the_compose_definitions_give_these_permissions() -> None:
    readme = (ROOT / "README.md").read_text()
    for user, permissions in (("erp", ERP_PERMISSIONS), ("allegro-sync", DAEMON_PERMISSIONS)):
        quoted = " ".join(f"'{p}'" for p in permissions)
        assert f"rabbitmqctl set_permissions -p / {user} {quoted}" in readme, user
    import json

    definitions = json.loads((ROOT / "docker" / "rabbitmq" / "definitions.json").read_text())
    given = {p["user"]: (p["configure"], p["write"], p["read"]) for p in definitions["permissions"]}
    assert given["erp"] == ERP_PERMISSIONS
    assert given["allegro-sync"] == DAEMON_PERMISSIONS
