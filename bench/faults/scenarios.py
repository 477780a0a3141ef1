"""The scenarios: the fault matrix (SIGKILLs, restarts, Allegro storms, poison, duplicates,
replicas), the cluster losing a node, partitions, and the daemon offline for longer than the
offer journal keeps its events.

Each scenario runs on the suite's own PostgreSQL instance and RabbitMQ node (or cluster), in a
database and a virtual host of its own, and answers an ``Outcome``. Sizes scale with
``Scale``; the defaults of ``make faults`` are in ``__main__``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from bench.faults.checks import Tally, count_dead_letters
from bench.faults.proxy import HangingProxy
from bench.faults.services import BrokerCluster, Postgres
from bench.faults.stack import Daemon, Stack, new_id
from bench.faults.workloads import Outcome, run_orders, run_stock, until


@dataclass(frozen=True)
class Scale:
    """Burst sizes: the defaults are issue 18's (an order burst of 5 000 purchases, a stock burst
    of 20 000 messages: 1 000 products x 20 versions)."""

    purchases: int = 5000
    order_sellers: int = 5
    products: int = 1000
    versions: int = 20
    stock_sellers: int = 4
    order_kills: int = 10
    stock_kills: int = 5
    hang_seconds: float = 90.0  # longer than the heartbeat (30 s) and the commands' 60 s


@dataclass
class Services:
    """The suite's own PostgreSQL, RabbitMQ node and (on demand) three-node cluster."""

    base: Path
    postgres: Postgres
    broker: BrokerCluster
    cluster: BrokerCluster | None = None

    def add_vhost(self, broker: BrokerCluster, name: str) -> str:
        node = broker.nodes[0]
        node.ctl("add_vhost", name)
        node.ctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        return ",".join(url.rstrip("/") + "/" + quote(name, safe="") for url in broker.urls)

    def database(self, name: str) -> str:
        return self.postgres.url(name)

    def get_cluster(self) -> BrokerCluster:
        if self.cluster is None:
            self.cluster = BrokerCluster(self.base / "cluster", 3, "faults-cluster")
            self.cluster.start()
        return self.cluster


Scenario = Callable[[Services, Scale], Awaitable[Outcome]]


def _stack(services: Services, name: str, broker: BrokerCluster | None = None) -> Stack:
    tag = f"{name}-{new_id()}"
    amqp = services.add_vhost(broker or services.broker, tag)
    return Stack(name, services.database(tag.replace("-", "_")), amqp)


async def _sigkills(daemons: list[Daemon], times: int, every: float) -> None:
    for n in range(times):
        await asyncio.sleep(every)
        daemon = daemons[n % len(daemons)]
        daemon.kill()
        daemon.start()  # a supervisor's restart, not a hand
        await daemon.ready()


async def sigkill_orders(services: Services, scale: Scale) -> Outcome:
    async with _stack(services, "sigkill-orders") as stack:
        return await run_orders(
            stack,
            purchases=scale.purchases,
            sellers=scale.order_sellers,
            fault=lambda: _sigkills(stack.daemons, scale.order_kills, 2.0),
        )


async def sigkill_stock(services: Services, scale: Scale) -> Outcome:
    async with _stack(services, "sigkill-stock") as stack:
        outcome, _ = await run_stock(
            stack,
            products=scale.products,
            versions=scale.versions,
            sellers=scale.stock_sellers,
            fault=lambda: _sigkills(stack.daemons, scale.stock_kills, 2.0),
        )
        return outcome


async def broker_restart(services: Services, scale: Scale) -> Outcome:
    async def restart() -> None:
        await asyncio.sleep(4.0)
        node = services.broker.nodes[0]
        await asyncio.to_thread(node.stop)
        await asyncio.sleep(5.0)
        await asyncio.to_thread(node.start)

    async with _stack(services, "broker-restart") as stack:
        outcome, _ = await run_stock(
            stack,
            products=scale.products,
            versions=scale.versions,
            sellers=scale.stock_sellers,
            fault=restart,
        )
        return outcome


