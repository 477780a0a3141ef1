"""Order throughput and Allegro requests per order (issue 5): ``python -m bench orders``.

10 000 paid purchases across 10 sellers wait in the emulator's order journals; the daemon (one
process) starts, and the clock runs until a consumer of ``allegro-sync.events`` holds every
``order.created`` (also printed: with the clock started once the daemon answers ``/healthz``,
that is without its start-up). Printed per run and as medians of three: orders per second,
Allegro requests per order, and the raw broker publish / consume rates of this machine measured
in the same run.
Targets: at least 1 000 orders/s and at most 0.2 Allegro requests per order.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from dataclasses import dataclass

import aio_pika
import aiohttp
import asyncpg

from bench._support import (
    ADMIN_TOKEN,
    RESULTS,
    allegro_requests,
    connect_seller,
    cpu_seconds,
    daemon_env,
    free_port,
    raw_broker_rates,
    start_daemon,
    start_emulator,
    stop,
    throwaway_database,
    throwaway_vhost,
    wait_http,
)

SELLERS = int(os.environ.get("BENCH_SELLERS", "10"))
PURCHASES = int(os.environ.get("BENCH_PURCHASES", "10000"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
TARGET_RATE = 1000.0
TARGET_REQUESTS_PER_ORDER = 0.2


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


async def _run(index: int) -> Run:
    async with throwaway_database("bench_orders") as database_url:
        with throwaway_vhost("bench-orders") as amqp_url:
            raw_publish, raw_consume = await raw_broker_rates(amqp_url)
            emulator_port, http_port = free_port(), free_port()
            emulator_url = f"http://127.0.0.1:{emulator_port}"
            daemon_url = f"http://127.0.0.1:{http_port}"
            emulator = start_emulator(emulator_port)
            env = daemon_env(database_url, amqp_url, emulator_url, http_port)
            log = RESULTS / f"orders-daemon-{index}.log"
            try:
                await wait_http(emulator_url + "/__control__/clock")
                daemon = start_daemon(env, log)
                await wait_http(daemon_url + "/healthz")
                sellers = await _connect_sellers(emulator_url, daemon_url)
                await _journals_started(database_url, len(sellers))
                assert stop(daemon) == 0
                await _purchase(emulator_url, sellers)
                expected = (PURCHASES // len(sellers)) * len(sellers)
                started = time.perf_counter()
                daemon = start_daemon(env, log, profile=True)
                waiting = asyncio.create_task(_await_orders(amqp_url, expected))
                await wait_http(daemon_url + "/healthz")
                ready = time.perf_counter()
                await waiting
                elapsed = time.perf_counter() - started
                elapsed_ready = time.perf_counter() - ready
                cpu = cpu_seconds(daemon)
                by_path = await allegro_requests(emulator_url)
                requests = sum(by_path.values())
                stop(daemon)
                split = ", ".join(
                    f"{k} {v}" for k, v in sorted(by_path.items(), key=lambda i: -i[1])
                )
                print(f"  Allegro requests by endpoint: {split}", flush=True)
            finally:
                stop(emulator)
    return Run(
        expected / elapsed,
        expected / elapsed_ready,
        requests / expected,
        raw_publish,
        raw_consume,
        cpu * 1000 / expected,
    )


def main() -> int:
    runs = []
    for index in range(RUNS):
        run = asyncio.run(_run(index))
        runs.append(run)
        print(
            f"orders run {index + 1}: {run.orders_per_second:,.0f} orders/s"
            f" ({run.orders_per_second_ready:,.0f} from /healthz), "
            f"{run.requests_per_order:.3f} Allegro requests/order, raw broker "
            f"{run.raw_publish_rate:,.0f} publish/s {run.raw_consume_rate:,.0f} consume/s, "
            f"daemon CPU {run.cpu_ms_per_order:.2f} ms/order",
            flush=True,
        )
    rate = statistics.median(r.orders_per_second for r in runs)
    per_order = statistics.median(r.requests_per_order for r in runs)
    publish = statistics.median(r.raw_publish_rate for r in runs)
    consume = statistics.median(r.raw_consume_rate for r in runs)
    cpu = statistics.median(r.cpu_ms_per_order for r in runs)
    print(f"orders: {PURCHASES} purchases across {SELLERS} sellers, medians of {len(runs)} runs")
    ready = statistics.median(r.orders_per_second_ready for r in runs)
    print(f"  orders per second        {rate:>10,.0f}   target >= {TARGET_RATE:,.0f}")
    print(f"    with the clock started at /healthz {ready:,.0f} (without the start-up)")
    print(f"  Allegro requests / order {per_order:>10.3f}   target <= {TARGET_REQUESTS_PER_ORDER}")
    print(f"  raw broker publish/s     {publish:>10,.0f}   (confirms, quorum queue)")
    print(f"  raw broker consume/s     {consume:>10,.0f}   (prefetch 200, quorum queue)")
    print(f"  orders/s vs raw publish  {rate / publish:>10.2f}   (one order.created publish each)")
    print(f"  daemon CPU per order     {cpu:>10.2f} ms (the clock includes its start-up)")
    ok = rate >= TARGET_RATE and per_order <= TARGET_REQUESTS_PER_ORDER
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
