"""Listing throughput against the per-seller write ceiling (issue 17, Speed):
``python -m bench listing [--latency none,realistic]``.

``BENCH_LISTINGS`` products (default 3 000; the issue names 10 000, which at the ceiling takes
more than four minutes a run) with an EAN in Allegro's catalogue, a price and stock wait in the
daemon's database (announced by the ERP: ``product.upserted``, ``price.changed``,
``stock.changed``); one seller. The clock starts at ``POST /offers/listing-jobs`` (list every
unlisted product) and stops when the job has nothing pending. Printed per run and as medians of
``BENCH_RUNS`` (3): offers listed per minute and as a share of Allegro's per-seller ceiling of
2 490 product-offer writes a minute, the 429s the daemon met, and Allegro requests per listed
offer (the listing's own: catalogue look-ups, POSTs, looks at the offer list, operation and
offer reads, image uploads; and all requests of the run, journals included).
Targets (at both latencies): at least 0.9 of the ceiling, no 429, at most 1.2 requests per offer.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aio_pika
import aiohttp
import asyncpg

from bench._support import (
    ADMIN_TOKEN,
    LATENCIES,
    RESULTS,
    allegro_requests,
    connect_seller,
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

PRODUCTS = int(os.environ.get("BENCH_LISTINGS", "3000"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
CEILING_PER_MINUTE = 2490
TARGET_SHARE = 0.9
TARGET_REQUESTS_PER_OFFER = 1.2
CATEGORY = "165"  # a leaf category of the emulator's tree
ACCOUNT = {
    "default_category_id": CATEGORY,
    "address": {"city": "Kraków", "post_code": "30-001", "country_code": "PL"},
}
# what Allegro requires of every listed product: GPSR data and the category's parameters
LISTABLE: dict[str, Any] = {
    "responsible_producer_id": "b7f1c0de-0000-4000-8000-000000000001",
    "safety_information": {"type": "TEXT", "description": "Chronić przed wilgocią."},
    "parameters": [{"id": "11323", "name": None, "values": ["Nowy"]}],
}
LISTING_ROUTES = (
    "POST /sale/product-offers",
    "GET /sale/product-offers/{offer_id}/operations/{operation_id}",
    "GET /sale/product-offers/{offer_id}",
    "GET /sale/offers",
    "GET /sale/products",
    "GET /sale/products/{product_id}",
    "POST /sale/images",
)


@dataclass
class Run:
    """One run's measurements."""

    listed: int
    per_minute: float
    share: float
    rate_limited: int
    listing_requests_per_offer: float
    requests_per_offer: float


def _gtin(n: int) -> str:
    """A valid EAN-13 (check digit) for product ``n``."""
    body = f"590{n:09d}"
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
    return body + str((10 - total % 10) % 10)


async def _catalogue(session: aiohttp.ClientSession, emulator_url: str) -> None:
    for first in range(0, PRODUCTS, 1000):
        products = [
            {"gtin": _gtin(n), "name": f"Kubek ceramiczny numer {n}", "category_id": CATEGORY}
            for n in range(first, min(first + 1000, PRODUCTS))
        ]
        async with session.post(
            f"{emulator_url}/__control__/products", json={"products": products}
        ) as r:
            assert r.status == 201, await r.text()


async def _erp_products(amqp_url: str, database_url: str) -> None:
    """The ERP announces the products, their prices and stock; wait until all are stored."""
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel(publisher_confirms=True)
    exchange = await channel.get_exchange("erp.events")
    messages = []
    for n in range(PRODUCTS):
        pid = f"P{n:06d}"
        messages += [
            (
                "product.upserted",
                f"product:{pid}",
                {"product_id": pid, "ean": _gtin(n), "name": f"Kubek ceramiczny {n}", **LISTABLE},
            ),
            (
                "price.changed",
                f"price:{pid}:1",
                {
                    "product_id": pid,
                    "price_list": "default",
                    "price": "19.99",
                    "currency": "PLN",
                    "version": 1,
                },
            ),
            ("stock.changed", f"stock:{pid}:1", {"product_id": pid, "quantity": 5, "version": 1}),
        ]
    for first in range(0, len(messages), 1000):
        await asyncio.gather(
            *(
                exchange.publish(
                    aio_pika.Message(
                        json.dumps(body).encode(),
                        message_id=message_id,
                        content_type="application/json",
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    ),
                    routing_key=key,
                )
                for key, message_id, body in messages[first : first + 1000]
            )
        )
    await connection.close()
    conn = await asyncpg.connect(database_url)
    try:
        for _ in range(1200):
            stored = await conn.fetchval(
                "SELECT (SELECT count(*) FROM products) + (SELECT count(*) FROM product_prices)"
                " + (SELECT count(*) FROM product_stock)"
            )
            if stored >= 3 * PRODUCTS:
                return
            await asyncio.sleep(0.1)
        raise RuntimeError("the ERP's products were not stored")
    finally:
        await conn.close()


