"""Tracking numbers to Allegro (issue 16): ``python -m bench shipping``.

1 000 paid orders across 10 sellers are stored by the daemon first; then the ERP publishes one
``shipment.added`` per order (accounts keep ``mark_sent_on_tracking`` on, the default;
``BENCH_MARK_SENT=0`` turns it off). Printed:
the time from the last message's confirm until every tracking number is on the emulator, and
until every order is SENT too; Allegro requests per tracking number for the tracking number
itself (carrier list reads, POSTs, read-backs; target <= 1.1, i.e. the carrier list cached and
no read per shipment), and apart from them the status writes (one PUT each, sharing Allegro's
150 requests/s per client id with the POSTs) and the order journal's reads meanwhile, with the
floor that limit puts under the run (all its requests / 150 s). Target: all on Allegro within
10 s of the last message.

Then the delivery status: the daemon is stopped and the tracker (``ShipmentTracker``, the
daemon's own, at the default ``TRACKING_INTERVAL``) runs in this process against the same
database and emulator, with the emulator's clock as its clock, while that clock is advanced a
day in ``TRACKING_STEP`` steps (a round after each): printed are the tracking reads per
shipment per day and the tracking requests per shipment per day that this took (measured on the
emulator, not computed), and the share of the client budget they are.

At each latency profile of the emulator (``--latency``, default both); one run each by default
(``BENCH_RUNS``); the machine is shared, so it is kept short.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import statistics
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import aio_pika
import aiohttp
import asyncpg
import structlog

from allegro_sync.adapters.postgres import pool as pg
from allegro_sync.config.settings import Settings, load_settings
from allegro_sync.daemon.app import build_allegro_stack, client_budget
from allegro_sync.daemon.shipment_tracker import ShipmentTracker
from allegro_sync.emulator.clock import parse_iso
from allegro_sync.handlers.shipment_tracking import TrackingTiming
from allegro_sync.metrics import Metrics
from bench._support import (
    ADMIN_TOKEN,
    LATENCIES,
    RESULTS,
    allegro_requests,
    connect_seller,
    cpu_seconds,
    daemon_env,
    free_port,
    side_by_side,
    start_daemon,
    start_emulator,
    stop,
    throwaway_database,
    throwaway_vhost,
    wait_http,
)

SELLERS = int(os.environ.get("BENCH_SELLERS", "10"))
SHIPMENTS = int(os.environ.get("BENCH_SHIPMENTS", "1000"))
RUNS = int(os.environ.get("BENCH_RUNS", "1"))
MARK_SENT = os.environ.get("BENCH_MARK_SENT", "1") != "0"
ALLEGRO_RATE = 150.0  # requests per second per client id (Allegro's limit, and the daemon's)
TARGET_SECONDS = 10.0
TARGET_REQUESTS = 1.1
POST = "POST /order/checkout-forms/{id}/shipments"
# what a tracking number costs: the carrier list, the POST, a read-back after a crash
TRACKING = ("GET /order/carriers", POST, "GET /order/checkout-forms/{id}/shipments")
STATUS_WRITE = "PUT /order/checkout-forms/{id}/fulfillment"
TRACKING_READ = "GET /order/carriers/{carrierId}/tracking"
DAY = 86_400.0
TRACKING_STEP = 600.0  # seconds of the emulator's clock between two rounds of the tracker


@dataclass
class Run:
    """One run's measurements."""

    seconds_to_allegro: float  # after the last message was confirmed by the broker
    seconds_to_sent: float
    requests_per_shipment: float  # the tracking number's own requests
    status_writes_per_shipment: float
    other_per_shipment: float  # the order journal's polls and its echo of the status changes
    floor_seconds: float  # every request of the run at Allegro's 150/s
    cpu_ms_per_shipment: float  # the daemon's
    tracking_reads_per_day: float  # per shipment, at the default interval, the emulator's day
    tracking_requests_per_day: float  # per shipment


async def _setup(emulator_url: str, daemon_url: str) -> list[str]:
    """Sellers connected, each with an offer bought ``SHIPMENTS / SELLERS`` times."""
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Accept": "application/json"}
    async with aiohttp.ClientSession(headers=headers) as session:
        sellers = [
            await connect_seller(
                session,
                emulator_url,
                daemon_url,
                f"bench-ship-{n}",
                {"auto_create_orders": True, "mark_sent_on_tracking": MARK_SENT},
            )
            for n in range(SELLERS)
        ]
    return sellers


async def _purchase(emulator_url: str, sellers: list[str]) -> None:
    per_seller = SHIPMENTS // len(sellers)
    async with aiohttp.ClientSession() as session:
        for seller_id in sellers:
            async with session.post(
                f"{emulator_url}/__control__/sellers/{seller_id}/offers",
                json={"name": "Kubek", "stock": SHIPMENTS * 10, "price": "19.99"},
            ) as r:
                offer = await r.json()
            async with session.post(
                f"{emulator_url}/__control__/purchases",
                json={"offer_id": offer["id"], "count": per_seller, "then": "pay"},
            ) as r:
                assert r.status == 201, await r.text()


