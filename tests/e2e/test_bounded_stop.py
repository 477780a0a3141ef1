"""A bounded stop: ``allegro-sync run`` gets SIGTERM while Allegro (the emulator's latency
control) hangs its requests, a journal poll and a consumer batch among them, and exits within
its bound (README "Operations") instead of waiting for Allegro; the batch it cut is
redelivered to the next daemon and handled once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import aiohttp
import asyncpg
import pytest

from allegro_sync.daemon.app import CLOSE_TIMEOUT, STOP_GRACE, WATCHDOG_MARGIN
from tests.e2e.conftest import Admin, Emulator
from tests.e2e.flows import new_offer
from tests.helpers import DaemonProcess, daemon_env, eventually, free_port

SHUTDOWN_TIMEOUT = 2.0
HANG_MS = 60_000  # longer than the whole stop may take, and than the client's 30 s timeout


def _env(database_url: str, amqp_url: str, emulator: Emulator) -> dict[str, str]:
    port = free_port()
    return daemon_env(
        database_url,
        amqp_url,
        port,
        ALLEGRO_SYNC_ALLEGRO_API_URL=emulator.url,
        ALLEGRO_SYNC_ALLEGRO_AUTH_URL=emulator.url,
        ALLEGRO_SYNC_ALLEGRO_SANDBOX_API_URL=emulator.url,
        ALLEGRO_SYNC_ALLEGRO_SANDBOX_AUTH_URL=emulator.url,
        ALLEGRO_SYNC_CLIENT_ID="demo-client",
        ALLEGRO_SYNC_CLIENT_SECRET="demo-secret",
        ALLEGRO_SYNC_SHUTDOWN_TIMEOUT=str(SHUTDOWN_TIMEOUT),
    )


@pytest.fixture
async def processes() -> AsyncIterator[list[DaemonProcess]]:
    started: list[DaemonProcess] = []
    yield started
    for process in started:
        process.kill()


async def _requests(emulator: Emulator, route: str) -> int:
    return int((await emulator.control("GET", "/requests"))["by_path"].get(route, 0))


async def test_sigterm_while_allegro_hangs_exits_in_bounded_time_and_loses_nothing(
    processes: list[DaemonProcess],
    database_url: str,
    amqp_url: str,
    emulator: Emulator,
    db: asyncpg.Pool,
    tmp_path: Path,
) -> None:
    env = _env(database_url, amqp_url, emulator)
    first = DaemonProcess(env, tmp_path / "first.log")
    processes.append(first)
    await first.start()
    async with aiohttp.ClientSession() as session:
        admin = Admin(
            cast(Any, SimpleNamespace(settings=SimpleNamespace(http_port=first.port))), session
        )
        seller = await emulator.seller("sklep-stop")
        account_id = int((await admin.connect(emulator, seller))["id"])

        # Allegro hangs: the order journal's reads and the listing read of the offer handler
        await emulator.control(
            "POST",
            "/faults",
            {"endpoint_latency_ms": {"GET /order/events": HANG_MS, "GET /sale/offers": HANG_MS}},
        )
        orders_before = await _requests(emulator, "GET /order/events")
        offer_id = await new_offer(emulator, seller, name="W locie")

        async def in_flight() -> bool:
            # the page with the offer's event published and its cursor stored, the batch that
            # handles it waiting for its listing read, an order poll waiting for its page
            cursor = await db.fetchval(
                "SELECT last_event_id FROM journal_cursors WHERE account_id = $1"
                " AND journal = 'offer'",
                account_id,
            )
            return (
                cursor is not None
                and await _requests(emulator, "GET /sale/offers") >= 1
                and await _requests(emulator, "GET /order/events") > orders_before
            )

        await eventually(in_flight, timeout=60, interval=0.2)
        assert await db.fetchval("SELECT count(*) FROM offers WHERE id = $1", offer_id) == 0

        bound = SHUTDOWN_TIMEOUT + STOP_GRACE + CLOSE_TIMEOUT
        stopping = time.monotonic()
        code = await asyncio.to_thread(first.terminate, bound + WATCHDOG_MARGIN + 10)
        took = time.monotonic() - stopping
        print(f"SIGTERM to exit: {took:.1f} s (bound {bound:g} s)")
        assert code == 0, first.log()
        assert took <= bound, f"stopped in {took:.1f}s, bound {bound}s"
        assert took < HANG_MS / 1000 / 2  # nobody waited for Allegro's answer
        assert "daemon_stopped" in first.log()

        # the next daemon gets the cut batch again and mirrors the offer, once
        await emulator.control("DELETE", "/faults")
        second = DaemonProcess(env, tmp_path / "second.log")
        processes.append(second)
        await second.start()

        async def mirrored() -> bool:
            return bool(await db.fetchval("SELECT count(*) FROM offers WHERE id = $1", offer_id))

        await eventually(mirrored, timeout=30, interval=0.2)
        handled = await db.fetchval(
            "SELECT count(*) FROM inbox WHERE message_id LIKE $1", f"offer-events:{account_id}:%"
        )
        assert handled == 1
        assert await asyncio.to_thread(second.terminate) == 0
