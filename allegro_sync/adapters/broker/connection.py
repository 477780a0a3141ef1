"""One robust RabbitMQ connection per process."""

from __future__ import annotations

import aio_pika
import structlog
from aio_pika.abc import AbstractRobustConnection
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

log = structlog.get_logger(__name__)


async def connect(amqp_url: str, *, wait_seconds: float = 30.0) -> AbstractRobustConnection:
    """Connect, retrying the first connection for ``wait_seconds`` (aio-pika does not)."""
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type((ConnectionError, OSError)),
        wait=wait_exponential(multiplier=0.2, max=5),
        stop=stop_after_delay(wait_seconds),
        reraise=True,
    ):
        with attempt:
            connection = await aio_pika.connect_robust(
                amqp_url, client_properties={"connection_name": "allegro-sync"}, heartbeat=30
            )
    return connection
