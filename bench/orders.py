"""Order throughput and Allegro requests per order (issue 5): ``python -m bench orders``.

10 000 paid purchases across 10 sellers wait in the emulator's order journals; the daemon (one
process) starts, and the clock runs until a consumer of ``allegro-sync.events`` holds every
``order.created`` (also printed: with the clock started once the daemon answers ``/healthz``,
that is without its start-up). Printed per run and as medians of three: orders per second,
Allegro requests per order, and the raw broker publish / consume rates of this machine measured
in the same run; the whole at each of the emulator's latency profiles (``--latency``, default
``none,realistic``), side by side.
Targets (at both): at least 1 000 orders/s and at most 0.05 Allegro requests per order.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

import aio_pika
import aiohttp
import asyncpg

from bench._support import (
    ADMIN_TOKEN,
    LATENCIES,
    allegro_requests,
    connect_seller,
    cpu_seconds,
    raw_broker_rates,
    services,
    side_by_side,
)

SELLERS = int(os.environ.get("BENCH_SELLERS", "10"))
PURCHASES = int(os.environ.get("BENCH_PURCHASES", "10000"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
TARGET_RATE = 1000.0
TARGET_REQUESTS_PER_ORDER = 0.05


@dataclass
class Run:
    """One run's measurements."""

    orders_per_second: float
    orders_per_second_ready: float  # the clock started when /healthz answered
    requests_per_order: float
    raw_publish_rate: float
    raw_consume_rate: float
    cpu_ms_per_order: float


async def _connect_sellers(emulator_url: str, daemon_url: str) -> list[str]:
    """Create the sellers and connect their accounts through the browser flow."""
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Accept": "application/json"}
    async with aiohttp.ClientSession(headers=headers) as session:
        return [
            await connect_seller(
                session, emulator_url, daemon_url, f"bench-shop-{n}", {"auto_create_orders": True}
            )
            for n in range(SELLERS)
        ]


async def _purchase(emulator_url: str, sellers: list[str]) -> None:
    per_seller = PURCHASES // len(sellers)
    async with aiohttp.ClientSession() as session:
        for seller_id in sellers:
            async with session.post(
                f"{emulator_url}/__control__/sellers/{seller_id}/offers",
                json={"name": "Kubek", "stock": PURCHASES * 10, "price": "19.99"},
            ) as r:
                offer = await r.json()
            async with session.post(
                f"{emulator_url}/__control__/purchases",
                json={"offer_id": offer["id"], "count": per_seller, "then": "pay"},
            ) as r:
                assert r.status == 201, await r.text()
        async with session.delete(f"{emulator_url}/__control__/requests") as r:
            assert r.status < 300


async def _await_orders(amqp_url: str, expected: int, timeout: float = 600) -> None:
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=500)
    queue = await channel.get_queue("allegro-sync.events.erp")
    seen: set[str] = set()
    done = asyncio.Event()

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        await message.ack()
        if message.routing_key == "order.created" and message.message_id:
            seen.add(message.message_id)
            if len(seen) >= expected:
                done.set()

    await queue.consume(on_message)
    try:
        await asyncio.wait_for(done.wait(), timeout)
    finally:
        await connection.close()


async def _journals_started(database_url: str, count: int) -> None:
    """Until every account's order journal has its start cursor (new accounts start at the
    journal's latest event, so purchases made before that would not be read)."""
    conn = await asyncpg.connect(database_url)
    try:
        for _ in range(600):
            query = "SELECT count(*) FROM journal_cursors WHERE journal = 'order'"
            if await conn.fetchval(query) >= count:
                return
            await asyncio.sleep(0.1)
        raise RuntimeError("the order journals did not start")
    finally:
        await conn.close()


async def _trace(emulator_url: str, database_url: str, started: float) -> None:
    """BENCH_TRACE=1: each half second, the Allegro requests so far and the orders announced
    (to see which side holds the run up)."""
    conn = await asyncpg.connect(database_url)
    try:
        while True:
            by_path = await allegro_requests(emulator_url)
            orders = await conn.fetchval("SELECT count(*) FROM orders")
            print(
                f"    {time.perf_counter() - started:5.1f} s: {orders} orders,"
                f" journal {by_path.get('GET /order/events', 0)},"
                f" listing {by_path.get('GET /order/checkout-forms', 0)}",
                flush=True,
            )
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


