"""Delivery status back to the ERP (issue 16, item 4): every ``tick`` seconds one replica reads
the carrier tracking of the tracking numbers that are due (``handlers/shipment_tracking.py``).

One replica: the holder of an advisory lock on a connection of its own, as retention does; the
lock is checked again before each read, and each row's write is guarded by the status read
before it, so a replica that lost the lock mid-round publishes nothing twice. The reads stay
inside ``budget_share`` of the client's requests a minute (a token bucket of this service,
before the client's own limiter, where they go as bulk traffic behind orders). ``clock`` gives
the time rows fall due by (the wall clock; a benchmark passes the emulator's).
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Callable
from datetime import UTC, datetime

import asyncpg
import structlog

from allegro_sync.adapters.allegro.client import AllegroRestClient
from allegro_sync.adapters.allegro.limits import TokenBucket
from allegro_sync.adapters.postgres.advisory_locks import AdvisoryLocks
from allegro_sync.adapters.postgres.notifications import repeat_every
from allegro_sync.handlers.shipment_tracking import TrackingTiming, track_due
from allegro_sync.metrics import Metrics
from allegro_sync.tasks import stop_task

log = structlog.get_logger(__name__)

# Negative: the pollers' keys (daemon/pollers.py lock_key) are never negative.
LOCK_KEY = -zlib.crc32(b"allegro-sync:shipment-tracking")


def wall_clock() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)


class ShipmentTracker:
    """Reads due tracking numbers' tracking while this replica holds the lock."""

    def __init__(
        self,
        *,
        dsn: str,
        pool: asyncpg.Pool,
        allegro: AllegroRestClient,
        metrics: Metrics,
        requests_per_minute: float,
        budget_share: float,
        timing: TrackingTiming | None = None,
        tick: float = 60.0,
        clock: Callable[[], datetime] = wall_clock,
    ) -> None:
        self._pool = pool
        self._allegro = allegro
        self._metrics = metrics
        self._timing = timing or TrackingTiming()
        self._tick = tick
        self._clock = clock
        self.budget_per_minute = requests_per_minute * budget_share
        rate = max(self.budget_per_minute / 60.0, 0.01)
        self._bucket = TokenBucket(capacity=max(rate, 1.0), rate=rate)
        self._locks = AdvisoryLocks(dsn)
        self._generation: int | None = None
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the loop (the first round at once)."""
        self._task = asyncio.create_task(self._run(), name="shipment-tracker")

    async def stop(self, timeout: float) -> None:
        """Finish the read in hand within ``timeout``, then give the lock back."""
        self._stopping.set()
        await stop_task(self._task, timeout)
        await self._drop()

    async def _run(self) -> None:
        await repeat_every(
            self._tick,
            self._stopping,
            self.run_once,
            on_failure=self._drop,
            failing_event="shipment_tracking_failing",
        )

    async def run_once(self) -> int | None:
        """One round if this replica leads: the tracking numbers read (None: another leads)."""
        if not await self._lead():
            return None
        read = await track_due(
            self._allegro,
            self._pool,
            self._metrics,
            self._pace,
            self._clock(),
            self._timing,
            leading=self._still_leading,
        )
        if read:
            log.info("shipment_tracking_read", tracking_numbers=read)
        return read

    async def _pace(self) -> None:
        """One request of this service's share of the client budget."""
        while True:
            wait = self._bucket.wait_for(1.0)
            if wait <= 0:
                self._bucket.take(1.0)
                return
            await asyncio.sleep(min(wait, 1.0))

    async def _still_leading(self) -> bool:
        return (
            not self._stopping.is_set()
            and self._generation is not None
            and await self._locks.holds(self._generation)
        )

    async def _lead(self) -> bool:
        if self._generation is not None and await self._locks.holds(self._generation):
            return True
        self._generation = await self._locks.try_lock(LOCK_KEY)
        if self._generation is None:
            await self._drop()
        return self._generation is not None

    async def _drop(self) -> None:
        self._generation = None
        await self._locks.close()
