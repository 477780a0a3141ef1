"""The two bursts every fault is thrown at, and their checks.

**Orders**: sellers with ``auto_create_orders``; buyers pay for ``purchases`` forms in chunks
while the fault runs; done when the ERP holds an ``order.created`` for every form.
**Stock**: ``products`` products bound to two offers each (on different sellers); the ERP
publishes ``versions`` ``stock.changed`` per product (quantity ``100 + version``, so that each
version has its own value) while the fault runs; done when the daemon has handled every
message and every offer on Allegro holds its product's newest quantity.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bench.faults.checks import Tally, count_orders, count_stock
from bench.faults.stack import Daemon, Stack

Fault = Callable[[], Awaitable[None]]


@dataclass
class Outcome:
    """What a burst under a fault came to."""

    load: str
    tally: Tally
    recover_seconds: float | None  # fault over -> everything in its final state
    hand: str = "no"  # what had to be done by hand, or "no"
    notes: list[str] = field(default_factory=list)


async def until(check: Callable[[], Awaitable[bool]], timeout: float, every: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(every)
    return False


# ---------------------------------------------------------------------------- orders


@dataclass
class OrderBurst:
    """Sellers connected, an offer each, the ERP consuming; ``buy`` makes the purchases."""

    stack: Stack
    sellers: list[str]
    offers: list[str]
    bought: list[str] = field(default_factory=list)

    @classmethod
    async def prepare(cls, stack: Stack, daemon: Daemon, sellers: int) -> OrderBurst:
        ids = await stack.connect_sellers(sellers, {"auto_create_orders": True}, daemon)
        await stack.journals_started(len(ids))
        offers = []
        for seller in ids:
            offer = await stack.control(
                "POST", f"/sellers/{seller}/offers", {"name": "Kubek", "stock": 10**6}
            )
            offers.append(str(offer["id"]))
        await stack.erp.start()
        return cls(stack, ids, offers)

    async def buy(self, purchases: int, chunks: int = 20, pause: float = 0.5) -> None:
        """``purchases`` paid forms, round robin over the offers, in ``chunks`` steps."""
        per_chunk = max(1, purchases // chunks)
        made = 0
        while made < purchases:
            offer = self.offers[(made // per_chunk) % len(self.offers)]
            count = min(per_chunk, purchases - made)
            body = {"offer_id": offer, "count": count, "then": "pay"}
            result = await self.stack.control("POST", "/purchases", body)
            self.bought.extend(str(f) for f in result["checkout_form_ids"])
            made += count
            await asyncio.sleep(pause)

    def tally(self) -> Tally:
        return count_orders(
            self.bought, self.stack.erp.announced("order.created", "checkout_form_id")
        )

    async def done(self) -> bool:
        announced = {f for _, f in self.stack.erp.announced("order.created", "checkout_form_id")}
        return announced >= set(self.bought)


async def run_orders(
    stack: Stack,
    *,
    purchases: int,
    sellers: int,
    fault: Fault,
    replicas: int = 1,
    timeout: float = 600,
    daemon_kwargs: dict[str, str] | None = None,
) -> Outcome:
    """The order burst under ``fault`` (started with the purchases, awaited until it heals)."""
    daemons = [stack.daemon(**(daemon_kwargs or {})) for _ in range(replicas)]
    for daemon in daemons:
        daemon.start()
    for daemon in daemons:
        await daemon.ready()
    burst = await OrderBurst.prepare(stack, daemons[0], sellers)
    buying = asyncio.create_task(burst.buy(purchases))
    await fault()
    healed = time.monotonic()
    await buying
    recovered = await until(burst.done, timeout)
    recover = time.monotonic() - healed if recovered else None
    await asyncio.sleep(3.0)  # late duplicates
    return Outcome(
        f"{purchases} orders, {sellers} sellers, {replicas} daemon(s)",
        burst.tally(),
        recover,
        "no" if recovered else f"not done {timeout:.0f} s after the fault",
    )


# ---------------------------------------------------------------------------- stock


def stock_message(product: int, version: int) -> tuple[str, str, bytes]:
    body = {"product_id": f"P{product}", "quantity": 100 + version, "version": version}
    return "stock.changed", f"stock:P{product}:{version}", json.dumps(body).encode()


@dataclass
class StockBurst:
    """Products bound to offers on Allegro, the ERP publishing ``stock.changed``."""

    stack: Stack
    bound: dict[str, str]  # offer -> product
    sent: dict[str, dict[int, int]] = field(default_factory=lambda: defaultdict(dict))
    message_ids: set[str] = field(default_factory=set)

    @classmethod
    async def prepare(cls, stack: Stack, daemon: Daemon, products: int, sellers: int) -> StockBurst:
        settings: dict[str, object] = {"stock_control": True, "raise_quantity_on_erp_sync": True}
        ids = await stack.connect_sellers(sellers, settings, daemon)
        per_seller = 2 * products // sellers
        for seller in ids:
            await stack.control(
                "POST",
                f"/sellers/{seller}/offers",
                {"name": "Kubek", "count": per_seller, "stock": 50},
            )
        await stack.import_offers(daemon)
        async with stack.db() as conn:
            await conn.execute(
                "INSERT INTO products (id, name) SELECT 'P' || n, 'Product ' || n"
                " FROM generate_series(0, $1 - 1) AS n",
                products,
            )
            await conn.execute(
                """
                UPDATE offers SET product_id = 'P' || ((n.k - 1) % $1), bound_at = now()
                  FROM (SELECT id, row_number() OVER (ORDER BY account_id, id) AS k
                          FROM offers) AS n
                 WHERE offers.id = n.id
                """,
                products,
            )
            rows = await conn.fetch(
                "SELECT id, product_id FROM offers WHERE product_id IS NOT NULL"
            )
        await stack.erp.start()
        return cls(stack, {str(r["id"]): str(r["product_id"]) for r in rows})

    async def publish(
        self,
        messages: list[tuple[str, str, bytes]],
        *,
        window: int = 500,
        pause: float = 0.3,
    ) -> None:
        """Publish in windows (each confirmed before it counts as sent)."""
        for first in range(0, len(messages), window):
            chunk = messages[first : first + window]
            await self.stack.erp.publish(chunk, window=window)
            for key, mid, body in chunk:
                if key == "stock.changed" and mid.startswith("stock:"):
                    data = json.loads(body)
                    self.sent[data["product_id"]][data["version"]] = data["quantity"]
                    self.message_ids.add(mid)
            await asyncio.sleep(pause)

    async def handled(self) -> bool:
        async with self.stack.db() as conn:
            done = await conn.fetchval(
                "SELECT count(*) FROM inbox WHERE consumer = 'allegro-sync.erp'"
                " AND message_id LIKE 'stock:%'"
            )
            still = await conn.fetchval(
                "SELECT (SELECT count(*) FROM offer_changes)"
                " + (SELECT count(*) FROM offer_commands WHERE state <> 'done')"
            )
        return bool(done >= len(self.message_ids) and still == 0)

    async def final(self) -> dict[str, int]:
        """Every bound offer's stock on Allegro."""
        semaphore = asyncio.Semaphore(20)

        async def one(offer: str) -> tuple[str, int]:
            async with semaphore:
                data = await self.stack.control("GET", f"/offers/{offer}")
                return offer, int(data["stock"])

        return dict(await asyncio.gather(*(one(o) for o in self.bound)))

    async def commands(self) -> list[tuple[str, int]]:
        data = await self.stack.control("GET", "/commands")
        changes = []
        for command in data["commands"]:
            if command["kind"] == "quantity":
                value = int(command["body"]["modification"]["value"])
                changes.extend((str(o), value) for o in command["offers"])
        return changes

    async def on_allegro(self) -> bool:
        newest = {p: v[max(v)] for p, v in self.sent.items()}
        final = await self.final()
        return all(final[o] == newest.get(p) for o, p in self.bound.items())

    async def tally(self) -> Tally:
        return count_stock(self.sent, self.bound, await self.final(), await self.commands())


