"""Soak (issue 18, item 5): ``python -m bench soak --minutes N``.

One daemon against the emulator, a throwaway database and virtual host, under a steady mix for
N minutes: purchases (``BENCH_SOAK_ORDERS`` a second, on ``BENCH_SELLERS`` sellers with
auto-created orders), ``stock.changed`` (``BENCH_SOAK_STOCK`` a second) and ``price.changed``
(``BENCH_SOAK_PRICES`` a second) for ``BENCH_PRODUCTS`` products bound to two offers each, and
``order.message`` (``BENCH_SOAK_MESSAGES`` a second) about orders announced, by e-mail (to a local
aiosmtpd server) for half the sellers and through Allegro's message centre for the others.
Every ``BENCH_SOAK_REPORT`` seconds (30) one line: the daemon's RSS, open files and database
connections, the rows of the tables that grow, the rows the retention pruned so far (the
daemon's ``allegro_sync_retention_pruned_total``), and the latencies of that interval: purchase
-> ``order.created`` received by the ERP, ``stock.changed`` published -> the Allegro command
carrying it sent (``offer_commands.sent_at``, as ``bench stock`` measures).

So that a short run shows the tables level off, the retentions are shrunk to a minute and the
pruning round to 15 s (``RETENTION``; a ``BENCH_ALLEGRO_SYNC_<NAME>`` variable overrides any).

At the end, against the sample at the end of the warm-up (a sixth of the run, 30 s to 5 min):
RSS at the end (target: within 10 %), open files and connections (target: no growth: at the end
within 10 % of the most seen in the first half after the warm-up, as sockets come and go with
the requests in flight), and per pruned table whether it stayed bounded (the last sample at most
20 % above the largest one taken once a retention and a pruning round had passed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from subprocess import Popen

import aio_pika
import aiohttp
import asyncpg
from aiosmtpd.controller import Controller

from allegro_sync.daemon.pollers import WAKE_CHANNEL
from bench._support import (
    ADMIN_TOKEN,
    connect_seller,
    cpu_seconds,
    free_port,
    services,
)

SELLERS = int(os.environ.get("BENCH_SELLERS", "4"))
PRODUCTS = int(os.environ.get("BENCH_PRODUCTS", "500"))
ORDERS = int(os.environ.get("BENCH_SOAK_ORDERS", "2"))
STOCK = int(os.environ.get("BENCH_SOAK_STOCK", "50"))
PRICES = int(os.environ.get("BENCH_SOAK_PRICES", "10"))
MESSAGES = int(os.environ.get("BENCH_SOAK_MESSAGES", "1"))
# how order.message goes: "both" (by e-mail for half the sellers, the message centre for the
# others), "email" or "message_centre" (to see which one a growth comes from)
CHANNEL = os.environ.get("BENCH_SOAK_CHANNEL", "both")
REPORT_EVERY = float(os.environ.get("BENCH_SOAK_REPORT", "30"))
KEEP_SECONDS = 60.0
PRUNE_EVERY = 15.0
RETENTION = {
    "ALLEGRO_SYNC_INBOX_RETENTION_DAYS": str(KEEP_SECONDS / 86_400),
    "ALLEGRO_SYNC_EVENT_LOG_RETENTION_DAYS": str(KEEP_SECONDS / 86_400),
    "ALLEGRO_SYNC_MAIL_OUTBOX_RETENTION_DAYS": str(KEEP_SECONDS / 86_400),
    "ALLEGRO_SYNC_OFFER_COMMAND_RETENTION_DAYS": str(KEEP_SECONDS / 86_400),
    "ALLEGRO_SYNC_RETENTION_INTERVAL": str(PRUNE_EVERY),
}
PRUNED = ("inbox", "event_log", "mail_outbox", "order_messages", "offer_commands")
SHOWN = (*PRUNED, "orders")  # orders are the seller's data: they grow by design
ORDER_OFFER = "Soak order offer"


@dataclass
class Sample:
    """One report."""

    at: float  # seconds since the load started
    rss_mb: float
    files: int
    sockets: int
    connections: int
    rows: dict[str, int]
    pruned: dict[str, int]
    cpu: float  # the daemon's CPU seconds so far
    order_latencies: list[float] = field(default_factory=list)
    stock_latencies: list[float] = field(default_factory=list)


@dataclass
class Load:
    """What the load generators sent, for the latencies."""

    purchases: dict[str, float] = field(default_factory=dict)  # form id -> when bought
    stock_sent: list[tuple[str, float]] = field(default_factory=list)  # (product, published)
    order_latencies: list[float] = field(default_factory=list)
    stock_latencies: list[float] = field(default_factory=list)
    announced: deque[str] = field(default_factory=lambda: deque(maxlen=1000))  # form ids
    orders: int = 0
    messages: int = 0
    stock: int = 0
    prices: int = 0
    refused: int = 0  # purchases the emulator refused


class MailSink:
    """The buyers' mail server: accepts every message and counts it."""

    def __init__(self) -> None:
        self.received = 0

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.received += 1
        return "250 OK"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def open_files(pid: int) -> tuple[int, int]:
    """The process's open descriptors, and how many of them are sockets."""
    folder = f"/proc/{pid}/fd"
    targets = []
    for name in os.listdir(folder):
        with contextlib.suppress(OSError):  # closed meanwhile
            targets.append(os.readlink(f"{folder}/{name}"))
    return len(targets), sum(1 for target in targets if target.startswith("socket:"))


