"""One robust RabbitMQ connection per process, to one node or to any node of a cluster."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import structlog
from aio_pika import RobustConnection
from aio_pika.abc import AbstractRobustConnection
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential
from yarl import URL

log = structlog.get_logger(__name__)

HEARTBEAT_SECONDS = 30


def broker_urls(value: str) -> list[str]:
    """The addresses of ``AMQP_URL``: one URL, or several separated by commas (the nodes of one
    cluster, tried in turn)."""
    return [part.strip() for part in value.split(",") if part.strip()]


class ClusterConnection(RobustConnection):
    """aio-pika's robust connection (channels, queues and consumers restored after a reconnect)
    over several addresses: whenever the connection to a node is lost, or an attempt to reach it
    fails, the next attempt goes to the next address, so a stopped node is passed over."""

    def __init__(self, url: URL, *, nodes: Sequence[URL], **kwargs: Any) -> None:
        super().__init__(url, **kwargs)
        self._nodes = list(nodes) or [URL(url)]
        self._current = self._nodes.index(URL(url)) if URL(url) in self._nodes else 0

    async def _on_connection_close(self, closing: asyncio.Future[Any]) -> None:
        # aio-pika calls this for a lost connection and for a failed attempt alike
        if len(self._nodes) > 1 and not self._close_called:
            self._current = (self._current + 1) % len(self._nodes)
            self.url = self._nodes[self._current]
        await super()._on_connection_close(closing)


def _node_url(url: str) -> URL:
    parsed = URL(url)
    if "heartbeat" not in parsed.query:
        parsed = parsed.update_query(heartbeat=HEARTBEAT_SECONDS)
    return parsed


async def connect(amqp_url: str, *, wait_seconds: float = 30.0) -> AbstractRobustConnection:
    """Connect to the first node that answers among ``amqp_url``'s addresses, retrying for
    ``wait_seconds`` (aio-pika does not retry a first connection)."""
    nodes = [_node_url(url) for url in broker_urls(amqp_url)]
    attempt_number = 0
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type((ConnectionError, OSError)),
        wait=wait_exponential(multiplier=0.2, max=5),
        stop=stop_after_delay(wait_seconds),
        reraise=True,
    ):
        with attempt:
            start = nodes[attempt_number % len(nodes)]
            attempt_number += 1
            connection = ClusterConnection(
                start, nodes=nodes, client_properties={"connection_name": "allegro-sync"}
            )
            await connection.connect()
    return connection
