"""Many quiet accounts under one client id (issue 21): ``python -m bench accounts``.

``--accounts N`` (default 2 000) connected accounts in the emulator, ``--busy B`` (default 50) of
them busy (a paid purchase every 1-3 s each), the rest quiet. The accounts are connected in bulk:
each seller's authorization code is traded for tokens with the daemon's own ``OAuthClient`` and
stored by ``handlers.accounts.connect_account`` (what the OAuth callback runs), then the daemon
(one process, production polling settings) starts. After the warm-up (the busy accounts woken as
"fetch now" would, buying for a few seconds) the emulator's request counters are reset and,
for ``--quiet-window`` seconds, one quiet account after another
gets a single purchase; the run ends when every purchase is an ``order.created``.

Printed: order latency (paid purchase to ``order.created`` taken from ``allegro-sync.events.erp``)
p50 / p99 / max for busy and quiet accounts, the Allegro requests a minute of each untouched
quiet account (the emulator counts per seller: everything it sent, journals and all), and the
share of the client's 9 000 requests a minute that all the accounts' idle polling takes at
that rate. Targets: busy p99 < 2 s, quiet p99 < the order ceiling (``ORDER_POLL_CEILING``,
75 s) + 2 s, at most 1 request a minute per quiet account (the order sweep's share included),
idle polling within ``IDLE_POLL_BUDGET_SHARE``. ``--runs N`` runs each profile N times and
prints the medians; ``--warm-up S`` (default 8) starts the window S seconds after the start
(longer than the first round of reads, about 90 s for 2 000 accounts: the steady state).
``--order-ceiling S`` and ``--idle-share X`` run the daemon with another ``ORDER_POLL_CEILING``
and ``IDLE_POLL_BUDGET_SHARE`` (a shorter wait for quiet accounts bought with more requests):
the quiet target is then that ceiling + 2 s, the requests a minute that of its reads
(``Policy.requests_per_minute``) and the share the one given.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import random
import secrets
import statistics
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit

import aio_pika
import aiohttp
import asyncpg
from pydantic import TypeAdapter, ValidationError

from allegro_sync.adapters.allegro.crypto import TokenCipher
from allegro_sync.adapters.allegro.oauth import OAuthClient, TokenSet
from allegro_sync.adapters.allegro.order_journal import JournalStart
from allegro_sync.adapters.postgres import migrations, notifications
from allegro_sync.adapters.postgres import pool as pg
from allegro_sync.config.settings import Settings
from allegro_sync.handlers.accounts import connect_account
from bench._support import (
    LATENCIES,
    SECRET_KEY,
    Row,
    cpu_seconds,
    services,
    side_by_side,
)

TAKES_LATENCY = True  # ``python -m bench accounts --latency none,realistic`` (default both)
CLIENT_BUDGET = 9000  # requests a minute of one client id
REDIRECT = "http://127.0.0.1:9/oauth/callback"  # never opened: the code is read from Location
TARGET_BUSY_P99 = 2.0
TARGET_IDLE_PER_MINUTE = 1.0
DEFAULTS = Settings.model_fields  # the daemon's own defaults and bounds, not copies of them
ORDER_CEILING = float(DEFAULTS["order_poll_ceiling"].default)
HANDLING = 2.0  # seconds from the read to order.created at most (the busy target)
SWEEP_INTERVAL = float(DEFAULTS["order_sweep_interval"].default)  # a listing per account
JOURNAL_ROUTES = {"GET /order/events", "GET /sale/offer-events"}
WARM_UP = 8.0  # seconds of busy purchases before the window (``--warm-up``)
BUDGET_SHARE = float(DEFAULTS["idle_poll_budget_share"].default)
OFFER_CEILING = float(DEFAULTS["offer_poll_ceiling"].default)


@dataclass(frozen=True)
class Policy:
    """The daemon's polling settings of a run, and the targets that follow from them."""

    order_ceiling: float = ORDER_CEILING
    idle_share: float = BUDGET_SHARE

    @property
    def quiet_target(self) -> float:
        return self.order_ceiling + HANDLING

    @property
    def requests_per_minute(self) -> float:
        """At most 1 a minute per quiet account at the default ceiling; a shorter ceiling costs
        what its reads cost (both journals at their ceilings, and the order sweep)."""
        reads = 60 / self.order_ceiling + 60 / OFFER_CEILING + 60 / SWEEP_INTERVAL
        return max(TARGET_IDLE_PER_MINUTE, round(reads, 2))

    def env(self) -> dict[str, str]:
        return {
            "ORDER_POLL_CEILING": f"{self.order_ceiling:g}",
            "IDLE_POLL_BUDGET_SHARE": f"{self.idle_share:g}",
        }


