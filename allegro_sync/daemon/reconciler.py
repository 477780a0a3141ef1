"""The periodic reconciliation (issue 19): every ``interval`` seconds, one replica compares the
stored ERP stock and price of every bound offer with its mirror and what is pending, and queues
what disagrees (``handlers/reconcile.py``). Stored state only, no Allegro reads.

One replica: the one holding a session-level advisory lock on the connection the work runs on,
so that when the connection dies the lock goes with it and another replica takes over at its
next interval. Metrics: ``allegro_sync_reconciliation_mismatches_total`` (by kind) and the
last run's count.
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib

import asyncpg
import structlog

from allegro_sync.adapters.postgres import pool as pg
from allegro_sync.adapters.postgres.notifications import repeat_every, stop_task
from allegro_sync.handlers import reconcile
from allegro_sync.metrics import Metrics

log = structlog.get_logger(__name__)

# Negative: the pollers' shard keys (daemon/pollers.py shard_lock_key) are never negative.
LOCK_KEY = -zlib.crc32(b"allegro-sync:reconciler")
CHUNK = 1000  # offers decided in one transaction


class Reconciler:
    """Runs the reconciliation while this replica holds the lock."""

    def __init__(self, *, dsn: str, metrics: Metrics, interval: float = 60.0) -> None:
        self._dsn = dsn
        self._metrics = metrics
        self._interval = interval
        self._conn: asyncpg.Connection | None = None
        self._held = False
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the loop (the first run at once: a restart may follow a lost decision)."""
        self._task = asyncio.create_task(self._run(), name="reconciler")

    async def stop(self, timeout: float) -> None:
        """Finish the run in hand within ``timeout``, then give the lock back."""
        self._stopping.set()
        await stop_task(self._task, timeout)
        await self._drop()

    async def _run(self) -> None:
        await repeat_every(
            self._interval,
            self._stopping,
            self.run_once,
            on_failure=self._drop,
            failing_event="reconciliation_failing",
        )

    async def run_once(self) -> int | None:
        """One reconciliation if this replica leads; how many changes it queued (None: another
        replica leads)."""
        if self._conn is None or self._conn.is_closed():
            self._conn = await pg.connect(self._dsn)
            self._held = False
        if not self._held:
            self._held = bool(
                await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", LOCK_KEY)
            )
            if not self._held:
                await self._drop()  # no idle backend per follower: connect again next interval
                return None
        offer_ids = await reconcile.candidates(self._conn)
        found: dict[str, int] = {}
        for first in range(0, len(offer_ids), CHUNK):
            counts = await reconcile.reconcile_offers(self._conn, offer_ids[first : first + CHUNK])
            for kind, count in counts.items():
                found[kind] = found.get(kind, 0) + count
        for kind, count in found.items():
            self._metrics.reconciliation_mismatches.labels(kind).inc(count)
        total = sum(found.values())
        self._metrics.reconciliation_last.set(total)
        if total:
            log.warning("reconciliation_requeued", checked=len(offer_ids), **found)
        return total

    async def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
        self._conn = None
        self._held = False
