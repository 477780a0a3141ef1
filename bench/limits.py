"""Limits shared by replicas (issue 18): ``python -m bench limits [--latency none,realistic]``.

One database, one emulator whose client id is blocked above ``BENCH_LIMIT`` requests a minute
(default 1 200, not Allegro's 9 000, so that a full minute is over soon and the work needed to
fill it is small), ``BENCH_SELLERS`` sellers with ``BENCH_OFFERS`` bound offers each. For each
scenario the daemons start (every one with ``CLIENT_REQUESTS_PER_MINUTE`` = the limit: nothing
divided by hand), stock changes flow for ``BENCH_WARMUP`` + ``BENCH_SECONDS`` seconds (every
second a random tenth of the products, each to one of a few quantities: far more commands than
the budget lets through), and the emulator's count of requests of the client id is sampled each
second. Printed per scenario: the requests of the busiest and of the average sliding minute
against the limit, each replica's part (its ``/metrics``), and the 429s the daemons saw.

Scenarios: one replica; two; three; two where the second is capped at 60 a minute
(``ALLEGRO_REQUESTS_PER_MINUTE``: a replica with next to nothing to send), to show that a busy
replica takes what the others leave. Targets: average minute >= 0.9 of the limit, busiest
minute <= the limit, no 429. Medians of ``BENCH_RUNS`` runs per latency profile.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aio_pika
import aiohttp
import asyncpg

from bench._support import (
    ADMIN_TOKEN,
    LATENCIES,
    RESULTS,
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

LIMIT = int(os.environ.get("BENCH_LIMIT", "1200"))
SELLERS = int(os.environ.get("BENCH_SELLERS", "10"))
OFFERS = int(os.environ.get("BENCH_OFFERS", "100"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "10"))
SECONDS = int(os.environ.get("BENCH_SECONDS", "65"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
IDLE_CAP = 60
# (label, replicas, caps of the replicas after the first)
SCENARIOS: tuple[tuple[str, int, int | None], ...] = (
    ("1 replica", 1, None),
    ("2 replicas", 2, None),
    ("3 replicas", 3, None),
    (f"2, one capped at {IDLE_CAP}/min", 2, IDLE_CAP),
)


@dataclass
class Measured:
    """One scenario of one run."""

    busiest_minute: int
    average_minute: float
    parts: list[float]  # each replica's share of the requests
    rate_limited: int


def _minutes(samples: list[tuple[float, int]]) -> tuple[int, float]:
    """(busiest, average) requests over sliding 60 s windows of the samples (t, cumulative)."""
    windows = []
    for i, (t0, c0) in enumerate(samples):
        later = [(t, c) for t, c in samples[i:] if t - t0 <= 60.0]
        t1, c1 = later[-1]
        if t1 - t0 >= 59.0:
            windows.append(c1 - c0)
    if not windows:  # a short run: scaled to a minute
        (t0, c0), (t1, c1) = samples[0], samples[-1]
        rate = (c1 - c0) * 60.0 / max(t1 - t0, 1.0)
        return round(rate), rate
    return max(windows), statistics.mean(windows)


async def _requests(session: aiohttp.ClientSession, emulator_url: str) -> int:
    async with session.get(f"{emulator_url}/__control__/requests") as r:
        return int((await r.json())["by_client"].get("demo-client", 0))


async def _daemon_requests(session: aiohttp.ClientSession, url: str) -> float:
    """The Allegro requests a daemon made so far (its ``/metrics``)."""
    async with session.get(f"{url}/metrics") as r:
        text = await r.text()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("allegro_sync_allegro_requests_total{")
    )


async def _setup(
    emulator_url: str, daemon_url: str, database_url: str, env: dict[str, str]
) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Accept": "application/json"}
    async with aiohttp.ClientSession(headers=headers) as session:
        for n in range(SELLERS):
            settings = {"stock_control": True, "raise_quantity_on_erp_sync": True}
            seller_id = await connect_seller(
                session, emulator_url, daemon_url, f"bench-limits-{n}", settings
            )
            async with session.post(
                f"{emulator_url}/__control__/sellers/{seller_id}/offers",
                json={"name": f"o{n}", "count": OFFERS, "stock": 50},
            ) as r:
                assert r.status < 300, await r.text()
    importer = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "allegro_sync.daemon.cli",
        "offers",
        "import",
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert await importer.wait() == 0, "offers import failed"
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "INSERT INTO products (id, name) SELECT 'P' || n, 'Product ' || n"
            " FROM generate_series(0, $1 - 1) AS n",
            SELLERS * OFFERS,
        )
        await conn.execute(
            """
            UPDATE offers SET product_id = 'P' || (n.k - 1), bound_at = now()
              FROM (SELECT id, row_number() OVER (ORDER BY account_id, id) AS k FROM offers) AS n
             WHERE offers.id = n.id
            """
        )
    finally:
        await conn.close()


async def _feed(amqp_url: str, until: float, version: list[int]) -> None:
    """Every second a random tenth of the products, each to one of three quantities."""
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel(publisher_confirms=True)
    exchange = await channel.get_exchange("erp.events")
    rng = random.Random(version[0])
    products = SELLERS * OFFERS
    while time.monotonic() < until:
        started = time.monotonic()
        version[0] += 1
        chosen = rng.sample(range(products), max(1, products // 10))
        await asyncio.gather(
            *(
                exchange.publish(
                    aio_pika.Message(
                        json.dumps(
                            {
                                "product_id": f"P{p}",
                                "quantity": 20 + rng.randrange(3),
                                "version": version[0],
                            }
                        ).encode(),
                        message_id=f"stock:P{p}:{version[0]}",
                        content_type="application/json",
                    ),
                    routing_key="stock.changed",
                )
                for p in chosen
            )
        )
        await asyncio.sleep(max(0.0, 1.0 - (time.monotonic() - started)))
    await connection.close()


def _rate_limited(logs: Sequence[Path], before: Sequence[int]) -> int:
    return sum(
        log.read_text(errors="replace").count("allegro_rate_limited") - seen
        for log, seen in zip(logs, before, strict=True)
    )


async def _scenario(
    base_env: dict[str, str],
    emulator_url: str,
    amqp_url: str,
    replicas: int,
    cap: int | None,
    logs: list[Path],
    version: list[int],
) -> Measured:
    ports = [free_port() for _ in range(replicas)]
    daemons = []
    for i, port in enumerate(ports):
        env = dict(base_env)
        env["ALLEGRO_SYNC_HTTP_PORT"] = str(port)
        env["ALLEGRO_SYNC_PUBLIC_URL"] = f"http://127.0.0.1:{port}"
        if i > 0 and cap is not None:
            env["ALLEGRO_SYNC_ALLEGRO_REQUESTS_PER_MINUTE"] = str(cap)
        daemons.append(start_daemon(env, logs[i]))
    seen = [log.read_text(errors="replace").count("allegro_rate_limited") for log in logs]
    try:
        for port in ports:
            await wait_http(f"http://127.0.0.1:{port}/healthz")
        async with aiohttp.ClientSession() as session:
            feeding = asyncio.create_task(
                _feed(amqp_url, time.monotonic() + WARMUP + SECONDS, version)
            )
            await asyncio.sleep(WARMUP)
            parts_before = [await _daemon_requests(session, f"http://127.0.0.1:{p}") for p in ports]
            samples = []
            started = time.monotonic()
            while time.monotonic() - started < SECONDS:
                samples.append((time.monotonic(), await _requests(session, emulator_url)))
                await asyncio.sleep(1.0)
            parts_after = [await _daemon_requests(session, f"http://127.0.0.1:{p}") for p in ports]
            await feeding
    finally:
        for daemon in daemons:
            stop(daemon)
    busiest, average = _minutes(samples)
    made = [a - b for a, b in zip(parts_after, parts_before, strict=True)]
    parts = [m / max(sum(made), 1.0) for m in made]
    return Measured(busiest, average, parts, _rate_limited(logs[:replicas], seen[:replicas]))


async def _run(index: int, latency: str) -> dict[str, Measured]:
    results: dict[str, Measured] = {}
    async with throwaway_database("bench_limits") as database_url:
        with throwaway_vhost("bench-limits") as amqp_url:
            emulator_port, http_port = free_port(), free_port()
            emulator_url = f"http://127.0.0.1:{emulator_port}"
            emulator = start_emulator(
                emulator_port, "--rate-limit-per-minute", str(LIMIT), latency=latency
            )
            env = daemon_env(database_url, amqp_url, emulator_url, http_port)
            env["ALLEGRO_SYNC_CLIENT_REQUESTS_PER_MINUTE"] = str(LIMIT)
            env["ALLEGRO_SYNC_ALLEGRO_REQUESTS_PER_MINUTE"] = str(LIMIT)
            logs = [RESULTS / f"limits-daemon-{latency}-{index}-{i}.log" for i in range(3)]
            for log in logs:
                log.parent.mkdir(parents=True, exist_ok=True)
                log.write_text("")
            try:
                await wait_http(emulator_url + "/__control__/clock")
                daemon = start_daemon(env, logs[0])
                await wait_http(f"http://127.0.0.1:{http_port}/healthz")
                await _setup(emulator_url, f"http://127.0.0.1:{http_port}", database_url, env)
                assert stop(daemon) == 0
                version = [index * 100_000]
                for label, replicas, cap in SCENARIOS:
                    measured = await _scenario(
                        env, emulator_url, amqp_url, replicas, cap, logs, version
                    )
                    results[label] = measured
                    print(
                        f"  run {index + 1} {latency} {label}: busiest minute"
                        f" {measured.busiest_minute}, average {measured.average_minute:.0f}"
                        f" of {LIMIT}; parts "
                        + " / ".join(f"{p:.0%}" for p in measured.parts)
                        + f"; 429s {measured.rate_limited}",
                        flush=True,
                    )
            finally:
                stop(emulator)
    return results


def main(latencies: Sequence[str] = LATENCIES) -> int:
    by_latency: dict[str, list[dict[str, Measured]]] = {}
    for latency in latencies:
        for index in range(RUNS):
            by_latency.setdefault(latency, []).append(asyncio.run(_run(index, latency)))
    rows = []
    ok = True
    for label, _, _ in SCENARIOS:

        def med(pick: str, label: str = label) -> dict[str, float]:
            return {
                k: float(statistics.median(getattr(r[label], pick) for r in runs))
                for k, runs in by_latency.items()
            }

        busiest, average, limited = (
            med("busiest_minute"),
            med("average_minute"),
            med("rate_limited"),
        )
        first = {
            k: float(statistics.median(r[label].parts[0] for r in runs))
            for k, runs in by_latency.items()
        }
        rows += [
            (
                f"{label}: busiest minute",
                {k: f"{v:,.0f}" for k, v in busiest.items()},
                f"<= {LIMIT}",
            ),
            (
                f"{label}: average minute / limit",
                {k: f"{v / LIMIT:.2f}" for k, v in average.items()},
                ">= 0.90",
            ),
            (f"{label}: first replica's part", {k: f"{v:.0%}" for k, v in first.items()}, ""),
            (f"{label}: 429s", {k: f"{v:.0f}" for k, v in limited.items()}, "0"),
        ]
        ok &= all(v <= LIMIT for v in busiest.values())
        ok &= all(v >= 0.9 * LIMIT for v in average.values())
        ok &= all(v == 0 for v in limited.values())
    side_by_side(
        f"limits: one client id at {LIMIT} requests a minute, {SELLERS} sellers x {OFFERS}"
        f" offers, {SECONDS} s measured after {WARMUP} s, medians of {RUNS} runs",
        list(by_latency),
        rows,
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
