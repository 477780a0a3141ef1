"""The renewal service: considers ended offers for auto-renew (``handlers/renewal.py``).

It takes offers from ``renewal_candidates`` (claimed with ``SKIP LOCKED`` and deleted in the same
transaction that acts on them, so a crash re-considers them and replicas share the work), waking
on the ``allegro_sync_renewal`` notification that a trigger sends when candidates are added. A
periodic sweep adds the ended offers of renewing accounts that no event announced (a setting
switched on later).
"""

from __future__ import annotations

import asyncio

import asyncpg
import structlog

from allegro_sync.adapters.postgres import renewals
from allegro_sync.adapters.postgres.notifications import Failures, Waker
from allegro_sync.handlers import renewal
from allegro_sync.tasks import stop_task

log = structlog.get_logger(__name__)

CHANNEL = "allegro_sync_renewal"


class RenewalService:
    """Runs ``consider_renewals`` on candidates as they come."""

    def __init__(
        self,
        *,
        dsn: str,
        pool: asyncpg.Pool,
        batch_size: int = 500,
        sweep_interval: float = 300.0,
        poll_interval: float = 5.0,
    ) -> None:
        self._dsn = dsn
        self._pool = pool
        self._batch_size = batch_size
        self._sweep_interval = sweep_interval
        self._poll_interval = poll_interval
        self._waker = Waker(dsn, CHANNEL)
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self.requested = 0

    async def start(self) -> None:
        """Start the loop."""
        self._task = asyncio.create_task(self._run(), name="renewal")

    async def stop(self, timeout: float) -> None:
        """Finish the batch in hand within ``timeout``."""
        self._stopping = True
        self._waker.event.set()
        await stop_task(self._task, timeout)
        await self._waker.close()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_sweep = loop.time()
        failures = Failures("renewal_failing")
        while not self._stopping:
            try:
                await self._waker.listen()
                self._waker.event.clear()
                if loop.time() >= next_sweep:
                    await self._pool.execute(renewal.SWEEP)
                    next_sweep = loop.time() + self._sweep_interval
                handled = await self.run_once()
                failures.succeeded()
                if handled == self._batch_size:
                    continue
                await self._waker.wait(self._poll_interval)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await self._waker.close()
                await asyncio.sleep(failures.pause(exc))

    async def run_once(self) -> int:
        """Consider one batch of candidates; how many were taken."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(renewals.CLAIM_CANDIDATES, self._batch_size)
            if not rows:
                return 0
            requested = await renewal.consider_renewals(conn, [r["offer_id"] for r in rows])
        self.requested += requested
        if requested:
            log.info("renewals_requested", count=requested)
        return len(rows)