def percentile(values: Sequence[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


async def pruned_so_far(session: aiohttp.ClientSession, daemon_url: str) -> dict[str, int]:
    """The daemon's ``allegro_sync_retention_pruned_total`` by table."""
    found = dict.fromkeys(PRUNED, 0)
    async with session.get(f"{daemon_url}/metrics") as r:
        text = await r.text()
    for line in text.splitlines():
        if line.startswith("allegro_sync_retention_pruned_total{"):
            labels, value = line.rsplit(" ", 1)
            table = labels.split('table="', 1)[1].split('"', 1)[0]
            found[table] = int(float(value))
    return found


async def setup(
    emulator_url: str, daemon_url: str, database_url: str, env: dict[str, str]
) -> list[str]:
    """Sellers with their bound offers and one offer each to buy from; the order offers' ids."""
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Accept": "application/json"}
    settings: dict[str, object] = {
        "auto_create_orders": True,
        "stock_control": True,
        "raise_quantity_on_erp_sync": True,
        "sync_prices": True,
    }
    order_offers = []
    async with aiohttp.ClientSession(headers=headers) as session:
        for n in range(SELLERS):
            channel = CHANNEL if CHANNEL != "both" else ("message_centre", "email")[n % 2]
            seller_id = await connect_seller(
                session,
                emulator_url,
                daemon_url,
                f"soak-{n}",
                settings | {"order_message_channel": channel},
            )
            offers_url = f"{emulator_url}/__control__/sellers/{seller_id}/offers"
            body = {"name": "Soak", "count": 2 * PRODUCTS // SELLERS, "stock": 6, "price": "10.00"}
            async with session.post(offers_url, json=body) as r:
                assert r.status < 300, await r.text()
            body = {"name": ORDER_OFFER, "stock": 10_000_000, "price": "19.99"}
            async with session.post(offers_url, json=body) as r:
                assert r.status < 300, await r.text()
                order_offers.append(str((await r.json())["id"]))
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
        await conn.execute("SELECT pg_notify($1, '*')", WAKE_CHANNEL)
        await conn.execute(
            "INSERT INTO products (id, name) SELECT 'P' || n, 'Product ' || n"
            " FROM generate_series(0, $1 - 1) AS n",
            PRODUCTS,
        )
        await conn.execute(
            """
            UPDATE offers SET product_id = 'P' || ((n.k - 1) % $1), bound_at = now(),
                              sync_price = true
              FROM (SELECT id, row_number() OVER (ORDER BY account_id, id) AS k FROM offers
                     WHERE name <> $2) AS n
             WHERE offers.id = n.id
            """,
            PRODUCTS,
            ORDER_OFFER,
        )
    finally:
        await conn.close()
    return order_offers


async def erp_side(amqp_url: str, load: Load, stopping: asyncio.Event) -> None:
    """The ERP: takes everything the daemon publishes, timing each ``order.created``."""
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=500)
    queue = await channel.get_queue("allegro-sync.events.erp")

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        await message.ack()
        if message.routing_key == "order.created" and message.message_id:
            form_id = message.message_id.removeprefix("order.created:")
            load.announced.append(form_id)
            bought = load.purchases.pop(form_id, None)
            if bought is not None:
                load.order_latencies.append(time.time() - bought)

    await queue.consume(on_message)
    try:
        await stopping.wait()
    finally:
        await connection.close()


async def buyers(
    emulator_url: str, order_offers: list[str], load: Load, stopping: asyncio.Event
) -> None:
    """``ORDERS`` paid purchases a second, the sellers in turn."""
    async with aiohttp.ClientSession() as session:
        turn = 0
        while not stopping.is_set():
            started = time.monotonic()
            offer_id = order_offers[turn % len(order_offers)]
            turn += 1
            body = {"offer_id": offer_id, "count": ORDERS, "then": "pay"}
            if ORDERS > 0:
                async with session.post(f"{emulator_url}/__control__/purchases", json=body) as r:
                    found = await r.json()
                now = time.time()
                if r.status == 201:
                    forms = found.get("checkout_form_ids") or [found["checkout_form_id"]]
                    for form_id in forms:
                        load.purchases[form_id] = now
                    load.orders += len(forms)
                else:
                    load.refused += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    stopping.wait(), max(0.0, 1.0 - (time.monotonic() - started))
                )


async def erp_publisher(amqp_url: str, load: Load, stopping: asyncio.Event) -> None:
    """``STOCK`` stock and ``PRICES`` price changes a second, in ticks of 100 ms; a product's
    quantity always differs from its previous one, so that each change needs a command."""
    rng = random.Random(18)
    quantity = dict.fromkeys(range(PRODUCTS), 6)
    version = 0
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel(publisher_confirms=True)
    exchange = await channel.get_exchange("erp.events")
    try:
        tick = 0
        started = time.monotonic()
        while not stopping.is_set():
            batch: list[tuple[str, str, dict[str, object]]] = []
            for _ in range(STOCK // 10 + (1 if tick % 10 < STOCK % 10 else 0)):
                product = rng.randrange(PRODUCTS)
                version += 1
                quantity[product] = 5 + (quantity[product] - 4) % 3
                body = {"product_id": f"P{product}", "quantity": quantity[product]}
                batch.append(
                    ("stock.changed", f"soak-stock:{version}", body | {"version": version})
                )
            for _ in range(PRICES // 10 + (1 if tick % 10 < PRICES % 10 else 0)):
                product = rng.randrange(PRODUCTS)
                version += 1
                body = {
                    "product_id": f"P{product}",
                    "price_list": "default",
                    "price": f"{10 + version % 40}.99",
                    "currency": "PLN",
                    "version": version,
                }
                batch.append(("price.changed", f"soak-price:{version}", body))
            for _ in range(MESSAGES // 10 + (1 if tick % 10 < MESSAGES % 10 else 0)):
                if not load.announced:
                    break
                version += 1
                body = {
                    "checkout_form_id": rng.choice(load.announced),
                    "subject": "Your order",
                    "body": f"A note about your order ({version}).",
                }
                batch.append(("order.message", f"soak-message:{version}", body))
            now = time.time()
            await asyncio.gather(
                *(
                    exchange.publish(
                        aio_pika.Message(
                            json.dumps(body).encode(),
                            message_id=mid,
                            content_type="application/json",
                        ),
                        routing_key=key,
                    )
                    for key, mid, body in batch
                )
            )
            for key, _, body in batch:
                if key == "stock.changed":
                    load.stock_sent.append((str(body["product_id"]), now))
                    load.stock += 1
                elif key == "price.changed":
                    load.prices += 1
                else:
                    load.messages += 1
            tick += 1
            pause = started + tick / 10 - time.monotonic()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), max(0.0, pause))
    finally:
        await connection.close()


async def match_stock(conn: asyncpg.Connection, load: Load, give_up: float = 45.0) -> None:
    """Each stock change published -> the first command created after it that carries one of
    the product's offers, once sent; changes without one after ``give_up`` s are dropped (their
    command may be pruned after a minute)."""
    if not load.stock_sent:
        return
    since = min(t for _, t in load.stock_sent)
    rows = await conn.fetch(
        """
        SELECT o.product_id, extract(epoch FROM c.created_at) AS created,
               extract(epoch FROM c.sent_at) AS sent
          FROM offer_commands AS c, unnest(c.offers) AS u (offer_id)
          JOIN offers AS o ON o.id = u.offer_id
         WHERE c.sent_at IS NOT NULL AND c.kind = 'quantity'
           AND c.created_at >= to_timestamp($1)
        """,
        since,
    )
    per_product: dict[str, list[tuple[float, float]]] = {}
    for r in rows:
        per_product.setdefault(r["product_id"], []).append((float(r["created"]), float(r["sent"])))
    waiting = []
    now = time.time()
    for product, published in load.stock_sent:
        later = [s for c, s in per_product.get(product, []) if c >= published]
        if later:
            load.stock_latencies.append(min(later) - published)
        elif now - published < give_up:
            waiting.append((product, published))
    load.stock_sent = waiting


async def sample(
    conn: asyncpg.Connection,
    session: aiohttp.ClientSession,
    daemon_url: str,
    daemon: Popen[bytes],
    load: Load,
    at: float,
) -> Sample:
    await match_stock(conn, load)
    files, sockets = open_files(daemon.pid)
    rows = {}
    for table in SHOWN:
        rows[table] = int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
    connections = await conn.fetchval(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    taken = Sample(
        at=at,
        rss_mb=rss_mb(daemon.pid),
        files=files,
        sockets=sockets,
        connections=int(connections),
        rows=rows,
        pruned=await pruned_so_far(session, daemon_url),
        cpu=cpu_seconds(daemon),
        order_latencies=load.order_latencies,
        stock_latencies=load.stock_latencies,
    )
    load.order_latencies, load.stock_latencies = [], []
    return taken


def show(s: Sample, previous: Sample | None) -> None:
    cpu = f"{(s.cpu - previous.cpu) / (s.at - previous.at) * 100:.0f} %" if previous else "-"
    tables = " ".join(f"{t}={n}" for t, n in s.rows.items())
    pruned = " ".join(f"{t}={n}" for t, n in s.pruned.items() if n)
    print(
        f"[{s.at:6.0f} s] RSS {s.rss_mb:6.1f} MB, files {s.files} ({s.sockets} sockets), db"
        " connections"
        f" {s.connections}, CPU {cpu}; rows: {tables}; pruned: {pruned or '-'};"
        f" order p50/p99 {percentile(s.order_latencies, 0.5) * 1000:.0f}/"
        f"{percentile(s.order_latencies, 0.99) * 1000:.0f} ms ({len(s.order_latencies)});"
        f" stock p50/p99 {percentile(s.stock_latencies, 0.5) * 1000:.0f}/"
        f"{percentile(s.stock_latencies, 0.99) * 1000:.0f} ms ({len(s.stock_latencies)})",
        flush=True,
    )


def summary(samples: list[Sample], load: Load, warmup: float) -> bool:
    """Print the verdicts; whether every target was met."""
    after = [s for s in samples if s.at >= warmup]
    base, last = (after[0] if after else samples[0]), samples[-1]
    rss_growth = last.rss_mb / base.rss_mb - 1
    orders = [x for s in samples for x in s.order_latencies]
    stock = [x for s in samples for x in s.stock_latencies]
    print(
        f"soak: {last.at / 60:.1f} min, {load.orders} purchases, {load.stock} stock,"
        f" {load.prices} price and {load.messages} order.message messages ({load.refused}"
        " purchase calls refused);"
        f" retention {KEEP_SECONDS:.0f} s, pruned every {PRUNE_EVERY:.0f} s"
    )
    print(
        f"  RSS after warm-up ({base.at:.0f} s) {base.rss_mb:.1f} MB, at the end {last.rss_mb:.1f}"
        f" MB: {rss_growth * 100:+.1f} %   target within 10 %"
    )
    # Sockets come and go with the requests in flight: growth is the end against the most seen
    # in the first half after the warm-up, with 10 % for that.
    settled = after[: max(1, len(after) // 2)] if after else samples[:1]
    files_then = max(s.files for s in settled)
    connections_then = max(s.connections for s in settled)
    files_ok = last.files <= files_then * 1.1
    connections_ok = last.connections <= connections_then * 1.1
    print(
        f"  open files {base.files} -> {last.files} ({last.sockets} sockets; at most"
        f" {files_then} in the first half after warm-up), db connections {base.connections} ->"
        f" {last.connections} (at most {connections_then}): "
        f"{'no growth' if files_ok and connections_ok else 'GROWING'}"
        "   target no growth (the end within 10 % of the first half's most)"
    )
    steady_from = KEEP_SECONDS + PRUNE_EVERY
    steady = [s for s in samples if s.at >= steady_from]
    bounded = True
    for table in PRUNED:
        if len(steady) < 2:
            print(
                f"  {table}: run too short to judge (needs two samples after {steady_from:.0f} s)"
            )
            continue
        peak = max(s.rows[table] for s in steady[:-1])
        ok = last.rows[table] <= max(1.2 * peak, peak + 50)
        bounded &= ok
        print(
            f"  {table}: {last.rows[table]} rows at the end, at most {peak} before"
            f" (after {steady_from:.0f} s), {last.pruned[table]} pruned:"
            f" {'bounded' if ok else 'GROWING'}"
        )
    print(
        f"  latency purchase -> order.created: p50 {percentile(orders, 0.5) * 1000:.0f} ms,"
        f" p99 {percentile(orders, 0.99) * 1000:.0f} ms ({len(orders)} orders)"
    )
    print(
        f"  latency stock.changed -> command sent to Allegro: p50"
        f" {percentile(stock, 0.5) * 1000:.0f} ms, p99 {percentile(stock, 0.99) * 1000:.0f} ms"
        f" ({len(stock)} changes)"
    )
    if len(orders) > 1 and len(stock) > 1:
        print(
            f"  mean latencies: order {statistics.fmean(orders) * 1000:.0f} ms,"
            f" stock {statistics.fmean(stock) * 1000:.0f} ms"
        )
    return abs(rss_growth) <= 0.10 and files_ok and connections_ok and bounded


async def soak(minutes: float) -> bool:
    duration = minutes * 60
    warmup = min(300.0, max(30.0, duration / 6))
    async with services("soak") as stack:
        smtp_port = free_port()
        mail = Controller(MailSink(), hostname="127.0.0.1", port=smtp_port)
        mail.start()
        try:
            stack.env["ALLEGRO_SYNC_SMTP_URL"] = f"smtp://127.0.0.1:{smtp_port}"
            for name, value in RETENTION.items():
                stack.env[name] = os.environ.get(f"BENCH_{name}", value)
            await stack.start_daemon()
            assert stack.daemon is not None
            order_offers = await setup(
                stack.emulator_url, stack.daemon_url, stack.database_url, stack.env
            )
            return await run_load(
                stack.database_url,
                stack.amqp_url,
                stack.emulator_url,
                stack.daemon_url,
                stack.daemon,
                order_offers,
                duration,
                warmup,
            )
        finally:
            mail.stop()


async def run_load(
    database_url: str,
    amqp_url: str,
    emulator_url: str,
    daemon_url: str,
    daemon: Popen[bytes],
    order_offers: list[str],
    duration: float,
    warmup: float,
) -> bool:
    load = Load()
    stopping = asyncio.Event()
    print(
        f"soak: {duration / 60:.1f} min, {ORDERS} purchases + {STOCK} stock + {PRICES} price"
        f" + {MESSAGES} order.message messages a second, {SELLERS} sellers, {PRODUCTS} products"
        f" on {2 * PRODUCTS} offers;"
        f" a report every {REPORT_EVERY:.0f} s, warm-up {warmup:.0f} s",
        flush=True,
    )
    conn = await asyncpg.connect(database_url)
    tasks = [
        asyncio.create_task(erp_side(amqp_url, load, stopping)),
        asyncio.create_task(buyers(emulator_url, order_offers, load, stopping)),
        asyncio.create_task(erp_publisher(amqp_url, load, stopping)),
    ]
    samples: list[Sample] = []
    started = time.monotonic()
    try:
        async with aiohttp.ClientSession() as session:
            while (elapsed := time.monotonic() - started) < duration:
                await asyncio.sleep(min(REPORT_EVERY, duration - elapsed))
                for task in tasks:
                    if task.done():
                        task.result()  # a load generator failed: stop with its error
                taken = await sample(
                    conn, session, daemon_url, daemon, load, time.monotonic() - started
                )
                show(taken, samples[-1] if samples else None)
                samples.append(taken)
    finally:
        stopping.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await conn.close()
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    dead = await channel.declare_queue("allegro-sync.dead-letters", passive=True)
    dead_letters = dead.declaration_result.message_count or 0
    await connection.close()
    print(f"  dead letters: {dead_letters}   target 0")
    return summary(samples, load, warmup) and dead_letters == 0


def main(argv: Sequence[str] = ()) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench soak", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--minutes", type=float, default=30.0, help="how long the load runs")
    args = parser.parse_args(list(argv))
    if args.minutes <= 0:
        parser.error("--minutes must be positive")
    return 0 if asyncio.run(soak(args.minutes)) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