async def _await_job(
    session: aiohttp.ClientSession, daemon_url: str, job_id: int
) -> dict[str, Any]:
    while True:
        async with session.get(f"{daemon_url}/offers/listing-jobs/{job_id}") as r:
            job = await r.json()
        if job["pending"] == 0:
            return dict(job)
        await asyncio.sleep(0.25)


async def _run(index: int, latency: str) -> Run:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Accept": "application/json"}
    async with throwaway_database("bench_listing") as database_url:
        with throwaway_vhost("bench-listing") as amqp_url:
            emulator_port, http_port = free_port(), free_port()
            emulator_url = f"http://127.0.0.1:{emulator_port}"
            daemon_url = f"http://127.0.0.1:{http_port}"
            emulator = start_emulator(emulator_port, latency=latency)
            env = daemon_env(database_url, amqp_url, emulator_url, http_port)
            log = RESULTS / f"listing-daemon-{latency}-{index}.log"
            log.unlink(missing_ok=True)
            try:
                await wait_http(emulator_url + "/__control__/clock")
                daemon = start_daemon(env, log, profile=True)
                await wait_http(daemon_url + "/healthz")
                async with aiohttp.ClientSession(headers=headers) as session:
                    await connect_seller(
                        session,
                        emulator_url,
                        daemon_url,
                        "bench-lister",
                        ACCOUNT,
                    )
                    async with session.get(f"{daemon_url}/accounts") as r:
                        (account,) = (await r.json())["items"]
                    await _catalogue(session, emulator_url)
                    await _erp_products(amqp_url, database_url)
                    async with session.delete(f"{emulator_url}/__control__/requests") as r:
                        assert r.status < 300
                    started = time.perf_counter()
                    async with session.post(
                        f"{daemon_url}/offers/listing-jobs", json={"account_id": account["id"]}
                    ) as r:
                        assert r.status == 202, await r.text()
                        job = await r.json()
                    job = await _await_job(session, daemon_url, job["id"])
                    elapsed = time.perf_counter() - started
                by_path = await allegro_requests(emulator_url)
                stop(daemon)
                split = ", ".join(
                    f"{k} {v}" for k, v in sorted(by_path.items(), key=lambda i: -i[1])
                )
                print(f"  Allegro requests by endpoint: {split}", flush=True)
                if job["failed"] or job["skipped"]:
                    print(f"  not listed: {job.get('failures')}", flush=True)
            finally:
                stop(emulator)
    listed = int(job["listed"])
    rate_limited = log.read_text().count("allegro_rate_limited")
    listing_requests = sum(by_path.get(route, 0) for route in LISTING_ROUTES)
    per_minute = listed / elapsed * 60
    return Run(
        listed,
        per_minute,
        per_minute / CEILING_PER_MINUTE,
        rate_limited,
        listing_requests / max(listed, 1),
        sum(by_path.values()) / max(listed, 1),
    )


def main(latencies: Sequence[str] = LATENCIES) -> int:
    by_latency: dict[str, list[Run]] = {}
    for latency in latencies:
        runs = by_latency.setdefault(latency, [])
        for index in range(RUNS):
            run = asyncio.run(_run(index, latency))
            runs.append(run)
            print(
                f"listing run {index + 1} at latency {latency}: {run.listed} listed,"
                f" {run.per_minute:,.0f} offers/min = {run.share:.2f} of {CEILING_PER_MINUTE},"
                f" {run.rate_limited} x 429, {run.listing_requests_per_offer:.3f} listing"
                f" requests/offer ({run.requests_per_offer:.3f} all)",
                flush=True,
            )

    def med(pick: str, fmt: str) -> dict[str, str]:
        return {
            latency: format(statistics.median(getattr(r, pick) for r in runs), fmt)
            for latency, runs in by_latency.items()
        }

    side_by_side(
        f"listing: {PRODUCTS} products on one seller, medians of {RUNS} runs per latency profile",
        latencies,
        [
            (
                "offers listed / minute",
                med("per_minute", ",.0f"),
                f"(ceiling {CEILING_PER_MINUTE})",
            ),
            ("share of the ceiling", med("share", ".2f"), f">= {TARGET_SHARE}"),
            ("429 from Allegro", med("rate_limited", ".0f"), "0"),
            (
                "listing requests / offer",
                med("listing_requests_per_offer", ".3f"),
                f"<= {TARGET_REQUESTS_PER_OFFER}",
            ),
            ("all requests / offer", med("requests_per_offer", ".3f"), "(journals included)"),
        ],
    )
    ok = all(
        statistics.median(r.share for r in runs) >= TARGET_SHARE
        and max(r.rate_limited for r in runs) == 0
        and statistics.median(r.listing_requests_per_offer for r in runs)
        <= TARGET_REQUESTS_PER_OFFER
        for runs in by_latency.values()
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
