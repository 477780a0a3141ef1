"""Orders end to end: purchases in the emulator -> order journal poller -> RabbitMQ -> order
handler -> outbox -> ``order.created`` on ``allegro-sync.events`` (design.md O1, C1-C4)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import aiohttp
import asyncpg
import pytest

from allegro_sync.adapters.broker.topology import (
    DEAD_LETTER_QUEUE,
    JOURNAL_EXCHANGE,
)
from allegro_sync.daemon.app import Daemon
from tests.e2e.conftest import FAST_POLLING, Admin, Emulator, daemon_settings
from tests.e2e.flows import Erp, _buy, _handled, _shop
from tests.helpers import drain_queue, eventually, publish_json


@pytest.fixture
async def erp(amqp_url: str, daemon: Daemon) -> Erp:
    return Erp(amqp_url)


async def test_a_paid_purchase_becomes_exactly_one_order(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, erp: Erp
) -> None:
    _, account, offers = await _shop(admin, emulator, db, auto_create_orders=True)
    await db.execute(
        "INSERT INTO products (id, ean, name) VALUES ('SKU-1', '5901234123457', 'Kubek')"
    )
    await db.execute(
        "INSERT INTO offers (id, account_id, name, format, status, product_id, ean, image_url)"
        " VALUES ($1, $2, 'Kubek ceramiczny', 'BUY_NOW', 'ACTIVE', 'SKU-1', '5901234123457',"
        " 'https://img.example/5901234123457.jpg')",
        offers[0],
        account["id"],
    )
    form_id = await _buy(emulator, offers[0])
    [order] = await erp.wait_for("order.created")
    assert order["checkout_form_id"] == form_id
    assert order["account_id"] == account["id"] and order["account_login"] == "shop"
    assert order["status"] == "READY_FOR_PROCESSING"
    assert order["payment"]["type"] == "ONLINE" and order["payment"]["paid_at"]
    assert order["total"] == order["payment"]["amount"]
    assert order["currency"] == "PLN"
    assert order["customer"] is None  # C1: anonymous by default
    assert order["delivery"]["address"]["city"]
    [line] = order["lines"]
    assert line == {
        "offer_id": offers[0],
        "product_id": "SKU-1",
        "ean": "5901234123457",
        "name": "Kubek ceramiczny",
        "quantity": 2,
        "unit_price": "19.99",
        "image_url": "https://img.example/5901234123457.jpg",
        # added in 2026 (issue 13 item 4)
        "line_item_id": line["line_item_id"],
        "currency": "PLN",
        "original_unit_price": "19.99",
        "paid": "39.98",
        "tax": {"rate": "23.00", "subject": "GOODS", "exemption": None},
        "discounts": [],
        "vouchers": [],
    }
    message = next(m for m in erp.received if m.routing_key == "order.created")
    assert message.message_id == f"order.created:{form_id}"
    await erp.settle()
    assert len(erp.of("order.created")) == 1

    status, listing = await admin.call("GET", f"/orders?account_id={account['id']}")
    assert status == 200
    assert [o["checkout_form_id"] for o in listing["items"]] == [form_id]
    assert listing["items"][0]["sent_to_erp_at"] is not None
    _, log = await admin.call("GET", f"/accounts/{account['id']}/event-log?category=orders")
    assert [e["code"] for e in log["items"]] == ["order_created"]


async def test_cash_on_delivery_counts_as_ready_and_unpaid_stays_unannounced(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, erp: Erp
) -> None:
    _, _, offers = await _shop(admin, emulator, db, auto_create_orders=True)
    unpaid = await _buy(emulator, offers[0], then="fill-in")
    cod = await _buy(emulator, offers[1], then="fill-in", payment_type="CASH_ON_DELIVERY")
    [order] = await erp.wait_for("order.created")
    assert order["checkout_form_id"] == cod
    assert order["payment"]["type"] == "CASH_ON_DELIVERY"
    await _handled(db, unpaid, "FILLED_IN")
    await erp.settle()
    assert [o["checkout_form_id"] for o in erp.of("order.created")] == [cod]


async def test_orders_are_not_created_while_the_setting_is_off(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, erp: Erp
) -> None:
    _, _, offers = await _shop(admin, emulator, db)
    form_id = await _buy(emulator, offers[0])
    await _handled(db, form_id, "READY_FOR_PROCESSING")
    await erp.settle()
    assert erp.of("order.created") == []


async def test_cancellation_follows_an_announced_order(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, erp: Erp
) -> None:
    _, account, offers = await _shop(admin, emulator, db, auto_create_orders=True)
    sent = await _buy(emulator, offers[0])
    await erp.wait_for("order.created")
    await emulator.control("POST", f"/checkout-forms/{sent}/cancel")
    [cancelled] = await erp.wait_for("order.cancelled")
    assert cancelled == {"checkout_form_id": sent, "account_id": account["id"]}

    never_sent = await _buy(emulator, offers[1], then="cancel")
    await _handled(db, never_sent, "CANCELLED")
    await erp.settle()
    assert len(erp.of("order.cancelled")) == 1
    assert len(erp.of("order.created")) == 1


async def test_the_same_event_three_times_and_a_rewound_cursor_give_one_order(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, erp: Erp, amqp_url: str
) -> None:
    _, account, offers = await _shop(admin, emulator, db, auto_create_orders=True)
    start = await db.fetchval("SELECT last_event_id FROM journal_cursors WHERE journal = 'order'")
    form_id = await _buy(emulator, offers[0])
    await erp.wait_for("order.created")

    # the READY event again, three times, under new message ids (a producer-side duplicate)
    # BOUGHT, FILLED_IN, READY_FOR_PROCESSING: one message per form and journal page
    events = await db.fetchval("SELECT count(*) FROM inbox WHERE consumer = 'allegro-sync.journal'")
    assert 1 <= events <= 3
    ready_event = {
        "id": "duplicate",
        "occurredAt": "2026-01-01T00:00:00Z",
        "type": "READY_FOR_PROCESSING",
        "order": {"checkoutForm": {"id": form_id}, "lineItems": [{"offer": {"id": offers[0]}}]},
    }
    await publish_json(
        amqp_url,
        JOURNAL_EXCHANGE,
        [
            (
                "allegro.order_event",
                f"dup-{i}",
                json.dumps({"account_id": account["id"], "event": ready_event}).encode(),
            )
            for i in range(3)
        ],
    )
    # the poller "crashed" after publishing a page and before saving its cursor: the page is
    # read and published again
    await db.execute("UPDATE journal_cursors SET last_event_id = $1 WHERE journal = 'order'", start)

    async def reread() -> bool:
        count = await db.fetchval("SELECT count(*) FROM inbox WHERE message_id LIKE 'dup-%'")
        return bool(count == 3)

    await eventually(reread)
    await erp.settle(2.0)
    assert len(erp.of("order.created")) == 1


@pytest.mark.parametrize(
    "switched_emulator",
    [{"duplicate_ready_event": True, "out_of_order_events": True}],
    indirect=True,
)
async def test_duplicated_and_out_of_order_events_converge(
    switched_emulator: Emulator, database_url: str, amqp_url: str, db: asyncpg.Pool
) -> None:
    running = Daemon(
        daemon_settings(database_url, amqp_url, switched_emulator.url), poller_timing=FAST_POLLING
    )
    await running.start()
    try:
        async with aiohttp.ClientSession() as session:
            admin = Admin(running, session)
            _, _, offers = await _shop(admin, switched_emulator, db, auto_create_orders=True)
            first = await _buy(switched_emulator, offers[0], then="fill-in")
            await switched_emulator.control("POST", f"/checkout-forms/{first}/pay")
            second = await _buy(switched_emulator, offers[1])
            erp = Erp(amqp_url)
            orders = await erp.wait_for("order.created", 2)
            await erp.settle()
            assert sorted(o["checkout_form_id"] for o in erp.of("order.created")) == sorted(
                [first, second]
            )
            assert all(o["status"] == "READY_FOR_PROCESSING" for o in orders)
            statuses = await db.fetch("SELECT status FROM orders")
            assert {r["status"] for r in statuses} == {"READY_FOR_PROCESSING"}
    finally:
        await running.stop()


async def test_an_inactive_account_is_not_polled(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, erp: Erp, amqp_url: str
) -> None:
    _, account, offers = await _shop(admin, emulator, db, auto_create_orders=True)
    await admin.call("PATCH", f"/accounts/{account['id']}", {"active": False})
    form_id = await _buy(emulator, offers[0])
    # even an event that reaches the queue is ignored for an inactive account
    event = {
        "id": "late",
        "occurredAt": "2026-01-01T00:00:00Z",
        "type": "READY_FOR_PROCESSING",
        "order": {"checkoutForm": {"id": form_id}, "lineItems": []},
    }
    await publish_json(
        amqp_url,
        JOURNAL_EXCHANGE,
        [
            (
                "allegro.order_event",
                "late-1",
                json.dumps({"account_id": account["id"], "event": event}).encode(),
            )
        ],
    )
    await erp.settle(2.0)
    assert erp.of("order.created") == []
    assert await db.fetchval("SELECT count(*) FROM orders") == 0
    status, body = await admin.call("POST", f"/accounts/{account['id']}/orders/fetch")
    assert status == 409 and body["error"] == "inactive"

    await admin.call("PATCH", f"/accounts/{account['id']}", {"active": True})
    status, body = await admin.call("POST", f"/accounts/{account['id']}/orders/fetch")
    assert status == 202


async def test_orders_from_is_respected_and_backfilled(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, erp: Erp
) -> None:
    seller = await emulator.seller("backfill-shop")
    offer = await emulator.control(
        "POST", f"/sellers/{seller['id']}/offers", {"name": "Lampa", "stock": 10, "price": "50.00"}
    )
    # both bought before the account was connected: only a backfill can find them
    early = await _buy(emulator, str(offer["id"]))
    await asyncio.sleep(1.2)
    later = await _buy(emulator, str(offer["id"]))
    form = await emulator.control("GET", f"/checkout-forms/{later}")
    bought = datetime.fromisoformat(form["lineItems"][0]["boughtAt"].replace("Z", "+00:00"))
    account = await admin.connect(emulator, seller)
    since = bought - timedelta(milliseconds=500)  # orders from between the two purchases
    status, body = await admin.call(
        "PATCH",
        f"/accounts/{account['id']}",
        {"auto_create_orders": True, "orders_from": since.isoformat()},
    )
    assert status == 200, body
    [order] = await erp.wait_for("order.created")
    assert order["checkout_form_id"] == later
    await erp.settle()
    assert [o["checkout_form_id"] for o in erp.of("order.created")] == [later]
    # the listing's forms are used as they are: no second read per backfilled form
    counts = (await emulator.control("GET", "/requests"))["by_path"]
    assert counts.get("GET /order/checkout-forms/{id}", 0) == 0, counts
    assert await db.fetchval(
        "SELECT announced_at IS NULL FROM orders WHERE checkout_form_id = $1", early
    ) in (True, None)


@pytest.mark.parametrize(
    ("settings", "buyer", "expected"),
    [
        ({}, {"company": "Firma", "nip": "5213003700"}, None),
        ({"send_customer_card": True}, {"first_name": "Anna"}, {"nip": None, "type": "domestic"}),
        (
            {"send_customer_card": True},
            {"company": "Firma", "nip": "5213003700"},
            {"nip": "5213003700", "type": "domestic"},
        ),
        (
            {"send_customer_card": True, "only_customers_with_nip": True},
            {"first_name": "Anna"},
            None,
        ),
        (
            {"send_customer_card": True, "only_customers_with_nip": True},
            {"company": "Firma", "nip": "5213003700"},
            {"nip": "5213003700", "type": "domestic"},
        ),
        ({"send_customer_card": True}, {"country": "DE"}, {"nip": None, "type": "intra_eu"}),
        ({"send_customer_card": True}, {"country": "UA"}, {"nip": None, "type": "extra_eu"}),
    ],
)
async def test_customer_rules(
    admin: Admin,
    emulator: Emulator,
    db: asyncpg.Pool,
    erp: Erp,
    settings: dict[str, Any],
    buyer: dict[str, Any],
    expected: dict[str, Any] | None,
) -> None:
    _, account, offers = await _shop(admin, emulator, db, auto_create_orders=True, **settings)
    await _buy(emulator, offers[0], **buyer)
    [order] = await erp.wait_for("order.created")
    customer = order["customer"]
    if expected is None:
        assert customer is None
        assert await db.fetchval("SELECT count(*) FROM customers") == 0
        return
    assert customer is not None
    assert customer["active"] is False
    assert customer["email"].endswith("@allegromail.pl")  # the masked address, as it is
    for key, value in expected.items():
        assert customer[key] == value, key
    stored = await db.fetchrow("SELECT * FROM customers")
    assert stored["active"] is False and stored["type"] == expected["type"]
    assert stored["account_id"] == account["id"]


async def test_merged_checkout_forms_make_one_order(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, erp: Erp
) -> None:
    _, _, offers = await _shop(admin, emulator, db, auto_create_orders=True)
    one = await _buy(emulator, offers[0], then=None, login="same-buyer")
    two = await _buy(emulator, offers[1], then=None, login="same-buyer")
    await _handled(db, one, "BOUGHT")
    await _handled(db, two, "BOUGHT")
    merged = await emulator.control("POST", "/checkout-forms/merge", {"ids": [one, two]})
    merged_id = merged.get("checkout_form_id") or merged["id"]
    [order] = await erp.wait_for("order.created")
    assert order["checkout_form_id"] == merged_id
    assert sorted(line["offer_id"] for line in order["lines"]) == sorted(offers)
    await erp.settle()
    assert len(erp.of("order.created")) == 1
    superseded = await db.fetch(
        "SELECT checkout_form_id::text AS id FROM orders WHERE superseded_by IS NOT NULL"
    )
    assert sorted(r["id"] for r in superseded) == sorted([one, two])


async def test_checkout_forms_are_read_in_bulk(
    admin: Admin, emulator: Emulator, daemon: Daemon, db: asyncpg.Pool
) -> None:
    """Requests per order decide how far an installation scales (9000/min per client id)."""
    from allegro_sync.adapters.allegro.checkout_forms import read_checkout_forms

    _, account, offers = await _shop(admin, emulator, db)
    clock = await emulator.control("GET", "/clock")
    started = datetime.fromisoformat(clock["now"].replace("Z", "+00:00"))
    form_ids = [await _buy(emulator, offers[i % 2]) for i in range(30)]
    await emulator.control("DELETE", "/requests")
    missing = uuid.uuid4()
    wanted = {uuid.UUID(f): started for f in form_ids} | {missing: started}
    assert daemon.allegro is not None
    found = await read_checkout_forms(daemon.allegro, account["id"], wanted)
    assert {str(k) for k, v in found.items() if isinstance(v, dict)} == set(form_ids)
    assert found[missing] is None
    counts = (await emulator.control("GET", "/requests"))["by_path"]
    assert counts.get("GET /order/checkout-forms") == 1
    single_reads = sum(v for k, v in counts.items() if k.startswith("GET /order/checkout-forms/"))
    assert single_reads == 1  # only the form the listing could not show


def _form(form_id: str, offer_id: str, buyer_id: str | None) -> dict[str, Any]:
    """A paid checkout form as ``GET /order/checkout-forms/{id}`` gives it."""
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return {
        "id": form_id,
        "status": "READY_FOR_PROCESSING",
        "revision": "r1",
        "updatedAt": now,
        "buyer": {"id": buyer_id, "login": "kupujacy", "email": "a1b2c3+1@allegromail.pl"},
        "payment": {
            "type": "ONLINE",
            "finishedAt": now,
            "paidAmount": {"amount": "19.99", "currency": "PLN"},
        },
        "lineItems": [
            {
                "id": str(uuid.uuid4()),
                "boughtAt": now,
                "quantity": 1,
                "offer": {"id": offer_id, "name": "Kubek ceramiczny"},
                "price": {"amount": "19.99", "currency": "PLN"},
            }
        ],
        "summary": {"totalToPay": {"amount": "19.99", "currency": "PLN"}},
    }


async def test_a_failing_form_in_a_run_holds_up_none_of_the_others(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, erp: Erp, amqp_url: str
) -> None:
    """The journal poller publishes a page's forms in runs of 100. When one form of a run fails
    (here: no buyer id while customer cards are on, which is bad input), the run is split into
    one message per form: the others are announced, and only the bad one is dead-lettered,
    with its reason and the run it came from."""
    _, account, offers = await _shop(
        admin, emulator, db, auto_create_orders=True, send_customer_card=True
    )
    forms = [_form(str(uuid.uuid4()), offers[0], buyer) for buyer in ("b-1", None, "b-3")]
    now = datetime.now(UTC).isoformat()
    run = {
        "account_id": account["id"],
        "events": [
            {
                "id": f"run-{n}",
                "occurredAt": now,
                "type": "READY_FOR_PROCESSING",
                "order": {
                    "checkoutForm": {"id": form["id"]},
                    "lineItems": [{"offer": {"id": offers[0]}}],
                },
                "form": form,
                "form_read_at": now,
            }
            for n, form in enumerate(forms)
        ],
    }
    run_id = f"order-events:{account['id']}:run-0:run-2"
    await publish_json(
        amqp_url,
        JOURNAL_EXCHANGE,
        [("allegro.order_events", run_id, json.dumps(run).encode())],
    )
    orders = await erp.wait_for("order.created", 2)
    assert sorted(o["checkout_form_id"] for o in orders) == sorted([forms[0]["id"], forms[2]["id"]])

    async def dead_lettered() -> list[aio_pika.abc.AbstractIncomingMessage] | None:
        letters = await drain_queue(amqp_url, DEAD_LETTER_QUEUE, wait=0.2)
        return letters or None

    [letter] = await eventually(dead_lettered)
    assert letter.message_id == f"order-event:{account['id']}:run-1"
    headers = letter.headers or {}
    assert headers["x-split-from"] == run_id
    assert "checkout form has no buyer.id" in str(headers["x-error"])
    assert json.loads(letter.body)["event"]["order"]["checkoutForm"]["id"] == forms[1]["id"]
    await erp.settle()
    assert len(erp.of("order.created")) == 2
    stored = await db.fetch("SELECT checkout_form_id FROM orders")
    assert {str(r["checkout_form_id"]) for r in stored} == {forms[0]["id"], forms[2]["id"]}


@pytest.mark.parametrize(
    ("buyer", "tax_id", "nip"),
    [
        (
            {"tax_ids": [{"type": "PL_NIP", "value": "521-300-37-00"}]},
            {"type": "PL_NIP", "value": "5213003700"},
            "5213003700",
        ),
        (
            {"country": "DE", "tax_ids": [{"type": "VAT_EU", "value": "DE 123 456 789"}]},
            {"type": "VAT_EU", "value": "DE123456789"},
            "DE123456789",
        ),
        (
            {
                "country": "CZ",
                "tax_ids": [
                    {"type": "CZ_ICO", "value": "12345678"},
                    {"type": "CZ_DIC", "value": "CZ12345678"},
                ],
            },
            {"type": "CZ_DIC", "value": "CZ12345678"},
            "CZ12345678",
        ),
        (
            {"country": "SK", "tax_ids": [{"type": "SK_IC_DPH", "value": "SK2020123456"}]},
            {"type": "SK_IC_DPH", "value": "SK2020123456"},
            "SK2020123456",
        ),
        (
            {"country": "HU", "tax_ids": [{"type": "HU_ADOSZAM", "value": "12345678-1-42"}]},
            {"type": "HU_ADOSZAM", "value": "12345678142"},
            "12345678142",
        ),
        # no typed id: the deprecated taxId, cleaned of its label
        (
            {"tax_ids": [], "nip": None, "tax_id_text": "NIP: 521-300-37-00"},
            {"type": "PL_NIP", "value": "5213003700"},
            "5213003700",
        ),
    ],
)
async def test_each_tax_id_type_reaches_the_erp_with_its_type(
    admin: Admin,
    emulator: Emulator,
    db: asyncpg.Pool,
    erp: Erp,
    buyer: dict[str, Any],
    tax_id: dict[str, str],
    nip: str,
) -> None:
    _, _, offers = await _shop(
        admin, emulator, db, auto_create_orders=True, send_customer_card=True
    )
    await _buy(emulator, offers[0], company="Firma", invoice=True, **buyer)
    [order] = await erp.wait_for("order.created")
    assert order["customer"]["tax_id"] == tax_id
    assert order["customer"]["nip"] == nip


@pytest.mark.parametrize("kind", ["html", "empty", "truncated"])
async def test_answers_that_are_not_allegros_json_are_retried_and_lose_nothing(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, erp: Erp, kind: str
) -> None:
    """AA#12097: the API answered with an HTML CAPTCHA page instead of JSON. A 200 like that on
    a checkout form is "Allegro unavailable" and retried, not "no such form" (which dropped
    the order before), as on the journal it is not "no events"."""
    _, _, offers = await _shop(admin, emulator, db, auto_create_orders=True)
    # the next reads of the forms get a 200 that is not Allegro's JSON
    await emulator.control(
        "POST",
        "/faults",
        {"paths": ["/order/checkout-forms"], "not_json_count": 6, "not_json_kind": kind},
    )
    form_id = await _buy(emulator, offers[0])
    [order] = await erp.wait_for("order.created", timeout=30)
    assert order["checkout_form_id"] == form_id
    await erp.settle()
    assert len(erp.of("order.created")) == 1
    assert await db.fetchval("SELECT count(*) FROM orders") == 1


async def test_an_order_carries_what_the_erp_needs_to_book_it(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, erp: Erp
) -> None:
    """Issue 13 item 4: from a form that has them all (a parcel locker with Smart, a coupon, a
    voucher, a reduced tax rate, a surcharge, a company invoice with typed tax ids, the buyer's
    message), order.created carries each as the form gives it."""
    _, _, offers = await _shop(admin, emulator, db, auto_create_orders=True)
    bought = await emulator.control(
        "POST",
        "/purchases",
        {
            "offer_id": offers[0],
            "quantity": 3,
            "payment_type": "ONLINE",
            "buyer": {
                "company": "Hurtownia Max Sp. z o.o.",
                "invoice": True,
                "pickup_point": True,
                "vat_payer_status": "ACTIVE",
                "tax_ids": [{"type": "PL_NIP", "value": "521-300-37-00"}],
            },
            "message_to_seller": "Proszę o fakturę na firmę",
            "tax": {"rate": "8.00", "subject": "GOODS", "exemption": None},
            "discount": {"type": "COUPON", "amount": "2.00"},
            "voucher": {"code": "SZKOLA2026", "value": "15.00"},
            "surcharge": "4.50",
            "then": "pay",
        },
    )
    form_id = bought["checkout_form_id"]
    [order] = await erp.wait_for("order.created")
    form = await emulator.control("GET", f"/checkout-forms/{form_id}")
    assert order["checkout_form_id"] == form_id

    [item] = form["lineItems"]
    [line] = order["lines"]
    assert line["line_item_id"] == item["id"]
    assert line["tax"] == item["tax"] == {"rate": "8.00", "subject": "GOODS", "exemption": None}
    assert line["discounts"] == item["discounts"] == [{"type": "COUPON"}]
    [voucher] = item["vouchers"]
    assert line["vouchers"] == [
        {
            "code": "SZKOLA2026",
            "type": voucher["type"],
            "status": voucher["status"],
            "value": {"amount": "15.00", "currency": "PLN"},
            "external_transaction_id": voucher["externalTransactionId"],
        }
    ]
    assert line["unit_price"] == item["price"]["amount"] == "17.99"  # what the buyer paid
    assert line["original_unit_price"] == item["originalPrice"]["amount"] == "19.99"
    assert line["paid"] == "53.97" and line["currency"] == "PLN"

    assert order["total_to_pay"] == form["summary"]["totalToPay"]
    assert order["total"] == form["summary"]["totalToPay"]["amount"]
    assert order["message_to_seller"] == "Proszę o fakturę na firmę"
    assert order["phone_number"] == form["buyer"]["phoneNumber"] is not None

    delivery, sent = form["delivery"], order["delivery"]
    assert sent["method_id"] == delivery["method"]["id"]
    assert sent["method_name"] == sent["method"] == "Allegro Paczkomaty InPost"
    assert sent["pickup_point"] == delivery["pickupPoint"] and sent["pickup_point"]["id"]
    assert sent["smart"] is True
    assert sent["time"] == {
        "from": delivery["time"]["from"],
        "to": delivery["time"]["to"],
        "dispatch": delivery["time"]["dispatch"],
    }
    assert sent["number_of_packages"] == delivery["calculatedNumberOfPackages"] == 1

    address = form["invoice"]["address"]
    assert order["invoice"] == {
        "required": True,
        "address": {
            "street": address["street"],
            "city": address["city"],
            "zip_code": address["zipCode"],
            "country_code": "PL",
            "company": {
                "name": "Hurtownia Max Sp. z o.o.",
                "tax_ids": [{"type": "PL_NIP", "value": "521-300-37-00"}],
                "vat_payer_status": "ACTIVE",
            },
            "natural_person": None,
        },
        "due_date": None,
    }
    [surcharge] = form["surcharges"]
    assert order["surcharges"] == [
        {
            "id": surcharge["id"],
            "type": "ONLINE",
            "provider": "P24",
            "paid_at": surcharge["finishedAt"],
            "amount": "4.50",
            "currency": "PLN",
        }
    ]


async def test_fields_the_form_lacks_are_null_and_redelivery_gives_one_order(
    admin: Admin, emulator: Emulator, db: asyncpg.Pool, erp: Erp, amqp_url: str
) -> None:
    """A bare form (no tax, discounts, vouchers, invoice, delivery, surcharges, message, phone)
    gives nulls and empty lists, never a failure; the same event delivered twice is one
    order.created."""
    _, account, offers = await _shop(admin, emulator, db, auto_create_orders=True)
    form = _form(str(uuid.uuid4()), offers[0], "b-1")
    now = datetime.now(UTC).isoformat()
    event = {
        "account_id": account["id"],
        "event": {
            "id": "bare-1",
            "occurredAt": now,
            "type": "READY_FOR_PROCESSING",
            "order": {
                "checkoutForm": {"id": form["id"]},
                "lineItems": [{"offer": {"id": offers[0]}}],
            },
        },
        "form": form,
        "form_read_at": now,
    }
    body = json.dumps(event).encode()
    await publish_json(
        amqp_url,
        JOURNAL_EXCHANGE,
        [("allegro.order_event", "bare-event", body), ("allegro.order_event", "bare-event", body)],
    )
    [order] = await erp.wait_for("order.created")
    assert order["checkout_form_id"] == form["id"]
    assert order["total_to_pay"] == {"amount": "19.99", "currency": "PLN"}
    for field in ("message_to_seller", "invoice", "phone_number"):
        assert order[field] is None, field
    assert order["surcharges"] == []
    assert order["delivery"] == {
        "method": None,
        "cost": None,
        "address": None,
        "pickup_point": None,
        "method_id": None,
        "method_name": None,
        "smart": None,
        "time": None,
        "number_of_packages": None,
    }
    [line] = order["lines"]
    assert line["tax"] is None and line["original_unit_price"] is None
    assert line["discounts"] == [] and line["vouchers"] == []
    assert line["paid"] == "19.99" and line["unit_price"] == "19.99"

    # the same event again under a new message id, and the form read again from the journal:
    # still one order.created
    await publish_json(amqp_url, JOURNAL_EXCHANGE, [("allegro.order_event", "bare-again", body)])

    async def seen_again() -> bool:
        return bool(await db.fetchval("SELECT true FROM inbox WHERE message_id = 'bare-again'"))

    await eventually(seen_again)
    await erp.settle()
    assert len(erp.of("order.created")) == 1