def stock_messages(products: int, versions: int) -> list[tuple[str, str, bytes]]:
    return [stock_message(p, v) for v in range(1, versions + 1) for p in range(products)]


async def run_stock(
    stack: Stack,
    *,
    products: int,
    versions: int,
    sellers: int,
    fault: Fault,
    extra: list[tuple[str, str, bytes]] | None = None,
    twice_shuffled: bool = False,
    timeout: float = 600,
    daemon_kwargs: dict[str, str] | None = None,
) -> tuple[Outcome, StockBurst]:
    """The stock burst under ``fault``; ``extra`` messages mixed in at random places;
    ``twice_shuffled``: every message sent twice, all in a random order."""
    daemon = stack.daemon(**(daemon_kwargs or {}))
    daemon.start()
    await daemon.ready()
    burst = await StockBurst.prepare(stack, daemon, products, sellers)
    messages = stock_messages(products, versions)
    rng = random.Random(18)
    if twice_shuffled:
        messages = messages * 2
        rng.shuffle(messages)
    for message in extra or []:
        messages.insert(rng.randrange(len(messages) + 1), message)
    publishing = asyncio.create_task(burst.publish(messages))
    await fault()
    healed = time.monotonic()
    await publishing

    async def settled() -> bool:
        return await burst.handled() and await burst.on_allegro()

    recovered = await until(settled, timeout, every=1.0)
    recover = time.monotonic() - healed if recovered else None
    load = f"{len(messages)} messages, {products} products, {len(burst.bound)} offers"
    outcome = Outcome(
        load,
        await burst.tally(),
        recover,
        "no" if recovered else f"not settled {timeout:.0f} s after the fault",
    )
    return outcome, burst