@dataclass
class Seller:
    id: str
    login: str
    account_id: int = 0
    offer_id: str = ""


@dataclass
class Orders:
    """Purchases made and the ``order.created`` seen, by checkout form."""

    bought: dict[str, tuple[float, bool]] = field(default_factory=dict)  # form -> (time, busy)
    created: dict[str, float] = field(default_factory=dict)

    def latencies(self, busy: bool) -> list[float]:
        return [
            self.created[form] - at
            for form, (at, is_busy) in self.bought.items()
            if is_busy == busy and form in self.created
        ]


async def _gather_limited(limit: int, jobs: list[Any]) -> list[Any]:
    gate = asyncio.Semaphore(limit)

    async def one(job: Any) -> Any:
        async with gate:
            return await job

    return await asyncio.gather(*(one(j) for j in jobs))


async def _sellers(session: aiohttp.ClientSession, emulator_url: str, count: int) -> list[Seller]:
    async def one(n: int) -> Seller:
        login = f"bench-many-{n}"
        async with session.post(f"{emulator_url}/__control__/sellers", json={"login": login}) as r:
            body = await r.json()
        return Seller(str(body["id"]), login)

    return list(await _gather_limited(32, [one(n) for n in range(count)]))


async def _tokens(
    session: aiohttp.ClientSession, oauth: OAuthClient, seller: Seller
) -> tuple[Seller, TokenSet]:
    """The browser flow without a browser: consent as the seller, trade the code (PKCE)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    url = oauth.authorize_url(
        redirect_uri=REDIRECT,
        state=secrets.token_urlsafe(8),
        code_challenge=challenge.rstrip(b"=").decode(),
    )
    async with session.get(f"{url}&seller_id={seller.id}", allow_redirects=False) as r:
        location = r.headers["Location"]
    code = parse_qs(urlsplit(location).query)["code"][0]
    tokens = await oauth.exchange_code(code=code, redirect_uri=REDIRECT, code_verifier=verifier)
    return seller, tokens


async def connect_many(emulator_url: str, database_url: str, count: int) -> list[Seller]:
    """``count`` sellers in the emulator, connected as accounts in the database in bulk."""
    cipher = TokenCipher(SECRET_KEY)
    async with aiohttp.ClientSession() as session:
        sellers = await _sellers(session, emulator_url, count)
        oauth = OAuthClient(session, emulator_url, "demo-client", "demo-secret")
        pairs = await _gather_limited(32, [_tokens(session, oauth, s) for s in sellers])
    conn = await pg.connect(database_url)  # with the JSON codecs the handlers expect
    try:
        for first in range(0, len(pairs), 250):
            async with conn.transaction():
                for seller, tokens in pairs[first : first + 250]:
                    seller.account_id, _ = await connect_account(
                        conn,
                        cipher,
                        allegro_user_id=seller.id,
                        login=seller.login,
                        sandbox=False,
                        tokens=tokens,
                        order_journal=JournalStart(None),  # a new seller: no event yet
                    )
        await conn.execute("UPDATE accounts SET auto_create_orders = true")
    finally:
        await conn.close()
    return sellers


async def _offers(session: aiohttp.ClientSession, emulator_url: str, sellers: list[Seller]) -> None:
    async def one(seller: Seller) -> None:
        async with session.post(
            f"{emulator_url}/__control__/sellers/{seller.id}/offers",
            json={"name": "Kubek", "stock": 100_000, "price": "19.99"},
        ) as r:
            seller.offer_id = str((await r.json())["id"])

    await _gather_limited(16, [one(s) for s in sellers])


async def _buy(
    session: aiohttp.ClientSession, emulator_url: str, seller: Seller, orders: Orders, busy: bool
) -> None:
    body = {"offer_id": seller.offer_id, "quantity": 1, "payment_type": "ONLINE", "then": "pay"}
    async with session.post(f"{emulator_url}/__control__/purchases", json=body) as r:
        result = await r.json()
        assert r.status == 201, result
    orders.bought[str(result["checkout_form_id"])] = (time.monotonic(), busy)


async def _take_orders(amqp_url: str, orders: Orders, stopping: asyncio.Event) -> None:
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=500)
    queue = await channel.get_queue("allegro-sync.events.erp")

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        await message.ack()
        if message.routing_key == "order.created" and message.message_id:
            orders.created[message.message_id.removeprefix("order.created:")] = time.monotonic()

    await queue.consume(on_message)
    try:
        await stopping.wait()
    finally:
        await connection.close()


async def _queue_ready(amqp_url: str) -> None:
    for _ in range(300):
        with contextlib.suppress(Exception):
            connection = await aio_pika.connect(amqp_url)
            try:
                channel = await connection.channel()
                await channel.get_queue("allegro-sync.events.erp")
                return
            finally:
                await connection.close()
        await asyncio.sleep(0.2)
    raise RuntimeError("the daemon did not declare its queues")


def _poll_ages(exposition: str, journal: str) -> list[tuple[str, float]]:
    """Cumulative shares of ``allegro_sync_poll_age_seconds`` buckets, as the daemon saw them."""
    buckets: list[tuple[str, float]] = []
    prefix = f'allegro_sync_poll_age_seconds_bucket{{journal="{journal}",le="'
    for line in exposition.splitlines():
        if line.startswith(prefix):
            buckets.append((line[len(prefix) :].split('"')[0], float(line.split()[-1])))
    total = buckets[-1][1] if buckets else 0
    wanted = {"2.0", "10.0", "60.0", "90.0", "120.0"}
    return [(le, n / total) for le, n in buckets if le in wanted and total]


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Result:
    """One run's figures (see the module docstring)."""

    busy_p50: float
    busy_p99: float
    busy_orders: int
    quiet_p50: float
    quiet_p99: float
    quiet_orders: int
    idle_per_minute: float  # journal reads a minute of an untouched quiet account
    idle_share: float  # of the client's budget, all accounts' idle polling at that rate
    requests_per_minute: float  # all Allegro requests in the window
    missing: int

    def ok(self, policy: Policy) -> bool:
        return (
            self.busy_p99 < TARGET_BUSY_P99
            and self.quiet_p99 < policy.quiet_target
            and self.idle_per_minute + 60 / SWEEP_INTERVAL <= policy.requests_per_minute
            and self.idle_share <= policy.idle_share
            and not self.missing
        )


