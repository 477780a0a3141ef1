"""The outbox relay: publishes outbox rows with confirms, then deletes them.

Rows are claimed with ``FOR UPDATE SKIP LOCKED`` so several replicas share the work without
publishing a row twice in the normal case; a crash after the confirm and before the delete
re-publishes under the same ``message_id``, which consumers de-duplicate. The relay sleeps until
PostgreSQL notifies ``allegro_sync_outbox`` (a trigger on insert), with a periodic sweep as a
fallback for a missed notification.
"""

from __future__ import annotations

import asyncio

import asyncpg
import structlog

from allegro_sync.adapters.broker.publisher import ConfirmingPublisher, OutgoingMessage
from allegro_sync.adapters.postgres.notifications import Failures, Waker
from allegro_sync.adapters.postgres.outbox import CLAIM_BATCH, DELETE_SENT
from allegro_sync.metrics import Metrics
from allegro_sync.tasks import stop_task

log = structlog.get_logger(__name__)

CHANNEL = "allegro_sync_outbox"


class OutboxRelay:
    """Moves outbox rows to RabbitMQ."""

    def __init__(
        self,
        *,
        dsn: str,
        pool: asyncpg.Pool,
        publisher: ConfirmingPublisher,
        metrics: Metrics,
        batch_size: int = 500,
        sweep_interval: float = 5.0,
    ) -> None:
        self._dsn = dsn
        self._pool = pool
        self._publisher = publisher
        self._metrics = metrics
        self._batch_size = batch_size
        self._sweep_interval = sweep_interval
        self._waker = Waker(dsn, CHANNEL)
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self.published = 0

    async def start(self) -> None:
        """Listen for notifications and start the relay loop."""
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self, timeout: float) -> None:
        """Finish the batch in hand (within ``timeout``) and stop."""
        self._stopping = True
        self._waker.event.set()
        await stop_task(self._task, timeout)
        await self._waker.close()

    async def _run(self) -> None:
        failures = Failures("outbox_relay_failing")
        while not self._stopping:
            try:
                await self._waker.listen()
                self._waker.event.clear()
                moved = await self.relay_batch()
                failures.succeeded()
                if moved == self._batch_size:
                    continue  # more is waiting
                await self._waker.wait(self._sweep_interval)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await self._waker.close()
                await asyncio.sleep(failures.pause(exc))
        log.info("outbox_relay_stopped", published=self.published)

    async def relay_batch(self) -> int:
        """Publish one batch of rows with confirms and delete them; the number moved."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(CLAIM_BATCH, self._batch_size)
            if not rows:
                self._metrics.outbox_pending.set(0)
                return 0
            await self._publisher.publish_many(
                [
                    OutgoingMessage(
                        exchange=r["exchange"],
                        routing_key=r["routing_key"],
                        message_id=r["message_id"],
                        payload=r["payload"],
                    )
                    for r in rows
                ]
            )
            await conn.execute(DELETE_SENT, [r["id"] for r in rows])
        self.published += len(rows)
        self._metrics.outbox_published.inc(len(rows))
        log.debug("outbox_relayed", count=len(rows))
        return len(rows)