async def _run(index: int, latency: str) -> Run:
    log = f"orders-daemon-{latency}-{index}.log"
    async with services("orders", latency=latency, log=log) as stack:
        raw_publish, raw_consume = await raw_broker_rates(stack.amqp_url)
        emulator_url, daemon_url, database_url = (
            stack.emulator_url,
            stack.daemon_url,
            stack.database_url,
        )
        await stack.start_daemon()
        sellers = await _connect_sellers(emulator_url, daemon_url)
        await _journals_started(database_url, len(sellers))
        assert stack.stop_daemon() == 0
        await _purchase(emulator_url, sellers)
        expected = (PURCHASES // len(sellers)) * len(sellers)
        started = time.perf_counter()
        await stack.start_daemon(profile=True, wait=False)
        waiting = asyncio.create_task(_await_orders(stack.amqp_url, expected))
        await stack.daemon_ready()
        ready = time.perf_counter()
        if os.environ.get("BENCH_TRACE"):
            tracing = asyncio.create_task(_trace(emulator_url, database_url, started))
            await waiting
            tracing.cancel()
        await waiting
        elapsed = time.perf_counter() - started
        elapsed_ready = time.perf_counter() - ready
        assert stack.daemon is not None
        cpu = cpu_seconds(stack.daemon)
        by_path = await allegro_requests(emulator_url)
        requests = sum(by_path.values())
        stack.stop_daemon()
        split = ", ".join(f"{k} {v}" for k, v in sorted(by_path.items(), key=lambda i: -i[1]))
        print(f"  Allegro requests by endpoint: {split}", flush=True)
    return Run(
        expected / elapsed,
        expected / elapsed_ready,
        requests / expected,
        raw_publish,
        raw_consume,
        cpu * 1000 / expected,
    )


def main(latencies: Sequence[str] = LATENCIES) -> int:
    by_latency: dict[str, list[Run]] = {}
    for latency in latencies:
        runs = by_latency.setdefault(latency, [])
        for index in range(RUNS):
            run = asyncio.run(_run(index, latency))
            runs.append(run)
            print(
                f"orders run {index + 1} at latency {latency}: {run.orders_per_second:,.0f}"
                f" orders/s ({run.orders_per_second_ready:,.0f} from /healthz), "
                f"{run.requests_per_order:.3f} Allegro requests/order, raw broker "
                f"{run.raw_publish_rate:,.0f} publish/s {run.raw_consume_rate:,.0f} consume/s, "
                f"daemon CPU {run.cpu_ms_per_order:.2f} ms/order",
                flush=True,
            )

    def med(pick: str, fmt: str) -> dict[str, str]:
        return {
            latency: format(statistics.median(getattr(r, pick) for r in runs), fmt)
            for latency, runs in by_latency.items()
        }

    def ratio(runs: list[Run]) -> float:
        return float(
            statistics.median(r.orders_per_second for r in runs)
            / statistics.median(r.raw_publish_rate for r in runs)
        )

    side_by_side(
        f"orders: {PURCHASES} purchases across {SELLERS} sellers, medians of {RUNS} runs"
        " per latency profile",
        latencies,
        [
            ("orders per second", med("orders_per_second", ",.0f"), f">= {TARGET_RATE:,.0f}"),
            ("  clock from /healthz", med("orders_per_second_ready", ",.0f"), "(no start-up)"),
            (
                "Allegro requests / order",
                med("requests_per_order", ".3f"),
                f"<= {TARGET_REQUESTS_PER_ORDER}",
            ),
            ("raw broker publish/s", med("raw_publish_rate", ",.0f"), "(confirms, quorum)"),
            ("raw broker consume/s", med("raw_consume_rate", ",.0f"), "(prefetch 200, quorum)"),
            (
                "orders/s vs raw publish",
                {k: f"{ratio(v):.2f}" for k, v in by_latency.items()},
                "(one order.created publish each)",
            ),
            ("daemon CPU ms / order", med("cpu_ms_per_order", ".2f"), "(start-up included)"),
        ],
    )
    ok = all(
        statistics.median(r.orders_per_second for r in runs) >= TARGET_RATE
        and statistics.median(r.requests_per_order for r in runs) <= TARGET_REQUESTS_PER_ORDER
        for runs in by_latency.values()
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