async def run(
    accounts: int,
    busy_count: int,
    quiet_window: float,
    quiet_every: float,
    latency: str = "none",
    warm_up: float = WARM_UP,
    policy: Policy = Policy(),
) -> Result:
    orders = Orders()
    async with services("accounts", latency=latency, log=f"accounts-daemon-{latency}.log") as stack:
        emulator_url, daemon_url = stack.emulator_url, stack.daemon_url
        database_url, amqp_url = stack.database_url, stack.amqp_url
        await migrations.migrate(database_url)
        started = time.monotonic()
        sellers = await connect_many(emulator_url, database_url, accounts)
        connected = time.monotonic() - started
        print(f"  {accounts} accounts connected in bulk in {connected:.1f} s", flush=True)
        busy, quiet = sellers[:busy_count], sellers[busy_count:]
        targets = random.sample(quiet, min(len(quiet), int(quiet_window / quiet_every)))
        async with aiohttp.ClientSession() as session:
            await _offers(session, emulator_url, busy + targets)
        stack.env.update(policy.env())
        await stack.start_daemon()
        assert stack.daemon is not None
        daemon_started = time.monotonic()
        await _queue_ready(amqp_url)
        stopping = asyncio.Event()
        taker = asyncio.create_task(_take_orders(amqp_url, orders, stopping))

        # one connection for the warm-up's wakes (the database is shared: a connection a
        # second may find it full)
        waker = await asyncpg.connect(database_url)

        async def wake_busy() -> None:  # as "fetch now" would: busy from the start
            for seller in busy:
                await notifications.wake_journal(waker, seller.account_id)

        async with aiohttp.ClientSession() as session:

            async def busy_loop(seller: Seller) -> None:
                while buying.is_set():
                    await _buy(session, emulator_url, seller, orders, True)
                    await asyncio.sleep(random.uniform(1.0, 3.0))

            buying = asyncio.Event()
            buying.set()
            buyers = [asyncio.create_task(busy_loop(s)) for s in busy]
            try:
                for _ in range(int(WARM_UP)):  # the scheduler may still be starting
                    await wake_busy()
                    await asyncio.sleep(1.0)
                await asyncio.sleep(max(warm_up - WARM_UP, 0.0))  # past the start-up's round
            finally:
                await waker.close()
            warm = time.monotonic()
            async with session.delete(f"{emulator_url}/__control__/requests") as r:
                assert r.status < 300
            orders.bought = {f: v for f, v in orders.bought.items() if v[0] >= warm}
            for seller in targets:
                await _buy(session, emulator_url, seller, orders, False)
                await asyncio.sleep(quiet_every)
            deadline = time.monotonic() + policy.order_ceiling + 20
            quiet_forms = [f for f, (_, b) in orders.bought.items() if not b]
            while time.monotonic() < deadline:
                if all(f in orders.created for f in quiet_forms):
                    break
                await asyncio.sleep(0.5)
            buying.clear()
            await asyncio.gather(*buyers, return_exceptions=True)
            for _ in range(20):  # the busy accounts' last orders
                if all(f in orders.created for f in orders.bought):
                    break
                await asyncio.sleep(0.5)
            async with session.get(f"{emulator_url}/__control__/requests") as r:
                counts = await r.json()
            window = time.monotonic() - warm
            async with session.get(f"{daemon_url}/metrics") as r:
                exposition = await r.text()
            cpu, elapsed = cpu_seconds(stack.daemon), time.monotonic() - daemon_started
            stopping.set()
            await asyncio.gather(taker, return_exceptions=True)
    by_seller: dict[str, dict[str, int]] = counts.get("by_seller", {})
    touched = {s.id for s in busy} | {s.id for s in targets}
    untouched = [s for s in sellers if s.id not in touched]
    minutes = max(len(untouched), 1) * (window / 60)
    journal_reads = sum(
        n
        for s in untouched
        for route, n in by_seller.get(s.id, {}).items()
        if route in JOURNAL_ROUTES
    )
    other = sum(sum(by_seller.get(s.id, {}).values()) for s in untouched) - journal_reads
    per_minute = journal_reads / minutes
    share = per_minute * accounts / CLIENT_BUDGET
    busy_lat, quiet_lat = orders.latencies(True), orders.latencies(False)
    missing = sum(1 for f in orders.bought if f not in orders.created)
    busy_requests = sum(sum(by_seller.get(s.id, {}).values()) for s in busy) / (window / 60)
    print(
        f"accounts ({latency}): {accounts} connected accounts, {busy_count} busy;"
        f" window {window:.0f} s",
        flush=True,
    )
    print(
        f"  busy  order latency p50 {_quantile(busy_lat, 0.5):.2f} s  p99"
        f" {_quantile(busy_lat, 0.99):.2f} s  max {max(busy_lat, default=0):.2f} s"
        f"  ({len(busy_lat)} orders)   target p99 < {TARGET_BUSY_P99} s"
    )
    print(
        f"  quiet order latency p50 {_quantile(quiet_lat, 0.5):.2f} s  p99"
        f" {_quantile(quiet_lat, 0.99):.2f} s  max {max(quiet_lat, default=0):.2f} s"
        f"  ({len(quiet_lat)} orders)   target p99 < {policy.quiet_target:.0f} s"
        " (the order ceiling + the busy target)"
    )
    print(
        f"  idle journal reads / min / quiet account {per_minute:.3f}"
        f" ({len(untouched)} untouched accounts; other requests of theirs in the window:"
        f" {other / minutes:.3f}/min, the order sweep's first round)"
    )
    print(
        f"  idle polling of all {accounts} accounts: {per_minute * accounts:,.0f} requests/min ="
        f" {share:.1%} of the client's {CLIENT_BUDGET}   target <= {policy.idle_share:.0%}"
    )
    sweep = 60 / SWEEP_INTERVAL  # in steady state; its first round may fall in the window
    print(
        f"  + the order sweep, 1 listing per account every {SWEEP_INTERVAL:.0f} s:"
        f" {sweep:.2f} a minute -> {per_minute + sweep:.3f} requests / min / quiet account"
        f"   target <= {policy.requests_per_minute}"
    )
    total = int(counts.get("total", 0))
    print(
        f"  all Allegro requests in the window: {total / (window / 60):,.0f} a minute"
        f" (the {busy_count} busy accounts: {busy_requests:,.0f});"
        f" daemon CPU {cpu:.0f} s in {elapsed:.0f} s"
    )
    busy_routes: dict[str, int] = defaultdict(int)
    for s in busy:
        for route, n in by_seller.get(s.id, {}).items():
            busy_routes[route] += n
    print(
        "  a busy account's requests a minute: "
        + ", ".join(
            f"{route} {n / len(busy) / (window / 60):.1f}"
            for route, n in sorted(busy_routes.items(), key=lambda i: -i[1])
        )
    )
    ages = _poll_ages(exposition, "order")
    if ages:
        print(
            "  order polls by the age of the account's previous read: "
            + ", ".join(f"<= {le} s {share:.0%}" for le, share in ages)
        )
    if missing:
        print(f"  {missing} purchases without order.created at the end")
    return Result(
        _quantile(busy_lat, 0.5),
        _quantile(busy_lat, 0.99),
        len(busy_lat),
        _quantile(quiet_lat, 0.5),
        _quantile(quiet_lat, 0.99),
        len(quiet_lat),
        per_minute,
        share,
        total / (window / 60),
        missing,
    )


