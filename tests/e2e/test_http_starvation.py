"""Slow HTTP clients cannot starve the daemon (issue 14 item 5).

Ten clients ask for the customer export and then stop reading. The HTTP side has a pool of its
own with a cap on exports: two stream, eight get 429 with ``Retry-After`` at once; meanwhile
``/readyz`` and ``GET /accounts/1`` answer quickly and an ERP message is handled as usual. A
client that took nothing for the idle timeout is cut, and the next export streams whole."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator

import aiohttp
import asyncpg
import pytest

from allegro_sync.daemon.app import Daemon
from tests.e2e.conftest import FAST_POLLING, Emulator, daemon_settings
from tests.e2e.flows import erp, stock_changed
from tests.helpers import ADMIN_TOKEN, eventually

CUSTOMERS = 80_000  # some 12 MB of CSV: far more than the socket buffers hold
IDLE = 5.0  # seconds an export may wait for its client


@pytest.fixture
async def daemon(
    database_url: str, amqp_url: str, emulator: Emulator, sandbox_emulator: Emulator
) -> AsyncIterator[Daemon]:
    settings = daemon_settings(
        database_url,
        amqp_url,
        emulator.url,
        sandbox_emulator.url,
        http_db_pool_size=4,
        export_max_concurrent=2,
        http_idle_in_transaction_timeout=IDLE,
    )
    running = Daemon(settings, poller_timing=FAST_POLLING)
    await running.start()
    yield running
    await running.stop()


async def slow_client(port: int) -> tuple[int, dict[str, str], asyncio.StreamWriter]:
    """Ask for the export, read the head of the answer, then read nothing more."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
    writer.write(
        f"GET /customers/export?format=csv HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {ADMIN_TOKEN}\r\n\r\n".encode()
    )
    await writer.drain()
    status = int((await reader.readline()).split()[1])
    headers: dict[str, str] = {}
    while (line := (await reader.readline()).decode().strip()) != "":
        name, _, value = line.partition(":")
        headers[name.lower()] = value.strip()
    if status != 200:
        body = await reader.readexactly(int(headers["content-length"]))
        headers["body"] = body.decode()
    return status, headers, writer


async def timed(session: aiohttp.ClientSession, url: str) -> tuple[int, float]:
    started = time.monotonic()
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    async with session.get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=5)) as r:
        await r.read()
        return r.status, time.monotonic() - started


@pytest.mark.slow
async def test_clients_that_stop_reading_starve_nothing(daemon: Daemon, db: asyncpg.Pool) -> None:
    await db.execute(
        "INSERT INTO accounts (allegro_user_id, sandbox, login, name, active)"
        " VALUES ('u1', false, 'shop', 'shop', false)"
    )
    await db.execute(
        """
        INSERT INTO customers (account_id, allegro_buyer_id, email, first_name, last_name, type)
        SELECT 1, 'buyer-' || n, 'buyer' || n || '@allegromail.pl', 'Anna', 'Nowak', 'domestic'
          FROM generate_series(1, $1) AS n
        """,
        CUSTOMERS,
    )
    port = daemon.settings.http_port
    base = f"http://127.0.0.1:{port}"
    clients = await asyncio.gather(*(slow_client(port) for _ in range(10)))
    try:
        async with aiohttp.ClientSession() as session:
            # the exports that stream are stuck on their clients now; everything else goes on
            await asyncio.sleep(0.5)
            status, seconds = await timed(session, base + "/readyz")
            assert status == 200 and seconds < 1.0, (status, seconds)
            status, seconds = await timed(session, base + "/accounts/1")
            assert status == 200 and seconds < 1.0, (status, seconds)
            started = time.monotonic()
            await erp(daemon, db, stock_changed("P-starve", 7, 1))
            assert time.monotonic() - started < 3.0

            statuses = sorted(status for status, _, _ in clients)
            assert statuses == [200] * 2 + [429] * 8, statuses
            for status, headers, _ in clients:
                if status == 429:
                    assert int(headers["retry-after"]) > 0
                    assert headers["content-type"].startswith("application/json")
                    assert json.loads(headers["body"])["error"] == "too_many_exports"

            # the stuck exports are cut after the idle timeout; the next one streams whole
            async def export_whole() -> bool:
                headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
                async with session.get(base + "/customers/export", headers=headers) as r:
                    if r.status == 429:
                        return False
                    assert r.status == 200
                    body = await r.read()
                return body.count(b"\r\n") == CUSTOMERS + 1

            assert await eventually(export_whole, timeout=IDLE + 10, interval=0.5)
    finally:
        for _, _, writer in clients:
            writer.close()


async def test_an_export_runs_within_its_own_statement_timeout(
    daemon: Daemon, db: asyncpg.Pool
) -> None:
    """The pool's connections carry the timeouts; an export's transaction its own."""
    assert daemon.http_pool is not None
    async with daemon.http_pool.acquire() as conn:
        assert await conn.fetchval("SHOW statement_timeout") == "30s"
        assert await conn.fetchval("SHOW idle_in_transaction_session_timeout") == "5s"
    async with daemon.pool.acquire() as conn:  # type: ignore[union-attr]
        assert await conn.fetchval("SHOW statement_timeout") == "0"
