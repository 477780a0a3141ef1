"""Stock propagation (issue 7): ``python -m bench stock``.

20 000 products bound to 40 000 offers (``BENCH_SELLERS`` sellers, two offers per product on
different sellers). Phase 1: 100 000 ``stock.changed`` wait in the queue, the daemon starts, and
the consume rate is taken from the inbox (first to last message handled); the raw broker consume
rate is measured in the same run (``raw_broker_rates``); printed too: the Allegro requests and
the CPU seconds (daemon, emulator) the burst took, and when every change was confirmed by
Allegro (the batcher holds changes while the intake is backlogged, so that an offer changed
again goes out once). The commands Allegro received are compared with the ideal per flush
window: sum over accounts of ceil(changed offers / 1000), and the ideal that
one-value-per-command allows (sum over account and target value).

Phases 2 and 3 start once the offer journal's echo of the burst's commands is read: a steady
1 000 messages/s for ``BENCH_STEADY_WARMUP`` seconds (not measured: the journal pollers settle
to their busy cadence) and ``BENCH_STEADY_SECONDS``, first with products in sequence (a
second's changes fall on a few sellers), then a random sample each second (every flush window
touches every seller); latency from publish to command sent (``offer_commands.sent_at``) per
message whose quantity needed a command (the bench's quantities repeat every third version, and
a quantity the offers already have needs none), p50 / p99, and the Allegro requests per second it
took (the client-wide limit is 9 000 per minute, which bounds the random case: see
``request_floor``). Printed per run for the random phase, to show where the tail is: the p99 of
publish -> handled (the intake), publish -> command made (the flush) and made -> sent (the
sender), and the share of changes that found their offer's previous command not yet done.
Medians of ``BENCH_RUNS`` runs, at each of the emulator's latency profiles (``--latency``,
default ``none,realistic``), side by side. Targets (at both): consume ratio >= 0.6, commands
within 10 % of the ideal, p99 in sequence < 1 s, p99 at random within 1.5x the floor the
client-wide request limit sets (printed).
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import aio_pika
import aiohttp
import asyncpg

from allegro_sync.daemon.pollers import WAKE_CHANNEL
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

SELLERS = int(os.environ.get("BENCH_SELLERS", "40"))
PRODUCTS = int(os.environ.get("BENCH_PRODUCTS", "20000"))
MESSAGES = int(os.environ.get("BENCH_MESSAGES", "100000"))
STEADY_RATE = int(os.environ.get("BENCH_STEADY_RATE", "1000"))
STEADY_SECONDS = int(os.environ.get("BENCH_STEADY_SECONDS", "10"))
# seconds at the steady rate before measuring: the journal pollers settle to their busy cadence
STEADY_WARMUP = int(os.environ.get("BENCH_STEADY_WARMUP", "5"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))


@dataclass
class Run:
    """One run's measurements."""

    consume_rate: float
    raw_consume_rate: float
    burst_seconds: float  # first message handled -> last change confirmed by Allegro
    commands: int
    ideal_by_count: int
    ideal_by_value: int
    sequence: Steady
    scattered: Steady


@dataclass
class Steady:
    """A steady phase's measurements."""

    messages: int
    p50: float
    p99: float
    # the changes that found their product's offers in a command not yet done (a newer value
    # waits for the report of the command in flight: tests/e2e/test_stock_race.py): their share,
    # and the p99 of the others
    behind_share: float
    p99_free: float
    # the p99 of the two parts of a change's way: publish -> its command made (the flush), and
    # command made -> sent (the sender's queue and the PUT)
    p99_to_flush: float
    p99_to_send: float
    p99_to_handled: float  # publish -> the message handled (inbox.processed_at): the intake
    needed_share: float  # of the messages, those whose quantity needed a command (measured)
    requests_per_second: float
    command_requests_per_second: float  # PUT commands and GET their tasks