def _median(runs: list[Result]) -> Result:
    """Each figure's median over the runs (``missing``: the most of any run)."""

    def med(pick: Callable[[Result], float]) -> float:
        return float(statistics.median(pick(r) for r in runs))

    return Result(
        med(lambda r: r.busy_p50),
        med(lambda r: r.busy_p99),
        int(med(lambda r: r.busy_orders)),
        med(lambda r: r.quiet_p50),
        med(lambda r: r.quiet_p99),
        int(med(lambda r: r.quiet_orders)),
        med(lambda r: r.idle_per_minute),
        med(lambda r: r.idle_share),
        med(lambda r: r.requests_per_minute),
        max(r.missing for r in runs),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench accounts")
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--busy", type=int, default=50)
    parser.add_argument("--quiet-window", type=float, default=30.0, help="seconds")
    parser.add_argument("--quiet-every", type=float, default=0.5, help="seconds")
    parser.add_argument(
        "--warm-up",
        type=float,
        default=WARM_UP,
        help="seconds from the start to the window (longer: past the first round of reads)",
    )
    parser.add_argument("--runs", type=int, default=1, help="runs per profile (medians)")
    parser.add_argument(
        "--order-ceiling", type=float, default=ORDER_CEILING, help="ORDER_POLL_CEILING, seconds"
    )
    parser.add_argument(
        "--idle-share", type=float, default=BUDGET_SHARE, help="IDLE_POLL_BUDGET_SHARE"
    )
    parser.add_argument("--latency", default=",".join(LATENCIES), help="none,realistic")
    args = parser.parse_args(argv or [])
    if args.busy >= args.accounts:
        parser.error("--busy must be below --accounts")
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    for option, name in (
        ("order_ceiling", "order_poll_ceiling"),
        ("idle_share", "idle_poll_budget_share"),
    ):
        bounds = TypeAdapter(Annotated[float, *DEFAULTS[name].metadata])  # the setting's own
        try:
            bounds.validate_python(getattr(args, option))
        except ValidationError as exc:
            parser.error(f"--{option.replace('_', '-')}: {exc.errors()[0]['msg']}")
    policy = Policy(args.order_ceiling, args.idle_share)
    profiles = [n.strip() for n in args.latency.split(",") if n.strip()]
    if not profiles or any(n not in LATENCIES for n in profiles):
        parser.error(f"latency profiles are {', '.join(LATENCIES)}")
    results: dict[str, list[Result]] = {}
    for latency in profiles:
        for index in range(args.runs):
            print(f"accounts run {index + 1} of {args.runs} at latency {latency}", flush=True)
            result = asyncio.run(
                run(
                    args.accounts,
                    args.busy,
                    args.quiet_window,
                    args.quiet_every,
                    latency,
                    args.warm_up,
                    policy,
                )
            )
            results.setdefault(latency, []).append(result)

    def row(label: str, pick: Callable[[Result], str], target: str) -> Row:
        return label, {name: pick(_median(runs)) for name, runs in results.items()}, target

    side_by_side(
        f"accounts: {args.accounts} connected, {args.busy} busy (medians of {args.runs} runs"
        " per profile)",
        list(results),
        [
            row("busy p50, s", lambda r: f"{r.busy_p50:.2f}", ""),
            row("busy p99, s", lambda r: f"{r.busy_p99:.2f}", f"< {TARGET_BUSY_P99}"),
            row("quiet p50, s", lambda r: f"{r.quiet_p50:.1f}", ""),
            row("quiet p99, s", lambda r: f"{r.quiet_p99:.1f}", f"< {policy.quiet_target:g}"),
            row(
                "quiet account req/min",
                lambda r: f"{r.idle_per_minute + 60 / SWEEP_INTERVAL:.3f}",
                f"<= {policy.requests_per_minute}",
            ),
            row(
                "idle share of budget",
                lambda r: f"{r.idle_share:.1%}",
                f"<= {policy.idle_share:.0%}",
            ),
            row("all requests / min", lambda r: f"{r.requests_per_minute:,.0f}", "<= 9,000"),
        ],
    )
    return 0 if all(_median(runs).ok(policy) for runs in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