async def _until(conn: asyncpg.Connection, query: str, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while await conn.fetchval(query) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {count}: {query}")
        await asyncio.sleep(0.05)


async def _publish(amqp_url: str, form_ids: list[uuid.UUID]) -> None:
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel(publisher_confirms=True)
    exchange = await channel.get_exchange("erp.events")
    messages = []
    for n, form_id in enumerate(form_ids):
        body = {
            "checkout_form_id": str(form_id),
            "carrier_id": ("INPOST", "DPD", "DHL", "POCZTA_POLSKA")[n % 4],
            "waybill": f"BENCH{n:010d}",
        }
        messages.append(
            aio_pika.Message(
                json.dumps(body).encode(),
                message_id=f"shipment:{form_id}",
                content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            )
        )
    await asyncio.gather(*(exchange.publish(m, routing_key="shipment.added") for m in messages))
    await connection.close()


async def _on_allegro(emulator_url: str, count: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while (await allegro_requests(emulator_url)).get(POST, 0) < count:
        if time.monotonic() > deadline:
            raise RuntimeError("the tracking numbers did not all reach the emulator")
        await asyncio.sleep(0.05)


async def _emulator_now(session: aiohttp.ClientSession, emulator_url: str) -> datetime:
    async with session.get(f"{emulator_url}/__control__/clock") as r:
        return parse_iso((await r.json())["now"])


async def _tracking_day(
    env: dict[str, str], emulator_url: str, conn: asyncpg.Connection, shipments: int
) -> tuple[float, float]:
    """A day of the emulator's clock with the daemon's tracker at the default interval: the
    tracking reads and requests per shipment it took."""
    overrides = {
        k.removeprefix("ALLEGRO_SYNC_").lower(): v
        for k, v in env.items()
        if k.startswith("ALLEGRO_SYNC_")
    }
    settings = load_settings(Settings, **overrides)
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    pool = await pg.create_pool(settings.database_url)
    metrics = Metrics()
    try:
        async with aiohttp.ClientSession() as session:
            stack = build_allegro_stack(settings, pool, session, metrics)
            now = [await _emulator_now(session, emulator_url)]
            tracker = ShipmentTracker(
                dsn=settings.database_url,
                pool=pool,
                allegro=stack.allegro,
                metrics=metrics,
                requests_per_minute=client_budget(settings),
                budget_share=settings.tracking_budget_share,
                timing=TrackingTiming(interval=settings.tracking_interval),
                clock=lambda: now[0],
            )
            reads_before = await conn.fetchval("SELECT sum(tracking_reads) FROM shipments")
            requests_before = (await allegro_requests(emulator_url)).get(TRACKING_READ, 0)
            # the day starts when the last tracking number went to Allegro
            start = await conn.fetchval("SELECT max(sent_at) FROM shipments")
            offset = max(0.0, (start - now[0]).total_seconds())
            advanced = 0.0
            while advanced < DAY + offset:
                async with session.post(
                    f"{emulator_url}/__control__/clock", json={"advance_seconds": TRACKING_STEP}
                ) as r:
                    assert r.status < 300
                advanced += TRACKING_STEP
                now[0] = await _emulator_now(session, emulator_url)
                await tracker.run_once()
            await tracker.stop(10.0)
        reads = await conn.fetchval("SELECT sum(tracking_reads) FROM shipments") - reads_before
        requests = (await allegro_requests(emulator_url)).get(TRACKING_READ, 0) - requests_before
    finally:
        await pool.close()
    return reads / shipments, requests / shipments


async def _run(index: int, latency: str) -> Run:
    async with throwaway_database("bench_shipping") as database_url:
        with throwaway_vhost("bench-shipping") as amqp_url:
            emulator_port, http_port = free_port(), free_port()
            emulator_url = f"http://127.0.0.1:{emulator_port}"
            daemon_url = f"http://127.0.0.1:{http_port}"
            emulator = start_emulator(emulator_port, latency=latency)
            env = daemon_env(database_url, amqp_url, emulator_url, http_port)
            daemon = None
            try:
                await wait_http(emulator_url + "/__control__/clock")
                daemon = start_daemon(env, RESULTS / f"shipping-daemon-{latency}-{index}.log")
                await wait_http(daemon_url + "/healthz")
                conn = await asyncpg.connect(database_url)
                try:
                    sellers = await _setup(emulator_url, daemon_url)
                    await _until(
                        conn,
                        "SELECT count(*) FROM journal_cursors WHERE journal = 'order'",
                        len(sellers),
                        60,
                    )
                    await _purchase(emulator_url, sellers)
                    expected = (SHIPMENTS // len(sellers)) * len(sellers)
                    await _until(
                        conn,
                        "SELECT count(*) FROM orders WHERE status = 'READY_FOR_PROCESSING'",
                        expected,
                        300,
                    )
                    form_ids = [
                        r["checkout_form_id"]
                        for r in await conn.fetch("SELECT checkout_form_id FROM orders")
                    ]
                    async with (
                        aiohttp.ClientSession() as session,
                        session.delete(f"{emulator_url}/__control__/requests") as r,
                    ):
                        assert r.status < 300
                    cpu_before = cpu_seconds(daemon)
                    await _publish(amqp_url, form_ids)
                    published = time.perf_counter()
                    await _on_allegro(emulator_url, expected)
                    to_allegro = time.perf_counter() - published
                    await _until(
                        conn,
                        "SELECT count(*) FROM shipments WHERE fulfillment_at IS NOT NULL",
                        expected,
                        300,
                    )
                    to_sent = time.perf_counter() - published
                    cpu = cpu_seconds(daemon) - cpu_before
                    by_path = await allegro_requests(emulator_url)
                    stop(daemon)
                    daemon = None
                    reads_per_day, requests_per_day = await _tracking_day(
                        env, emulator_url, conn, expected
                    )
                finally:
                    await conn.close()
                split = ", ".join(
                    f"{k} {v}" for k, v in sorted(by_path.items(), key=lambda i: -i[1])
                )
                print(f"  Allegro requests by endpoint: {split}", flush=True)
            finally:
                if daemon is not None:
                    stop(daemon)
                stop(emulator)
    tracking = sum(by_path.get(k, 0) for k in TRACKING)
    writes = by_path.get(STATUS_WRITE, 0)
    other = sum(by_path.values()) - tracking - writes
    floor = (tracking + writes + other) / ALLEGRO_RATE
    return Run(
        to_allegro,
        to_sent,
        tracking / expected,
        writes / expected,
        other / expected,
        floor,
        cpu * 1000 / expected,
        reads_per_day,
        requests_per_day,
    )


def main(latencies: Sequence[str] = LATENCIES) -> int:
    by_latency: dict[str, list[Run]] = {}
    for latency in latencies:
        runs = by_latency.setdefault(latency, [])
        for index in range(RUNS):
            run = asyncio.run(_run(index, latency))
            runs.append(run)
            print(
                f"shipping run {index + 1} at latency {latency}: all on Allegro"
                f" {run.seconds_to_allegro:.1f} s after the last message, all SENT"
                f" {run.seconds_to_sent:.1f} s; {run.requests_per_shipment:.3f} requests per"
                f" tracking number, {run.status_writes_per_shipment:.3f} status writes,"
                f" {run.other_per_shipment:.3f} journal reads; daemon CPU"
                f" {run.cpu_ms_per_shipment:.2f} ms per tracking number; tracking"
                f" {run.tracking_reads_per_day:.1f} reads and"
                f" {run.tracking_requests_per_day:.2f} requests per shipment per day",
                flush=True,
            )

    def med(pick: str, fmt: str) -> dict[str, str]:
        return {
            latency: format(statistics.median(getattr(r, pick) for r in runs), fmt)
            for latency, runs in by_latency.items()
        }

    def budget(runs: list[Run]) -> str:
        # 1 000 shipments on their way, as a share of the client's 9 000 requests a minute
        per_minute = statistics.median(r.tracking_requests_per_day for r in runs) * 1000 / 1440
        return f"{per_minute / 9000:.4%}"

    mark = "on" if MARK_SENT else "off"
    side_by_side(
        f"shipping: {SHIPMENTS} tracking numbers across {SELLERS} sellers, medians of {RUNS}"
        f" run(s) per latency profile, mark_sent_on_tracking {mark}",
        latencies,
        [
            (
                "seconds until all on Allegro",
                med("seconds_to_allegro", ".1f"),
                f"<= {TARGET_SECONDS:.0f}",
            ),
            ("seconds until all SENT", med("seconds_to_sent", ".1f"), ""),
            ("floor at 150 requests/s", med("floor_seconds", ".1f"), "(all the run's requests)"),
            (
                "requests per tracking number",
                med("requests_per_shipment", ".3f"),
                f"<= {TARGET_REQUESTS}",
            ),
            (
                "status writes (PUT) per order",
                med("status_writes_per_shipment", ".3f"),
                "(mark_sent_on_tracking)",
            ),
            (
                "order journal reads per order",
                med("other_per_shipment", ".3f"),
                "(polls, and the status changes' echo)",
            ),
            ("daemon CPU ms per tracking number", med("cpu_ms_per_shipment", ".2f"), ""),
            (
                "tracking reads / shipment / day",
                med("tracking_reads_per_day", ".1f"),
                "(default interval, emulator's day)",
            ),
            (
                "tracking requests / shipment / day",
                med("tracking_requests_per_day", ".2f"),
                "(20 waybills a request)",
            ),
            (
                "  1 000 on their way: client budget",
                {k: budget(v) for k, v in by_latency.items()},
                "<= TRACKING_BUDGET_SHARE 5%",
            ),
        ],
    )
    ok = all(
        statistics.median(r.seconds_to_allegro for r in runs) <= TARGET_SECONDS
        and statistics.median(r.requests_per_shipment for r in runs) <= TARGET_REQUESTS
        for runs in by_latency.values()
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