async def _steady(
    conn: asyncpg.Connection,
    amqp_url: str,
    emulator_url: str,
    order: str,
    version: int,
    handled_before: int,
    last: dict[int, int],
) -> Steady:
    """STEADY_RATE messages a second for STEADY_WARMUP seconds (not measured) and
    STEADY_SECONDS, then until every change is sent and settled. ``sequence``: products in
    order, so a second's changes fall on a few sellers (an ERP walking its catalogue);
    ``random``: a random sample each second, so every flush window touches every seller (sales
    and receipts as they come). ``last``: each product's last quantity published (kept up to
    date), which tells whether a message's quantity needed a command."""
    await conn.execute("DELETE FROM offer_commands")
    requests_before = await allegro_requests(emulator_url)
    started_at = time.monotonic()
    sent: list[tuple[int, int, float, int | None]] = []  # product, quantity, publish time, prior
    ids: list[tuple[str, float]] = []  # message id, publish time
    published = 0
    rng = random.Random(version)
    per_tick = STEADY_RATE // 10
    for second in range(STEADY_WARMUP + STEADY_SECONDS):
        started = time.time()
        if order == "random":
            products = rng.sample(range(PRODUCTS), STEADY_RATE)
        else:
            products = [(second * STEADY_RATE + k) % PRODUCTS for k in range(STEADY_RATE)]
        for tick in range(10):
            chunk = products[tick * per_tick : (tick + 1) * per_tick]
            messages = [_message(p, version + second) for p in chunk]
            stamps = await _publish(amqp_url, messages)
            published += len(chunk)
            quantities = [_quantity(p, version + second) for p in chunk]
            priors = [last.get(p) for p in chunk]
            last.update(zip(chunk, quantities, strict=True))
            if second >= STEADY_WARMUP:
                sent.extend(zip(chunk, quantities, stamps, priors, strict=True))
                ids.extend(zip([m for m, _ in messages], stamps, strict=True))
            await asyncio.sleep(max(0.0, started + (tick + 1) / 10 - time.time()))
    await _settled(conn, handled_before + published)
    seconds = time.monotonic() - started_at
    requests_after = await allegro_requests(emulator_url)
    per_path = {
        path: (n - requests_before.get(path, 0)) / seconds for path, n in requests_after.items()
    }
    split = ", ".join(
        f"{path} {rate:.0f}/s"
        for path, rate in sorted(per_path.items(), key=lambda i: -i[1])
        if rate >= 0.5
    )
    print(f"  Allegro requests while steady ({order}): {split}", flush=True)
    measured = await _latencies(conn, sent)
    handled = dict(
        await conn.fetch(
            "SELECT message_id, extract(epoch FROM processed_at)::float8 FROM inbox"
            " WHERE message_id = ANY($1::text[])",
            [m for m, _ in ids],
        )
    )
    to_handled = sorted(handled[m] - t for m, t in ids if m in handled)
    latencies = sorted(latency for latency, _, _ in measured)
    free = sorted(latency for latency, behind, _ in measured if not behind)
    to_flush = sorted(flushed for _, _, flushed in measured)
    to_send = sorted(latency - flushed for latency, _, flushed in measured)
    commands = sum(rate for path, rate in per_path.items() if "command_id" in path)
    return Steady(
        published,
        _quantile(latencies, 0.5),
        _quantile(latencies, 0.99),
        1 - len(free) / len(measured) if measured else float("nan"),
        _quantile(free, 0.99),
        _quantile(to_flush, 0.99),
        _quantile(to_send, 0.99),
        _quantile(to_handled, 0.99),
        len(measured) / len(sent) if sent else float("nan"),
        sum(per_path.values()),
        commands,
    )


def _quantile(values: list[float], q: float) -> float:
    return values[int(len(values) * q)] if values else float("nan")


def _quantity(product: int, version: int) -> int:
    # A stock that moves between a few values (a command carries one quantity).
    return 5 + (product + version) % 3