async def postgres_restart(services: Services, scale: Scale) -> Outcome:
    async def restart() -> None:
        await asyncio.sleep(4.0)
        await asyncio.to_thread(services.postgres.restart)

    async with _stack(services, "postgres-restart") as stack:
        return await run_orders(
            stack, purchases=scale.purchases, sellers=scale.order_sellers, fault=restart
        )


def _storm(stack: Stack, body: dict[str, object], seconds: float) -> Callable[[], Awaitable[None]]:
    async def storm() -> None:
        await asyncio.sleep(2.0)
        await stack.control("POST", "/faults", body)
        await asyncio.sleep(seconds)
        await stack.control("DELETE", "/faults")

    return storm


async def storm_429(services: Services, scale: Scale) -> Outcome:
    async with _stack(services, "storm-429") as stack:
        orders = await run_orders(
            stack,
            purchases=scale.purchases // 2,
            sellers=scale.order_sellers,
            fault=_storm(stack, {"status_429_seconds": 20}, 20.0),
        )
        return orders


async def storm_5xx(services: Services, scale: Scale) -> Outcome:
    async with _stack(services, "storm-5xx") as stack:
        outcome, _ = await run_stock(
            stack,
            products=scale.products,
            versions=scale.versions,
            sellers=scale.stock_sellers,
            fault=_storm(stack, {"error_5xx_rate": 0.5, "drop_connections_rate": 0.1}, 20.0),
        )
        return outcome


def _poison(count: int) -> list[tuple[str, str, bytes]]:
    kinds = [
        ("stock.changed", b"{not json"),
        ("stock.changed", json.dumps({"product_id": "P1", "quantity": -5, "version": 1}).encode()),
        ("stock.changed", json.dumps({"product": "P1"}).encode()),
        ("no.such.type", json.dumps({"product_id": "P1"}).encode()),
    ]
    return [
        (kinds[n % len(kinds)][0], f"poison:{n}", kinds[n % len(kinds)][1]) for n in range(count)
    ]


