"""The journal scheduler through broker and database outages (issue 19, 4a): RabbitMQ and
PostgreSQL reached through TCP proxies that are cut and restored. The scheduler must live through
both (a closed channel, a connection lost mid-query: "try later") and carry on publishing."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from allegro_sync.adapters.allegro.journal import Page
from allegro_sync.adapters.broker import connection as broker
from allegro_sync.adapters.broker.publisher import ConfirmingPublisher
from allegro_sync.adapters.postgres import pool as pg
from allegro_sync.daemon.pollers import PollerSettings, PollerSupervisor
from allegro_sync.metrics import Metrics
from tests.helpers import TcpProxy, eventually


class TickingJournal:
    """A journal with one new event at every read (the role's fake: tests own it)."""

    name = "offer"
    routing_key = "allegro.offer_events"
    events_per_message = 100
    busy_factor = 1.0
    idle_rank = 0
    pages_per_poll = 1
    retention = 86400.0

    def is_activity(self, event: dict[str, Any]) -> bool:
        return True

    def subject(self, event: dict[str, Any]) -> str | None:
        return None

    async def start_cursor(self, account_id: int) -> str | None:
        return "0"

    async def read(self, account_id: int, cursor: str | None) -> Page:
        n = int(cursor or 0) + 1
        event = {"id": str(n), "type": "OFFER_CHANGED", "offer": {"id": "1"}}
        return Page([event], str(n), full=False)

    async def recover(self, conn: asyncpg.Connection, account_id: int) -> str | None:
        return None

    async def before_poll(self, account_id: int) -> None:
        return None

    async def enrich(
        self, account_id: int, events: Sequence[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        return [{} for _ in events]


def through(url: str, proxy: TcpProxy) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit(":", 1)[0] if ":" in parts.netloc.split("@")[-1] else parts.netloc
    return urlunsplit(parts._replace(netloc=f"{netloc}:{proxy.port}"))


async def test_the_poller_lives_through_a_broker_and_a_database_outage(
    db: asyncpg.Pool, database_url: str, amqp_url: str, amqp: object
) -> None:
    account = await db.fetchval(
        "INSERT INTO accounts (allegro_user_id, sandbox, login, name)"
        " VALUES ('p', false, 'p', 'p') RETURNING id"
    )
    broker_port = urlsplit(amqp_url).port or 5672
    database_port = urlsplit(database_url).port or 5432
    broker_proxy, database_proxy = (
        TcpProxy("127.0.0.1", broker_port),
        TcpProxy("127.0.0.1", database_port),
    )
    await broker_proxy.start()
    await database_proxy.start()
    connection = await broker.connect(through(amqp_url, broker_proxy))
    pool = await pg.create_pool(through(database_url, database_proxy), min_size=1, max_size=2)
    # the locks and wakes on their own connections, not proxied: the outage is the pool's
    poller = PollerSupervisor(
        journals=[TickingJournal()],
        dsn=database_url,
        pool=pool,
        publisher=await ConfirmingPublisher.open(connection),
        metrics=Metrics(),
        timing=PollerSettings(busy_interval=0.05, ceilings={"offer": 0.2}, supervise_interval=0.2),
    )
    await poller.start()

    async def cursor() -> int:
        value = await db.fetchval(
            "SELECT last_event_id FROM journal_cursors WHERE account_id = $1", account
        )
        return int(value or 0)

    async def moves_on(past: int) -> None:
        await eventually(lambda: _above(cursor, past), timeout=20, interval=0.1)

    try:
        await moves_on(2)
        for proxy in (broker_proxy, database_proxy):
            await proxy.stop()  # every connection cut, new ones refused
            await asyncio.sleep(1.0)
            assert poller.alive()
            stalled = await cursor()
            await asyncio.sleep(0.5)
            assert await cursor() == stalled  # nothing saved while down
            await proxy.start()
            await moves_on(stalled + 2)
            assert poller.alive()
    finally:
        await poller.stop(1.0)
        await pool.close()
        await connection.close()
        await broker_proxy.stop()
        await database_proxy.stop()


async def _above(cursor: Any, past: int) -> bool:
    return bool(await cursor() > past)