async def _setup(
    emulator_url: str, daemon_url: str, database_url: str, env: dict[str, str]
) -> None:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}", "Accept": "application/json"}
    per_seller = 2 * PRODUCTS // SELLERS
    async with aiohttp.ClientSession(headers=headers) as session:
        for n in range(SELLERS):
            settings: dict[str, object] = {
                "stock_control": True,
                "raise_quantity_on_erp_sync": True,
            }
            seller_id = await connect_seller(
                session, emulator_url, daemon_url, f"bench-stock-{n}", settings
            )
            async with session.post(
                f"{emulator_url}/__control__/sellers/{seller_id}/offers",
                json={"name": "o{n}", "count": per_seller, "stock": 50},
            ) as r:
                assert r.status < 300, await r.text()
    # the mirror is filled as a seller would: 'offers import' (the offer journal then keeps it)
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
        # two offers per product, on different sellers; the running daemon's mirror writes may
        # take the same rows in another order (a deadlock aborts one side): once more then
        for attempt in range(3):
            try:
                await conn.execute(
                    """
                    UPDATE offers SET product_id = 'P' || ((n.k - 1) % $1), bound_at = now()
                      FROM (SELECT id, row_number() OVER (ORDER BY account_id, id) AS k
                              FROM offers) AS n
                     WHERE offers.id = n.id
                    """,
                    PRODUCTS,
                )
                break
            except asyncpg.DeadlockDetectedError:
                if attempt == 2:
                    raise
    finally:
        await conn.close()


async def _publish(amqp_url: str, messages: list[tuple[str, bytes]]) -> list[float]:
    """Publish with confirms in windows; the publish time of each message."""
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel(publisher_confirms=True)
    exchange = await channel.get_exchange("erp.events")
    stamps = []
    for first in range(0, len(messages), 1000):
        chunk = messages[first : first + 1000]
        stamps.extend([time.time()] * len(chunk))
        await asyncio.gather(
            *(
                exchange.publish(
                    aio_pika.Message(body, message_id=mid, content_type="application/json"),
                    routing_key="stock.changed",
                )
                for mid, body in chunk
            )
        )
    await connection.close()
    return stamps


def _message(product: int, version: int) -> tuple[str, bytes]:
    body = {
        "product_id": f"P{product}",
        "quantity": _quantity(product, version),
        "version": version,
    }
    return f"stock:P{product}:{version}", json.dumps(body).encode()


