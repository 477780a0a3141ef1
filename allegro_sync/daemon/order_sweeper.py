"""The order sweep service (issue 13, design.md R2): every ``interval`` seconds one replica
sweeps the checkout forms of every active account (``handlers/order_sweep.py``), so that a
form whose journal event Allegro never wrote still becomes an order.

One replica: ``daemon/leader.py`` (when the lock's connection dies another replica takes over
at its next interval). The first round runs at start, so a restart after a downtime covers it
at once.

Its cost stays visible: ``allegro_sync_order_sweep_requests`` (a histogram of the Allegro
requests of each account's sweep; one per 100 forms changed since the last one) beside
``allegro_sync_order_sweep_found_total`` (forms the journal had not delivered), and one log
line per round with the totals. An account Allegro does not answer for is logged when it starts
failing and when it comes back, not at every round; its window waits for the next round.
"""

from __future__ import annotations

import zlib
from datetime import UTC, datetime, timedelta

import asyncpg
import structlog

from allegro_sync.adapters.allegro.client import AllegroRestClient
from allegro_sync.adapters.allegro.errors import AllegroError, AllegroUnavailable
from allegro_sync.adapters.broker.publisher import ConfirmingPublisher
from allegro_sync.adapters.postgres import accounts
from allegro_sync.daemon.leader import Leader
from allegro_sync.errors import CredentialsDead
from allegro_sync.handlers.order_sweep import SweepResult, sweep_orders
from allegro_sync.metrics import Metrics

log = structlog.get_logger(__name__)

# Negative: the pollers' shard keys (daemon/pollers.py shard_lock_key) are never negative.
LOCK_KEY = -zlib.crc32(b"allegro-sync:order-sweep")


class OrderSweeper:
    """Runs the order sweep of every active account while this replica holds the lock."""

    def __init__(
        self,
        *,
        dsn: str,
        pool: asyncpg.Pool,
        allegro: AllegroRestClient,
        publisher: ConfirmingPublisher,
        metrics: Metrics,
        interval: float = 600.0,
        lag: float = 60.0,
    ) -> None:
        self._pool = pool
        self._allegro = allegro
        self._publisher = publisher
        self._metrics = metrics
        self._lag = timedelta(seconds=lag)
        self._leader = Leader(
            dsn=dsn,
            key=LOCK_KEY,
            name="order-sweeper",
            interval=interval,
            failing_event="order_sweep_failing",
        )
        self._failing: set[int] = set()  # accounts Allegro does not answer for

    async def start(self) -> None:
        """Start the loop (the first round at once)."""
        self._leader.start(self.run_once)

    async def stop(self, timeout: float) -> None:
        """Finish the account in hand within ``timeout``, then give the lock back."""
        await self._leader.stop(timeout)

    async def run_once(self) -> list[SweepResult] | None:
        """One round if this replica leads: each active account's sweep (None: another
        replica leads)."""
        if not await self._leader.lead():
            return None
        results = []
        for account_id in await accounts.active_ids(self._pool):
            if self._leader.stopping.is_set():
                break
            result = await self._sweep(account_id)
            if result is not None:
                results.append(result)
        if results:
            log.info(
                "order_sweep_round",
                accounts=len(results),
                requests=sum(r.requests for r in results),
                listed=sum(r.listed for r in results),
                found=sum(len(r.found) for r in results),
            )
        return results

    async def _sweep(self, account_id: int) -> SweepResult | None:
        try:
            result = await sweep_orders(
                self._allegro,
                self._pool,
                self._publisher,
                account_id,
                now=datetime.now(UTC),
                lag=self._lag,
            )
        except CredentialsDead:
            return None  # the token manager switched the account off
        except AllegroUnavailable as exc:
            if account_id not in self._failing:
                log.warning("order_sweep_unavailable", account_id=account_id, error=str(exc))
                self._failing.add(account_id)
            return None
        except AllegroError as exc:
            log.error("order_sweep_refused", account_id=account_id, error=str(exc))
            return None
        if account_id in self._failing:
            log.info("order_sweep_available_again", account_id=account_id)
            self._failing.discard(account_id)
        if result is None:
            return None
        if result.requests:
            self._metrics.order_sweep_requests.observe(result.requests)
        if result.found:
            self._metrics.order_sweep_found.inc(len(result.found))
            log.warning(
                "order_sweep_found",
                account_id=account_id,
                found=len(result.found),
                listed=result.listed,
                requests=result.requests,
            )
        return result
