"""Flows the end-to-end tests share: a shop with orders, offers bound to products, the ERP's
messages in, and waits for the daemon to have handled them."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import aio_pika
import asyncpg

from allegro_sync.adapters.broker.topology import (
    DEAD_LETTER_QUEUE,
    ERP_EXCHANGE,
    ERP_OUTBOUND_QUEUE,
)
from allegro_sync.daemon.app import Daemon
from allegro_sync.daemon.pollers import WAKE_CHANNEL
from tests.e2e.conftest import Admin, Emulator
from tests.helpers import drain_queue, eventually, publish_json


async def _shop(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, login: str = "shop", **settings: Any
) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """A connected account whose order journal is being read, with two offers on sale."""
    seller = await emulator.seller(login)
    account = await admin.connect(emulator, seller)
    if settings:
        status, account = await admin.call("PATCH", f"/accounts/{account['id']}", settings)
        assert status == 200, account
    offers = []
    for name, ean in (("Kubek ceramiczny", "5901234123457"), ("Talerz", "5901234123464")):
        offer = await emulator.control(
            "POST",
            f"/sellers/{seller['id']}/offers",
            {
                "name": name,
                "ean": ean,
                "stock": 50,
                "price": "19.99",
                "image_url": f"https://img.example/{ean}.jpg",
            },
        )
        offers.append(str(offer["id"]))

    async def journal_started() -> bool:
        return bool(
            await db.fetchval(
                "SELECT true FROM journal_cursors WHERE account_id = $1 AND journal = 'order'",
                account["id"],
            )
        )

    await eventually(journal_started)
    return seller, account, offers


async def _buy(
    emulator: Emulator,
    offer_id: str,
    then: str | None = "pay",
    payment_type: str = "ONLINE",
    **buyer: Any,
) -> str:
    body: dict[str, Any] = {
        "offer_id": offer_id,
        "quantity": 2,
        "payment_type": payment_type,
        "buyer": buyer,
    }
    if then:
        body["then"] = then
    result = await emulator.control("POST", "/purchases", body)
    return str(result["checkout_form_id"])


async def _handled(db: asyncpg.Pool, form_id: str, status: str) -> None:
    async def stored() -> bool:
        return bool(
            await db.fetchval(
                "SELECT true FROM orders WHERE checkout_form_id = $1 AND status = $2",
                form_id,
                status,
            )
        )

    await eventually(stored)


PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


async def _send(amqp_url: str, routing_key: str, body: dict[str, Any], message_id: str) -> None:
    await publish_json(
        amqp_url, ERP_EXCHANGE, [(routing_key, message_id, json.dumps(body).encode())]
    )


def _invoice(form_id: str, number: str = "FV/1/2026", content: bytes = PDF) -> dict[str, Any]:
    return {
        "checkout_form_id": form_id,
        "invoice_number": number,
        "file_name": "FV_1_2026.pdf",
        "content_base64": base64.b64encode(content).decode(),
    }


async def _log_codes(db: asyncpg.Pool, account_id: int) -> list[str]:
    rows = await db.fetch(
        "SELECT code FROM event_log WHERE account_id = $1 AND category = 'orders' ORDER BY id",
        account_id,
    )
    return [r["code"] for r in rows]


async def products(daemon: Daemon, db: asyncpg.Pool, *items: tuple[str, str | None]) -> None:
    """The ERP announces products (``product.upserted``); wait until they are stored."""
    await publish_json(
        daemon.settings.amqp_url,
        ERP_EXCHANGE,
        [
            (
                "product.upserted",
                f"product:{pid}",
                json.dumps({"product_id": pid, "ean": ean, "name": f"Product {pid}"}).encode(),
            )
            for pid, ean in items
        ],
    )

    async def stored() -> bool:
        count = await db.fetchval("SELECT count(*) FROM products")
        return bool(count == len(items))

    await eventually(stored)


async def nudge(db: asyncpg.Pool, account_id: int) -> None:
    """Have the supervisor notice the account and its offer poller poll now."""
    await db.execute("SELECT pg_notify($1, '*')", WAKE_CHANNEL)
    await db.execute("SELECT pg_notify($1, $2)", WAKE_CHANNEL, f"{account_id}:offer")


async def offer(admin: Admin, db: asyncpg.Pool, account_id: int, offer_id: str, **want: Any) -> Any:
    """The offer as ``GET /offers`` shows it, once it matches ``want`` (polling the journal)."""

    async def matches() -> Any:
        await nudge(db, account_id)
        status, page = await admin.call("GET", f"/offers?text={offer_id}")
        assert status == 200, page
        found = [o for o in page["items"] if o["id"] == offer_id]
        if found and all(found[0][k] == v for k, v in want.items()):
            return found[0]
        return None

    return await eventually(matches, timeout=20, interval=0.2)


async def switch(admin: Admin, account_id: int, **settings: Any) -> None:
    status, body = await admin.call("PATCH", f"/accounts/{account_id}", settings)
    assert status == 200, body


async def new_offer(emulator: Emulator, seller: dict[str, Any], **fields: Any) -> str:
    created = await emulator.control("POST", f"/sellers/{seller['id']}/offers", fields)
    return str(created["id"])


async def bound_offers(
    daemon: Daemon,
    admin: Admin,
    emulator: Emulator,
    db: asyncpg.Pool,
    login: str,
    binding: dict[str, str],
    *,
    stock: int = 10,
    price: str = "19.99",
    sandbox: bool = False,
    **settings: Any,
) -> tuple[dict[str, Any], int, dict[str, str]]:
    """A connected account whose offers (name -> product) are mirrored and bound by hand."""
    await products(daemon, db, *((p, None) for p in sorted(set(binding.values()))))
    seller = await emulator.seller(login, **({"sandbox": True} if sandbox else {}))
    account_id = int((await admin.connect(emulator, seller))["id"])
    if settings:
        await switch(admin, account_id, **settings)
    ids = {}
    for name, product_id in binding.items():
        offer_id = await new_offer(emulator, seller, name=name, stock=stock, price=price)
        await offer(admin, db, account_id, offer_id, name=name)
        status, body = await admin.call("PATCH", f"/offers/{offer_id}", {"product_id": product_id})
        assert status == 200, body
        ids[name] = offer_id
    return seller, account_id, ids


async def erp(daemon: Daemon, db: asyncpg.Pool, *messages: tuple[str, dict[str, Any]]) -> None:
    """The ERP publishes; wait until the daemon handled every message."""
    rows = []
    for n, (routing_key, body) in enumerate(messages):
        message_id = f"{routing_key}:{body['product_id']}:{body['version']}:{n}"
        rows.append((routing_key, message_id, json.dumps(body).encode()))
    await publish_json(daemon.settings.amqp_url, ERP_EXCHANGE, rows)

    async def handled() -> bool:
        count = await db.fetchval(
            "SELECT count(*) FROM inbox WHERE message_id = ANY($1::text[])", [r[1] for r in rows]
        )
        return bool(count == len(rows))

    await eventually(handled)


def stock_changed(product_id: str, quantity: int, version: int) -> tuple[str, dict[str, Any]]:
    return "stock.changed", {"product_id": product_id, "quantity": quantity, "version": version}


def price_changed(
    product_id: str, price: str, version: int, price_list: str = "default"
) -> tuple[str, dict[str, Any]]:
    body = {
        "product_id": product_id,
        "price_list": price_list,
        "price": price,
        "currency": "PLN",
        "version": version,
    }
    return "price.changed", body


async def commands(emulator: Emulator, seller: dict[str, Any]) -> list[dict[str, Any]]:
    """The batch commands the emulator received from this seller."""
    received: list[dict[str, Any]] = (await emulator.control("GET", "/commands"))["commands"]
    return [c for c in received if c["seller_id"] == seller["id"]]


async def settled(daemon: Daemon, db: asyncpg.Pool) -> None:
    """Until no desired change is waiting and no command is open."""

    async def idle() -> bool:
        pending = await db.fetchval(
            "SELECT (SELECT count(*) FROM offer_changes)"
            " + (SELECT count(*) FROM offer_commands WHERE state <> 'done')"
        )
        return bool(pending == 0)

    await eventually(idle, timeout=20)


async def emulator_offer(emulator: Emulator, offer_id: str) -> dict[str, Any]:
    found: dict[str, Any] = await emulator.control("GET", f"/offers/{offer_id}")
    return found


async def stock_set(
    daemon: Daemon,
    db: asyncpg.Pool,
    emulator: Emulator,
    seller: dict[str, Any],
    offer_id: str,
    change: tuple[str, dict[str, Any]],
) -> dict[str, Any]:
    """The ERP sends ``change`` (a ``stock_changed``); once settled, the seller's one batch
    command set its quantity and the offer shows it. The command."""
    await erp(daemon, db, change)
    await settled(daemon, db)
    [command] = await commands(emulator, seller)
    quantity = change[1]["quantity"]
    assert command["body"]["modification"]["value"] == quantity
    assert (await emulator_offer(emulator, offer_id))["stock"] == quantity
    return command


class Erp:
    """The ERP side: every message the daemon published to ``allegro-sync.events``."""

    def __init__(self, amqp_url: str) -> None:
        self.amqp_url = amqp_url
        self.received: list[aio_pika.abc.AbstractIncomingMessage] = []

    async def take(self) -> None:
        connection = await aio_pika.connect(self.amqp_url)
        channel = await connection.channel()
        queue = await channel.get_queue(ERP_OUTBOUND_QUEUE)
        while (message := await queue.get(fail=False)) is not None:
            await message.ack()
            self.received.append(message)
        await connection.close()

    def of(self, routing_key: str) -> list[dict[str, Any]]:
        return [json.loads(m.body) for m in self.received if m.routing_key == routing_key]

    async def wait_for(
        self, routing_key: str, count: int = 1, timeout: float = 20
    ) -> list[dict[str, Any]]:
        async def enough() -> bool:
            await self.take()
            return len(self.of(routing_key)) >= count

        await eventually(enough, timeout=timeout, interval=0.1)
        return self.of(routing_key)

    async def settle(self, seconds: float = 1.5) -> None:
        """Give the daemon time to publish anything it (wrongly) still would."""
        await asyncio.sleep(seconds)
        await self.take()


async def _dead_letters(amqp_url: str, count: int) -> list[str]:
    errors: list[str] = []

    async def enough() -> bool:
        taken = await drain_queue(amqp_url, DEAD_LETTER_QUEUE, wait=0.2)
        errors.extend(str((m.headers or {}).get("x-error")) for m in taken)
        return len(errors) >= count

    await eventually(enough, timeout=20)
    return errors


async def bound_messages(daemon: Daemon) -> list[dict[str, Any]]:
    taken = await drain_queue(daemon.settings.amqp_url, ERP_OUTBOUND_QUEUE, wait=1.0)
    return [json.loads(m.body) for m in taken if m.routing_key == "offer.bound"]