async def poison(services: Services, scale: Scale) -> Outcome:
    async def nothing() -> None:
        await asyncio.sleep(0)

    bad = _poison(scale.products * scale.versions // 10)
    async with _stack(services, "poison") as stack:
        outcome, _ = await run_stock(
            stack,
            products=scale.products,
            versions=scale.versions,
            sellers=scale.stock_sellers,
            fault=nothing,
            extra=bad,
        )
        dead: list[str] = []

        async def all_dead() -> bool:
            dead.extend(await stack.erp.dead_letters())
            return {m for _, m, _ in bad} <= set(dead)

        await until(all_dead, 60, every=1.0)
        good_dead = [m for m in dead if not m.startswith("poison:")]
        tally = outcome.tally + count_dead_letters([m for _, m, _ in bad], dead)
        outcome.tally = tally
        outcome.load += f" + {len(bad)} poison"
        outcome.notes.append(f"{len(dead)} dead-lettered, {len(good_dead)} of them good")
        return outcome


async def twice_shuffled(services: Services, scale: Scale) -> Outcome:
    async def nothing() -> None:
        await asyncio.sleep(0)

    async with _stack(services, "twice-shuffled") as stack:
        outcome, _ = await run_stock(
            stack,
            products=scale.products,
            versions=scale.versions,
            sellers=scale.stock_sellers,
            fault=nothing,
            twice_shuffled=True,
        )
        return outcome


async def two_replicas(services: Services, scale: Scale) -> Outcome:
    async def kill_one() -> None:
        await asyncio.sleep(6.0)
        stack.daemons[0].kill()  # and it stays down

    async with _stack(services, "two-replicas") as stack:
        return await run_orders(
            stack,
            purchases=scale.purchases,
            sellers=scale.order_sellers,
            fault=kill_one,
            replicas=2,
        )


def _node_down(cluster: BrokerCluster, index: int, down: float) -> Callable[[], Awaitable[None]]:
    async def fault() -> None:
        await asyncio.sleep(4.0)
        node = cluster.nodes[index]
        await asyncio.to_thread(node.stop)
        await asyncio.sleep(down)
        await asyncio.to_thread(node.start)

    return fault


async def cluster_orders(services: Services, scale: Scale) -> Outcome:
    cluster = services.get_cluster()
    async with _stack(services, "cluster-orders", cluster) as stack:
        outcome = await run_orders(
            stack,
            purchases=scale.purchases,
            sellers=scale.order_sellers,
            fault=_node_down(cluster, 0, 15.0),
        )
        outcome.notes.append(_members(cluster, stack))
        return outcome


async def cluster_stock(services: Services, scale: Scale) -> Outcome:
    cluster = services.get_cluster()
    async with _stack(services, "cluster-stock", cluster) as stack:
        outcome, _ = await run_stock(
            stack,
            products=scale.products,
            versions=scale.versions,
            sellers=scale.stock_sellers,
            fault=_node_down(cluster, 1, 15.0),
        )
        outcome.notes.append(_members(cluster, stack))
        return outcome


def _members(cluster: BrokerCluster, stack: Stack) -> str:
    vhost = urlsplit(stack.amqp_url.split(",")[0]).path.lstrip("/")
    from urllib.parse import unquote

    queues = cluster.quorum_members(unquote(vhost))
    leaders = sorted({leader for leader, _ in queues.values()})
    sizes = sorted({size for _, size in queues.values()})
    return f"{len(queues)} quorum queues, members {sizes}, leaders on {len(leaders)} nodes"


async def _hang(
    daemon: Daemon, proxy: HangingProxy, seconds: float, notes: list[str]
) -> asyncio.Task[None]:
    """Hang ``proxy`` for ``seconds`` (after 4 s of the burst), watching ``/readyz``; heal and
    return a task that notes when the daemon is ready again."""
    await asyncio.sleep(4.0)
    proxy.hang()
    started = time.monotonic()
    unready_after: float | None = None
    while time.monotonic() - started < seconds:
        if unready_after is None and await daemon.readiness() != 200:
            unready_after = time.monotonic() - started
        await asyncio.sleep(2.0)
    proxy.heal()
    healed = time.monotonic()
    notes.append(
        f"hung {seconds:.0f} s; /readyz unready after "
        + (f"{unready_after:.0f} s" if unready_after is not None else "never")
    )
    if unready_after is None:
        notes.append(READINESS_WRONG)

    async def ready_again() -> None:
        if await until(lambda: _is_ready(daemon), 300, every=1.0):
            notes.append(f"ready again {time.monotonic() - healed:.0f} s after the heal")
        else:
            notes.append(READINESS_WRONG)

    return asyncio.create_task(ready_again())


READINESS_WRONG = "READINESS WRONG"


async def _is_ready(daemon: Daemon) -> bool:
    return await daemon.readiness() == 200


async def broker_hang(services: Services, scale: Scale) -> Outcome:
    node = services.broker.nodes[0]
    proxy = HangingProxy("127.0.0.1", node.port)
    await proxy.start()
    notes: list[str] = []
    watch: list[asyncio.Task[None]] = []

    async def fault() -> None:
        watch.append(await _hang(stack.daemons[0], proxy, scale.hang_seconds, notes))

    try:
        async with _stack(services, "broker-hang") as stack:
            through = stack.amqp_url.replace(f":{node.port}/", f":{proxy.port}/")
            outcome = await run_orders(
                stack,
                purchases=scale.purchases,
                sellers=scale.order_sellers,
                fault=fault,
                daemon_kwargs={"amqp_url": through},
            )
            await asyncio.gather(*watch)
    finally:
        await proxy.close()
    return _with_readiness(outcome, notes)


async def postgres_hang(services: Services, scale: Scale) -> Outcome:
    proxy = HangingProxy("127.0.0.1", services.postgres.port)
    await proxy.start()
    notes: list[str] = []
    watch: list[asyncio.Task[None]] = []

    async def fault() -> None:
        watch.append(await _hang(stack.daemons[0], proxy, scale.hang_seconds, notes))

    try:
        async with _stack(services, "postgres-hang") as stack:
            through = stack.database_url.replace(f":{services.postgres.port}/", f":{proxy.port}/")
            outcome, _ = await run_stock(
                stack,
                products=scale.products,
                versions=scale.versions,
                sellers=scale.stock_sellers,
                fault=fault,
                daemon_kwargs={"database_url": through},
            )
            await asyncio.gather(*watch)
    finally:
        await proxy.close()
    return _with_readiness(outcome, notes)


def _with_readiness(outcome: Outcome, notes: list[str]) -> Outcome:
    outcome.notes.extend(notes)
    if READINESS_WRONG in notes:
        outcome.hand = "readiness wrong"
    return outcome


async def offline_day(services: Services, scale: Scale) -> Outcome:
    """Offline for 25 hours (the emulator's clock): offers listed meanwhile are past the offer
    journal's 24 hours; the daemon must see the gap and sweep the listing."""
    sellers = scale.stock_sellers
    async with _stack(services, "offline-day") as stack:
        daemon = stack.daemon()
        daemon.start()
        await daemon.ready()
        ids = await stack.connect_sellers(sellers, {"auto_create_orders": False}, daemon)
        for seller in ids:
            await stack.control("POST", f"/sellers/{seller}/offers", {"name": "A", "count": 20})
        await stack.import_offers(daemon)
        # the offer journal read past its start (a cursor that names an event, refused once the
        # day passes; a journal still at its start is told by its read time instead, which
        # tests/e2e/test_offline_day.py covers)
        await stack.journals_started(len(ids), "offer", with_event=True)
        daemon.stop()
        per_seller = scale.products // 10
        for seller in ids:  # listed while the daemon is away, then the day passes
            await stack.control(
                "POST", f"/sellers/{seller}/offers", {"name": "B", "count": per_seller}
            )
        await stack.control("POST", "/clock", {"advance_seconds": 25 * 3600})
        for seller in ids:
            await stack.control(
                "POST", f"/sellers/{seller}/offers", {"name": "C", "count": per_seller}
            )
        expected = sellers * (20 + 2 * per_seller)
        started = time.monotonic()
        daemon.start()
        await daemon.ready()

        async def mirrored() -> bool:
            async with stack.db() as conn:
                return bool(await conn.fetchval("SELECT count(*) FROM offers") >= expected)

        recovered = await until(mirrored, 300, every=1.0)
        recover = time.monotonic() - started if recovered else None
        async with stack.db() as conn:
            count = await conn.fetchval("SELECT count(*) FROM offers")
            gaps = await conn.fetchval(
                "SELECT count(*) FROM event_log WHERE code = 'offer_journal_gap'"
            )
        tally = Tally(lost=max(0, expected - count), unexpected=max(0, count - expected))
        outcome = Outcome(
            f"{expected} offers, {sellers} sellers, 25 h offline",
            tally,
            recover,
            "no" if recovered and gaps == sellers else "gap not swept",
        )
        outcome.notes.append(f"{gaps} offer_journal_gap warnings (one per account expected)")
        return outcome


SCENARIOS: dict[str, Scenario] = {
    "sigkill-orders": sigkill_orders,
    "sigkill-stock": sigkill_stock,
    "broker-restart": broker_restart,
    "postgres-restart": postgres_restart,
    "storm-429": storm_429,
    "storm-5xx": storm_5xx,
    "poison": poison,
    "twice-shuffled": twice_shuffled,
    "two-replicas": two_replicas,
    "cluster-orders": cluster_orders,
    "cluster-stock": cluster_stock,
    "broker-hang": broker_hang,
    "postgres-hang": postgres_hang,
    "offline-day": offline_day,
}
