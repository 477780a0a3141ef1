"""The daemon as an operator runs it: ``allegro-sync run`` in its own process."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
import pytest

from allegro_sync.adapters.broker.topology import DEAD_LETTER_QUEUE, ERP_EXCHANGE
from tests.helpers import (
    ADMIN_TOKEN,
    DaemonProcess,
    TcpProxy,
    daemon_env,
    drain_queue,
    eventually,
    free_port,
    publish_json,
)


@pytest.fixture
async def daemons(tmp_path: Path) -> AsyncIterator[list[DaemonProcess]]:
    started: list[DaemonProcess] = []
    yield started
    for daemon in started:
        daemon.kill()


async def _start(
    daemons: list[DaemonProcess], database_url: str, amqp_url: str, tmp_path: Path, **extra: str
) -> DaemonProcess:
    daemon = DaemonProcess(
        daemon_env(database_url, amqp_url, free_port(), **extra),
        tmp_path / f"daemon-{len(daemons)}.log",
    )
    daemons.append(daemon)
    await daemon.start()
    return daemon


async def _get(url: str, token: str | None = None) -> tuple[int, dict[str, object]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        return response.status, await response.json()


def _stock(pid: str, quantity: int, version: int) -> bytes:
    return json.dumps({"product_id": pid, "quantity": quantity, "version": version}).encode()


async def test_health_metrics_and_admin_auth(
    daemons: list[DaemonProcess], database_url: str, amqp_url: str, tmp_path: Path
) -> None:
    daemon = await _start(daemons, database_url, amqp_url, tmp_path)
    assert await _get(daemon.base_url + "/healthz") == (200, {"status": "ok"})
    status, body = await _get(daemon.base_url + "/readyz")
    assert (status, body["status"]) == (200, "ready")
    async with (
        aiohttp.ClientSession() as session,
        session.get(daemon.base_url + "/metrics") as response,
    ):
        assert response.status == 200
        assert "allegro_sync_messages_total" in await response.text()
    status, body = await _get(daemon.base_url + "/accounts")
    assert status == 401 and body["error"] == "unauthorized"
    status, body = await _get(daemon.base_url + "/accounts", "wrong-token")
    assert status == 401
    status, body = await _get(daemon.base_url + "/no-such-thing", ADMIN_TOKEN)
    assert status == 404 and "error" in body
    assert daemon.terminate() == 0


async def test_malformed_message_is_dead_lettered_while_consumption_goes_on(
    daemons: list[DaemonProcess], database_url: str, amqp_url: str, tmp_path: Path, db: asyncpg.Pool
) -> None:
    daemon = await _start(daemons, database_url, amqp_url, tmp_path)
    await publish_json(
        amqp_url,
        ERP_EXCHANGE,
        [
            ("stock.changed", "s-bad", b'{"product_id": "p1", "quantity": -5, "version": 1}'),
            ("stock.changed", "s-good", _stock("p1", 7, 1)),
            ("price_list.upserted", "pl-1", b'{"price_list": "retail", "name": "Retail"}'),
        ],
    )

    async def consumed() -> bool:
        return bool(
            await db.fetchval(
                "SELECT (SELECT quantity FROM product_stock WHERE product_id = 'p1') = 7"
                " AND EXISTS (SELECT 1 FROM price_lists WHERE id = 'retail')"
            )
        )

    await eventually(consumed)
    dead = await drain_queue(amqp_url, DEAD_LETTER_QUEUE)
    assert [m.message_id for m in dead] == ["s-bad"]
    assert "quantity" in str((dead[0].headers or {})["x-error"])
    assert daemon.terminate() == 0
    log = daemon.log()
    assert "message_dead_lettered" in log
    assert ADMIN_TOKEN not in log


async def test_sigterm_during_work_loses_nothing_and_exits_0(
    daemons: list[DaemonProcess], database_url: str, amqp_url: str, tmp_path: Path, db: asyncpg.Pool
) -> None:
    total = 4000
    daemon = await _start(daemons, database_url, amqp_url, tmp_path)
    await publish_json(
        amqp_url,
        ERP_EXCHANGE,
        [("stock.changed", f"s-{i}", _stock(f"p{i}", i, 1)) for i in range(total)],
    )

    async def some_done() -> bool:
        return bool(await db.fetchval("SELECT count(*) > 0 FROM product_stock"))

    await eventually(some_done)
    assert await asyncio.to_thread(daemon.terminate) == 0
    done_at_stop = await db.fetchval("SELECT count(*) FROM product_stock")
    assert done_at_stop == await db.fetchval("SELECT count(*) FROM inbox")

    await _start(daemons, database_url, amqp_url, tmp_path)

    async def all_done() -> bool:
        return await db.fetchval("SELECT count(*) FROM product_stock") == total

    await eventually(all_done, timeout=60)
    assert (
        await db.fetchval(
            "SELECT count(*) FROM product_stock WHERE quantity <> substr(product_id, 2)::int"
        )
        == 0
    )
    assert await drain_queue(amqp_url, DEAD_LETTER_QUEUE, wait=0.2) == []


async def test_readyz_follows_the_broker(
    daemons: list[DaemonProcess], database_url: str, amqp_url: str, tmp_path: Path, db: asyncpg.Pool
) -> None:
    parts = urlsplit(amqp_url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5672)
    await proxy.start()
    via_proxy = urlunsplit(parts._replace(netloc=f"guest:guest@127.0.0.1:{proxy.port}"))
    daemon = await _start(daemons, database_url, via_proxy, tmp_path)

    async def readiness() -> int:
        return (await _get(daemon.base_url + "/readyz"))[0]

    assert await readiness() == 200
    await proxy.stop()  # the broker is gone for the daemon
    status, body = await _get(daemon.base_url + "/readyz")
    assert status == 503
    assert body["checks"] == {"postgres": "ok", "rabbitmq": "down"}

    await proxy.start()  # back

    async def ready_again() -> bool:
        return await readiness() == 200

    await eventually(ready_again, timeout=30, interval=0.3)
    # consumers came back too: a message published now is processed
    await publish_json(
        amqp_url, ERP_EXCHANGE, [("stock.changed", "after", _stock("p-after", 3, 1))]
    )

    async def processed() -> bool:
        return bool(
            await db.fetchval("SELECT count(*) FROM product_stock WHERE product_id = 'p-after'")
        )

    await eventually(processed, timeout=30)
    assert daemon.terminate() == 0
    await proxy.stop()
