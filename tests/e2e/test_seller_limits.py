"""A 429 of a per-seller limit pauses that seller, not the client id (issue 18): against an
emulator that lets each seller write one product offer a minute, a seller's second write is
refused; its next writes wait for its pause while another seller's writes and the seller's
other requests go at once, and the client-wide limiter is never paused."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from allegro_sync.adapters.allegro.errors import AllegroRateLimited, AllegroRejected
from allegro_sync.daemon.app import Daemon
from allegro_sync.emulator.app import EmulatorConfig
from tests.e2e.conftest import FAST_POLLING, Admin, Emulator, _serve, daemon_settings


@pytest.fixture
async def one_write_a_minute() -> AsyncIterator[Emulator]:
    async for running in _serve(EmulatorConfig(seed=12, offer_writes_per_minute=1)):
        yield running


async def test_a_sellers_write_limit_pauses_that_seller_only(
    database_url: str, amqp_url: str, one_write_a_minute: Emulator
) -> None:
    emulator = one_write_a_minute
    daemon = Daemon(
        daemon_settings(database_url, amqp_url, emulator.url), poller_timing=FAST_POLLING
    )
    await daemon.start()
    try:
        async with aiohttp.ClientSession() as session:
            admin = Admin(daemon, session)
            first = (await admin.connect(emulator, await emulator.seller("limit-a")))["id"]
            second = (await admin.connect(emulator, await emulator.seller("limit-b")))["id"]
        allegro, limiter = daemon.allegro, daemon.limiter
        assert allegro is not None and limiter is not None

        async def write(account_id: int) -> int:
            """A product-offer write (stock alone: refused, but counted by the limit)."""
            try:
                await allegro.request(
                    account_id,
                    "POST",
                    "/sale/product-offers",
                    action="list offer",
                    json={"stock": {"available": 1}},
                )
            except AllegroRateLimited:
                return 429
            except AllegroRejected as exc:
                return exc.status or 0
            return 200

        assert await write(first) != 429  # the seller's one write a minute
        assert await write(first) == 429  # and one over it
        paused = limiter.seller_blocked_for(first, "listing")
        assert paused > 0.5
        assert limiter.blocked_for() == 0 and limiter.rate_limited == 0  # not the client id
        started = time.monotonic()
        assert await write(second) != 429  # another seller writes at once
        await allegro.get(first, "/me", action="read account")  # the seller's other requests too
        await allegro.get(first, "/sale/offers", action="read offers")
        assert time.monotonic() - started < min(0.5, paused - 0.2)
        started = time.monotonic()
        assert await write(first) == 429  # its own writes waited for its pause
        assert time.monotonic() - started >= paused - 0.5
        assert limiter.rate_limited == 0
    finally:
        await daemon.stop()
