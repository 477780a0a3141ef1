"""Two daemons on one database share the client id's request budget (issue 18): against an
emulator that allows 600 requests a minute and blocks the client id above it, both replicas
with the whole installation's 600 (not 300 each), busy with journal polls and the stock changes
of three sellers (18 offers, each to its own quantity, three times over), stay within it
together, see no 429, and every change reaches Allegro."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import aiohttp
import asyncpg
import pytest

from allegro_sync.adapters.allegro.limits import LEASE_TTL, window_rate
from allegro_sync.daemon.app import Daemon
from allegro_sync.daemon.pollers import PollerSettings
from allegro_sync.emulator.app import EmulatorConfig
from tests.e2e.conftest import Admin, Emulator, _serve, daemon_settings
from tests.e2e.flows import bound_offers, emulator_offer, erp, stock_changed
from tests.helpers import eventually

PER_MINUTE = 600
PRODUCTS = 6
# idle polls within a fifth of the budget, as by default; the rest is for the commands
POLLING = PollerSettings(
    busy_interval=1.0,
    ceilings={"order": 2.0, "offer": 2.0},
    idle_budget_per_minute=PER_MINUTE / 5,
    supervise_interval=0.3,
    lock_check_interval=0.2,
)


@pytest.fixture
async def strict_emulator() -> AsyncIterator[Emulator]:
    async for running in _serve(EmulatorConfig(seed=11, rate_limit_per_minute=PER_MINUTE)):
        yield running


def replica(database_url: str, amqp_url: str, emulator: Emulator) -> Daemon:
    settings = daemon_settings(
        database_url, amqp_url, emulator.url, client_requests_per_minute=PER_MINUTE
    )
    return Daemon(settings, poller_timing=POLLING)


async def test_two_replicas_stay_within_the_client_budget_together(
    database_url: str, amqp_url: str, strict_emulator: Emulator, db: asyncpg.Pool
) -> None:
    emulator = strict_emulator
    first = replica(database_url, amqp_url, emulator)
    await first.start()
    second = replica(database_url, amqp_url, emulator)
    try:
        sellers = []
        async with aiohttp.ClientSession() as session:
            admin = Admin(first, session)
            for n in range(3):
                binding = {f"o{n}-{p}": f"P{p}" for p in range(PRODUCTS)}
                sellers.append(
                    await bound_offers(
                        first, admin, emulator, db, f"limity-{n}", binding, stock_control=True
                    )
                )
        await second.start()
        await emulator.control("DELETE", "/requests")
        started = time.monotonic()
        for version in range(1, 4):  # each product its own quantity: a command per offer
            changes = (stock_changed(f"P{p}", 9 - version - p, version) for p in range(PRODUCTS))
            await erp(first, db, *changes)

        async def on_allegro() -> bool:
            for _, _, ids in sellers:
                for name, offer_id in ids.items():
                    want = 6 - int(name.rsplit("-", 1)[1])
                    if (await emulator_offer(emulator, offer_id))["stock"] != want:
                        return False
            return True

        await eventually(on_allegro, timeout=60)
        total = (await emulator.control("GET", "/requests"))["by_client"]["demo-client"]
        elapsed = time.monotonic() - started
    finally:
        await second.stop()
        await first.stop()
    capacity = PER_MINUTE / 60
    rate = window_rate(PER_MINUTE, 60, capacity, LEASE_TTL)
    # at most what the shared bucket lets through (plus what was leased before the counters were
    # reset); two replicas with 300 each would have sent about twice as much
    assert total <= 2 * capacity + rate * (elapsed + LEASE_TTL)
    assert total >= 0.6 * rate * elapsed  # the budget was used while there was work
    assert first.limiter is not None and second.limiter is not None
    assert first.limiter.rate_limited == second.limiter.rate_limited == 0  # never blocked
    assert first.limiter.leases > 0 and second.limiter.leases > 0  # both took part
