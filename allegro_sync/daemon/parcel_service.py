"""The parcel service: takes ``parcels`` rows through Allegro's shipment management.

A row is claimed by pushing its ``next_attempt_at`` forward (a lease) with ``FOR UPDATE SKIP
LOCKED``, so replicas share the work and no transaction is open while Allegro answers; each
claimed row gets one step of ``handlers/parcels.advance`` (send the create command, read its
status, read the label, cancel), which schedules the next one. The service wakes on ``NOTIFY
allegro_sync_parcels`` (a new parcel or cancel) and when the next row is due. A step that
keeps failing is given up within ``RetryBounds`` (``PARCEL_MAX_FAILURES``,
``PARCEL_GIVE_UP_AFTER``).
"""

from __future__ import annotations

import asyncio

import asyncpg
import structlog

from allegro_sync.adapters.allegro.client import AllegroRestClient
from allegro_sync.adapters.postgres import parcels
from allegro_sync.adapters.postgres.notifications import Waker
from allegro_sync.handlers.parcels import DEFAULT_BOUNDS, LEASE_SECONDS, RetryBounds, advance
from allegro_sync.tasks import stop_task

log = structlog.get_logger(__name__)


class ParcelService:
    """Moves parcels through their create, label and cancel commands."""

    def __init__(
        self,
        *,
        dsn: str,
        pool: asyncpg.Pool,
        allegro: AllegroRestClient,
        batch_size: int = 20,
        idle_interval: float = 5.0,
        bounds: RetryBounds = DEFAULT_BOUNDS,
    ) -> None:
        self._bounds = bounds
        self._pool = pool
        self._allegro = allegro
        self._batch_size = batch_size
        self._idle_interval = idle_interval
        self._waker = Waker(dsn, parcels.CHANNEL)
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the loop."""
        self._task = asyncio.create_task(self._run(), name="parcel-service")

    async def stop(self, timeout: float) -> None:
        """Finish the steps in hand (within ``timeout``) and stop."""
        self._stopping.set()
        self._waker.event.set()
        await stop_task(self._task, timeout)
        await self._waker.close()

    async def _run(self) -> None:
        down = False
        while not self._stopping.is_set():
            wait = self._idle_interval
            try:
                await self._waker.listen()
                moved = await self.run_once()
                if down:
                    log.info("parcel_service_recovered")
                    down = False
                if moved == self._batch_size:
                    continue  # more is due
                due = await self._pool.fetchval(parcels.NEXT_DUE)
                if due is not None:
                    wait = min(wait, max(float(due), 0.05))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not down:
                    log.warning("parcel_service_failed", error=f"{type(exc).__name__}: {exc}")
                    down = True
                await self._waker.close()
            if not self._stopping.is_set():
                await self._waker.wait(wait)

    async def run_once(self) -> int:
        """One step of every due row (at most ``batch_size``); how many were claimed."""
        rows = await self._pool.fetch(parcels.CLAIM, self._batch_size, LEASE_SECONDS)
        results = await asyncio.gather(
            *(advance(self._allegro, self._pool, row, self._bounds) for row in rows),
            return_exceptions=True,
        )
        for row, result in zip(rows, results, strict=True):
            if isinstance(result, Exception):
                log.error("parcel_step_failed", parcel=row["id"], exc_info=result)
        return len(rows)
