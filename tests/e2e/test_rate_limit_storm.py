"""A storm of 429s on every Allegro call (the fault suite's ``storm-429``, shortened): the daemon
pauses every request, and comes back once the storm is over. When the 429 names a
``Retry-After`` (the emulator's ``send_retry_after`` switch; Allegro sends none today), the
pause is what it asks, never doubled past it: the daemon does not probe during the storm and
is back as soon as it ends. Without one, the pause starts at a second and doubles."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import aiohttp
import asyncpg
import pytest

from allegro_sync.daemon.app import Daemon
from tests.e2e.conftest import FAST_POLLING, Admin, Emulator, daemon_settings
from tests.e2e.flows import _buy, _shop
from tests.helpers import eventually

STORM = 8.0  # seconds: without Retry-After the pauses 1, 2 and 4 s fit in it


@pytest.fixture
async def storm_daemon(
    database_url: str, amqp_url: str, switched_emulator: Emulator
) -> AsyncIterator[Daemon]:
    running = Daemon(
        daemon_settings(database_url, amqp_url, switched_emulator.url),
        poller_timing=FAST_POLLING,
    )
    await running.start()
    yield running
    await running.stop()


async def _storm_then_order(daemon: Daemon, emulator: Emulator, db: asyncpg.Pool) -> float:
    """A purchase made during a storm: seconds from the storm's end to its order."""
    async with aiohttp.ClientSession() as session:
        _, _, offers = await _shop(Admin(daemon, session), emulator, db, auto_create_orders=True)
    await emulator.control("POST", "/faults", {"status_429_seconds": STORM})
    ends = time.monotonic() + STORM
    form_id = await _buy(emulator, offers[0])

    async def stored() -> bool:
        return bool(
            await db.fetchval("SELECT true FROM orders WHERE checkout_form_id = $1", form_id)
        )

    await eventually(stored, timeout=STORM + 60)
    return time.monotonic() - ends


@pytest.mark.parametrize("switched_emulator", [{"send_retry_after": True}], indirect=True)
async def test_a_429_naming_retry_after_pauses_for_just_that_long(
    storm_daemon: Daemon, switched_emulator: Emulator, db: asyncpg.Pool
) -> None:
    after = await _storm_then_order(storm_daemon, switched_emulator, db)
    # back within moments of the storm's end (the doubling pauses would end 7 s after it)
    assert after < 3.0, f"the order came {after:.1f} s after the storm"
    limiter = storm_daemon.allegro.limiter if storm_daemon.allegro else None
    assert limiter is not None
    # the first 429s (of the requests in flight) paused everything for the storm's rest: no
    # request probed Allegro during the storm, so no pause was doubled
    assert limiter.rate_limited <= 4, limiter.rate_limited


@pytest.mark.parametrize("switched_emulator", [{"send_retry_after": False}], indirect=True)
async def test_without_retry_after_the_pause_doubles_while_429s_continue(
    storm_daemon: Daemon, switched_emulator: Emulator, db: asyncpg.Pool
) -> None:
    after = await _storm_then_order(storm_daemon, switched_emulator, db)
    limiter = storm_daemon.allegro.limiter if storm_daemon.allegro else None
    assert limiter is not None
    # probes after the pauses met 429s, so the pause doubled past the first second (to 2, 4 or
    # 8 s: how often depends on when the pollers probed)
    assert limiter.rate_limited >= 3, limiter.rate_limited
    assert limiter.last_pause >= 2.0, limiter.last_pause
    # and once a probe after the storm gets through, the daemon is back
    assert after < 20.0, f"the order came {after:.1f} s after the storm"
