"""The periodic reconciliation (issue 19): every ``interval`` seconds, one replica compares the
stored ERP stock and price of every bound offer with its mirror and what is pending, and queues
what disagrees (``handlers/reconcile.py``). Stored state only, no Allegro reads.

One replica (``daemon/leader.py``); the work runs on the lock's own connection, so that when
the connection dies the lock goes with it and another replica takes over at its next interval.
Metrics: ``allegro_sync_reconciliation_mismatches_total`` (by kind) and the last run's count.
"""

from __future__ import annotations

import zlib

import structlog

from allegro_sync.daemon.leader import Leader
from allegro_sync.handlers import reconcile
from allegro_sync.metrics import Metrics

log = structlog.get_logger(__name__)

# Negative: the pollers' shard keys (daemon/pollers.py shard_lock_key) are never negative.
LOCK_KEY = -zlib.crc32(b"allegro-sync:reconciler")
CHUNK = 1000  # offers decided in one transaction


class Reconciler:
    """Runs the reconciliation while this replica holds the lock."""

    def __init__(self, *, dsn: str, metrics: Metrics, interval: float = 60.0) -> None:
        self._metrics = metrics
        self._leader = Leader(
            dsn=dsn,
            key=LOCK_KEY,
            name="reconciler",
            interval=interval,
            failing_event="reconciliation_failing",
        )

    async def start(self) -> None:
        """Start the loop (the first run at once: a restart may follow a lost decision)."""
        self._leader.start(self.run_once)

    async def stop(self, timeout: float) -> None:
        """Finish the run in hand within ``timeout``, then give the lock back."""
        await self._leader.stop(timeout)

    async def run_once(self) -> int | None:
        """One reconciliation if this replica leads; how many changes it queued (None: another
        replica leads)."""
        conn = await self._leader.lead()
        if conn is None:
            return None
        offer_ids = await reconcile.candidates(conn)
        found: dict[str, int] = {}
        for first in range(0, len(offer_ids), CHUNK):
            counts = await reconcile.reconcile_offers(conn, offer_ids[first : first + CHUNK])
            for kind, count in counts.items():
                found[kind] = found.get(kind, 0) + count
        for kind, count in found.items():
            self._metrics.reconciliation_mismatches.labels(kind).inc(count)
        total = sum(found.values())
        self._metrics.reconciliation_last.set(total)
        if total:
            log.warning("reconciliation_requeued", checked=len(offer_ids), **found)
        return total