async def _settled(conn: asyncpg.Connection, inbox: int, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = await conn.fetchval("SELECT count(*) FROM inbox WHERE consumer = 'allegro-sync.erp'")
        open_ = await conn.fetchval(
            "SELECT (SELECT count(*) FROM offer_changes)"
            " + (SELECT count(*) FROM offer_commands WHERE state <> 'done')"
        )
        if done >= inbox and open_ == 0:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError("the changes did not settle")


async def _echo_read(conn: asyncpg.Connection, quiet: float = 4.0) -> None:
    """Until the offer journal's echo of the burst's commands is read and handled: every
    offer poller is woken each second (an idle one may otherwise wait its backed-off interval)
    until the cursors and the journal consumer's inbox stay unchanged for ``quiet`` seconds, so
    that the steady phases measure a steady state."""
    query = (
        "SELECT (SELECT string_agg(last_event_id, ',' ORDER BY account_id) FROM journal_cursors"
        " WHERE journal = 'offer'), (SELECT count(*) FROM inbox"
        " WHERE consumer = 'allegro-sync.journal')"
    )
    last, since = None, time.monotonic()
    while time.monotonic() - since < quiet:
        await conn.execute(
            "SELECT pg_notify($1, id || ':offer') FROM accounts WHERE active", WAKE_CHANNEL
        )
        now = tuple(await conn.fetchrow(query))
        if now != last:
            last, since = now, time.monotonic()
        await asyncio.sleep(1.0)


async def _commands_vs_ideal(conn: asyncpg.Connection) -> tuple[int, int, int]:
    """Commands sent, and the two ideals, per flush (commands of one flush share created_at)."""
    rows = await conn.fetch(
        "SELECT created_at, account_id, payload, cardinality(offers) AS n FROM offer_commands"
    )
    by_flush: dict[object, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    by_value: dict[object, dict[tuple[int, str], int]] = defaultdict(lambda: defaultdict(int))
    for r in rows:
        by_flush[r["created_at"]][r["account_id"]] += r["n"]
        by_value[r["created_at"]][(r["account_id"], json.dumps(r["payload"]))] += r["n"]
    ideal = sum(math.ceil(n / 1000) for f in by_flush.values() for n in f.values())
    ideal_value = sum(math.ceil(n / 1000) for f in by_value.values() for n in f.values())
    return len(rows), ideal, ideal_value


async def _latencies(
    conn: asyncpg.Connection, sent: list[tuple[int, int, float, int | None]]
) -> list[tuple[float, bool, float]]:
    """Per message that needed a command: seconds from publish to the sending of the first
    command made after it that carries the product; whether a command made before it still
    carried the product then (not done); and seconds from publish to that command's making.
    A message needed no command when its quantity was the product's last one published (the
    bench's quantities repeat every third version; every earlier message reached the offers).
    A command made after the message but before it was handled carries an older value and is
    passed over. A message overtaken by a newer one for the same product before any command
    went out is measured to the command that carried the newer value (latest wins), unless a
    message in between set the quantity back to what the offers had (then nothing was left to
    send)."""
    rows = await conn.fetch(
        """
        SELECT o.product_id, extract(epoch FROM c.created_at) AS created,
               extract(epoch FROM c.sent_at) AS sent, extract(epoch FROM c.done_at) AS done,
               c.payload -> 'modification' ->> 'value' AS value
          FROM offer_commands AS c, unnest(c.offers) AS u (offer_id)
          JOIN offers AS o ON o.id = u.offer_id
         WHERE c.sent_at IS NOT NULL
        """
    )
    per_product: dict[str, list[tuple[float, float, float, str | None]]] = defaultdict(list)
    for r in rows:
        done = float(r["done"]) if r["done"] is not None else math.inf
        per_product[r["product_id"]].append(
            (float(r["created"]), float(r["sent"]), done, r["value"])
        )
    published_at: dict[int, list[tuple[float, int]]] = defaultdict(list)
    for product, quantity, published, _ in sent:
        published_at[product].append((published, quantity))
    result = []
    for product, quantity, published, prior in sent:
        if quantity == prior:
            continue  # the offers had this quantity already
        commands = per_product[f"P{product}"]
        # the first command made after it that carries its quantity or a newer one (a command
        # made before the message was handled carries an older value: not this one's)
        carried = None
        for created, sent_at, _, value in sorted(commands, key=lambda t: t[1]):
            between = [q for t, q in published_at[product] if published < t < created]
            newer = {str(q) for q in between}
            if created >= published and (value == str(quantity) or value in newer):
                carried = created, sent_at, between
                break
        if carried is None:
            continue
        created, sent_at, between = carried
        if prior in between:
            continue  # set back before any command: nothing was left to send
        behind = any(c < published < d for c, _, d, _ in commands)
        result.append((sent_at - published, behind, created - published))
    return result


async def _run(index: int, latency: str) -> Run:
    log = f"stock-daemon-{latency}-{index}.log"
    async with services("stock", latency=latency, log=log) as stack:
        _, raw_consume = await raw_broker_rates(stack.amqp_url)
        emulator_url, amqp_url = stack.emulator_url, stack.amqp_url
        await stack.start_daemon()
        await _setup(emulator_url, stack.daemon_url, stack.database_url, stack.env)
        assert stack.stop_daemon() == 0
        burst = [_message(i % PRODUCTS, i // PRODUCTS + 1) for i in range(MESSAGES)]
        await _publish(amqp_url, burst)
        async with (
            aiohttp.ClientSession() as session,
            session.delete(f"{emulator_url}/__control__/requests") as r,
        ):
            assert r.status < 300
        emulator_cpu = cpu_seconds(stack.emulator)
        await stack.start_daemon(profile=True, wait=False)
        assert stack.daemon is not None
        conn = await asyncpg.connect(stack.database_url)
        try:
            await _settled(conn, MESSAGES)
            span = await conn.fetchval(
                "SELECT extract(epoch FROM max(processed_at) - min(processed_at))"
                " FROM inbox WHERE consumer = 'allegro-sync.erp'"
                " AND message_id LIKE 'stock:%'"
            )
            burst_seconds = await conn.fetchval(
                "SELECT extract(epoch FROM (SELECT max(done_at) FROM offer_commands)"
                " - (SELECT min(processed_at) FROM inbox"
                " WHERE consumer = 'allegro-sync.erp' AND message_id LIKE 'stock:%'))"
            )
            commands, ideal, ideal_value = await _commands_vs_ideal(conn)
            by_path = await allegro_requests(emulator_url)
            split = ", ".join(
                f"{path} {n}" for path, n in sorted(by_path.items(), key=lambda i: -i[1])
            )
            print(f"  Allegro requests of the burst: {split}", flush=True)
            print(
                f"  CPU seconds of the burst: daemon {cpu_seconds(stack.daemon):.1f},"
                f" emulator {cpu_seconds(stack.emulator) - emulator_cpu:.1f}",
                flush=True,
            )
            base = MESSAGES // PRODUCTS + 1
            # each product's last quantity published: the burst's, then the steady phases'
            last = {
                i % PRODUCTS: _quantity(i % PRODUCTS, i // PRODUCTS + 1) for i in range(MESSAGES)
            }
            await _echo_read(conn)
            sequence = await _steady(conn, amqp_url, emulator_url, "sequence", base, MESSAGES, last)
            scattered = await _steady(
                conn,
                amqp_url,
                emulator_url,
                "random",
                base + STEADY_WARMUP + STEADY_SECONDS,
                MESSAGES + sequence.messages,
                last,
            )
        finally:
            await conn.close()
    return Run(
        MESSAGES / float(span),
        raw_consume,
        float(burst_seconds),
        commands,
        ideal,
        ideal_value,
        sequence,
        scattered,
    )


CLIENT_LIMIT = 150.0  # Allegro requests per second per client id (9 000 per minute)
VALUES = 3  # distinct target quantities a second's changes carry (see _quantity)


def request_floor(steady: Steady) -> float:
    """Seconds one flush cycle takes at least when every flush touches every seller: a command
    per (seller, target value), each a PUT and a read of its tasks, in what the client-wide
    limit leaves after the other requests (journal polls, listing reads) of the same run."""
    other = steady.requests_per_second - steady.command_requests_per_second
    return 2 * SELLERS * VALUES / max(CLIENT_LIMIT - other, 1.0)


def main(latencies: Sequence[str] = LATENCIES) -> int:
    by_latency: dict[str, list[Run]] = {}
    for latency in latencies:
        runs = by_latency.setdefault(latency, [])
        for index in range(RUNS):
            run = asyncio.run(_run(index, latency))
            runs.append(run)
            print(
                f"stock run {index + 1} at latency {latency}: {run.consume_rate:,.0f} msg/s"
                f" (raw {run.raw_consume_rate:,.0f}), all on Allegro after"
                f" {run.burst_seconds:.1f} s, {run.commands} commands (ideal"
                f" {run.ideal_by_count} by count, {run.ideal_by_value} by value); steady in"
                f" sequence p50 {run.sequence.p50 * 1000:.0f} ms p99"
                f" {run.sequence.p99 * 1000:.0f} ms; random p50 {run.scattered.p50 * 1000:.0f}"
                f" ms p99 {run.scattered.p99 * 1000:.0f} ms (of the"
                f" {1 - run.scattered.behind_share:.0%} whose offers had no command in flight:"
                f" {run.scattered.p99_free * 1000:.0f} ms; p99 to the flush"
                f" {run.scattered.p99_to_flush * 1000:.0f} ms, flush to sent"
                f" {run.scattered.p99_to_send * 1000:.0f} ms, to handled"
                f" {run.scattered.p99_to_handled * 1000:.0f} ms; {run.scattered.needed_share:.0%}"
                f" of the messages needed a command, in sequence"
                f" {run.sequence.needed_share:.0%}) at"
                f" {run.scattered.requests_per_second:.0f} Allegro requests/s, floor"
                f" {request_floor(run.scattered):.1f} s",
                flush=True,
            )

    def med(values: list[float]) -> float:
        return float(statistics.median(values))

    def per(pick: Callable[[Run], float], fmt: str) -> dict[str, str]:
        return {k: format(med([pick(r) for r in v]), fmt) for k, v in by_latency.items()}

    rows: list[tuple[str, dict[str, str], str]] = [
        ("messages consumed / s", per(lambda r: r.consume_rate, ",.0f"), ""),
        ("raw broker consume / s", per(lambda r: r.raw_consume_rate, ",.0f"), "(same run)"),
        (
            "ratio",
            {
                k: f"{med([r.consume_rate for r in v]) / med([r.raw_consume_rate for r in v]):.2f}"
                for k, v in by_latency.items()
            },
            ">= 0.6",
        ),
        ("all changes on Allegro, s", per(lambda r: r.burst_seconds, ".1f"), "after the first"),
        ("Allegro commands", per(lambda r: r.commands, ",.0f"), "within 10 % of"),
        ("ideal, one value/command", per(lambda r: r.ideal_by_value, ",.0f"), "this"),
        ("ideal, ceil(offers/1000)", per(lambda r: r.ideal_by_count, ",.0f"), "per window"),
    ]

    def steady(pick: str, field: str, scale: float) -> dict[str, str]:
        return {
            k: format(med([getattr(getattr(r, pick), field) * scale for r in v]), ",.0f")
            for k, v in by_latency.items()
        }

    for name, pick in (("in sequence", "sequence"), ("random", "scattered")):
        rows += [
            (f"steady {STEADY_RATE}/s {name}: p50 ms", steady(pick, "p50", 1000), ""),
            (
                f"steady {STEADY_RATE}/s {name}: p99 ms",
                steady(pick, "p99", 1000),
                "< 1000" if pick == "sequence" else "<= 1.5 x floor",
            ),
            (
                f"steady {STEADY_RATE}/s {name}: Allegro req/s",
                steady(pick, "requests_per_second", 1),
                "client limit 150",
            ),
        ]
    rows.append(
        (
            "random: share behind a command, %",
            per(lambda r: r.scattered.behind_share * 100, ".0f"),
            "(its report first)",
        )
    )
    rows.append(
        (
            "random: p99 of the others, ms",
            per(lambda r: r.scattered.p99_free * 1000, ",.0f"),
            "",
        )
    )
    rows.append(
        (
            "random: request-limit floor, ms",
            per(lambda r: request_floor(r.scattered) * 1000, ",.0f"),
            "",
        )
    )
    side_by_side(
        f"stock: {MESSAGES} messages, {PRODUCTS} products, {2 * PRODUCTS} offers, {SELLERS}"
        f" sellers, medians of {RUNS} runs per latency profile",
        latencies,
        rows,
    )
    print(
        "  the floor: a flush cycle when every flush touches every seller needs"
        f" {SELLERS} sellers x {VALUES} values x 2 requests per command within what the"
        " client-wide limit leaves"
    )
    ok = True
    for runs in by_latency.values():
        rate = med([r.consume_rate for r in runs]) / med([r.raw_consume_rate for r in runs])
        commands = med([r.commands for r in runs])
        ideal_value = med([r.ideal_by_value for r in runs])
        ok &= rate >= 0.6 and commands <= 1.1 * ideal_value
        ok &= med([r.sequence.p99 for r in runs]) < 1.0
        ok &= med([r.scattered.p99 for r in runs]) <= 1.5 * med(
            [request_floor(r.scattered) for r in runs]
        )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
