"""Listing offers from ERP products (issue 17 item 2): ``offer.list`` in, ``POST
/sale/product-offers`` on the emulator, the offer in the mirror bound to its product, and
``offer.listed`` / ``offer.list_failed`` out; the admin API ``POST /offers`` and the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from typing import Any

import aiohttp
import asyncpg
import pytest

from allegro_sync.adapters.broker.topology import ERP_EXCHANGE
from allegro_sync.daemon.app import Daemon
from tests.e2e.conftest import FAST_POLLING, Admin, Emulator, daemon_settings
from tests.e2e.flows import (
    Erp,
    _dead_letters,
    commands,
    emulator_offer,
    erp,
    price_changed,
    settled,
    stock_changed,
    switch,
)
from tests.helpers import ADMIN_TOKEN, SECRET_KEY, eventually, publish_json

GTIN = "5901234123457"  # in the emulator's catalogue: a phone, category 165
UNKNOWN_GTIN = "5909990001112"
GPSR: dict[str, Any] = {
    "responsible_producer_id": "b7f1c0de-0000-4000-8000-000000000001",
    "safety_information": {"type": "TEXT", "description": "Chronić przed wilgocią."},
}
CONDITION = [{"id": "11323", "name": None, "values": ["Nowy"]}]


async def product(
    daemon: Daemon, db: asyncpg.Pool, product_id: str, ean: str | None, **fields: Any
) -> None:
    """The ERP announces a product with listing data; wait until it is stored."""
    body = {"product_id": product_id, "ean": ean, "name": f"Produkt testowy {product_id}"}
    body.update(GPSR)
    body["parameters"] = CONDITION
    body.update(fields)
    message_id = f"product:{product_id}:{json.dumps(body, sort_keys=True)}"[:200]
    await publish_json(
        daemon.settings.amqp_url,
        ERP_EXCHANGE,
        [("product.upserted", message_id, json.dumps(body).encode())],
    )

    async def stored() -> bool:
        return bool(await db.fetchval("SELECT true FROM inbox WHERE message_id = $1", message_id))

    await eventually(stored)


async def shop(
    admin: Admin, emulator: Emulator, login: str, **settings: Any
) -> tuple[dict[str, Any], int]:
    seller = await emulator.seller(login)
    account_id = int((await admin.connect(emulator, seller))["id"])
    address = {"city": "Kraków", "post_code": "30-001", "country_code": "PL"}
    await switch(admin, account_id, address=address, **settings)
    return seller, account_id


def offer_list(product_id: str, account_id: int, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "product_id": product_id,
        "account_id": account_id,
        "price": "149.99",
        "currency": "PLN",
        "quantity": 7,
        "category_id": None,
        "publish": True,
    }
    body.update(over)
    return body


async def send(daemon: Daemon, body: dict[str, Any], message_id: str) -> None:
    await publish_json(
        daemon.settings.amqp_url,
        ERP_EXCHANGE,
        [("offer.list", message_id, json.dumps(body).encode())],
    )


async def listing(db: asyncpg.Pool, product_id: str, *states: str) -> asyncpg.Record:
    async def done() -> Any:
        row = await db.fetchrow("SELECT * FROM listings WHERE product_id = $1", product_id)
        return row if row is not None and row["state"] in states else None

    found: asyncpg.Record = await eventually(done, timeout=30, interval=0.2)
    return found


async def test_a_product_is_listed_active_with_the_account_defaults(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    seller, account_id = await shop(admin, emulator, "sklep-wystaw")
    options = await admin.call("GET", f"/accounts/{account_id}/options")
    assert options[0] == 200, options
    rates = options[1]["shipping_rates"][1]["id"]  # not the "default" one Allegro would pick
    policy = options[1]["return_policies"][1]["id"]
    await switch(
        admin,
        account_id,
        shipping_rates_id=rates,
        after_sales={"return_policy_id": policy},
        default_category_id="66",
    )
    await product(
        daemon,
        db,
        "P1",
        GTIN,
        description="Kubek na kawę.\n\nPojemność 300 ml <i>i więcej</i>.",
        images=["https://img.example/p1-a.jpg", "https://img.example/p1-b.jpg"],
        tax_settings={"rates": [{"rate": "23.00", "country_code": "PL"}], "subject": "GOODS"},
    )
    erp_side = Erp(daemon.settings.amqp_url)
    await send(daemon, offer_list("P1", account_id), "list-P1")
    [listed] = await erp_side.wait_for("offer.listed")
    assert listed["account_id"] == account_id and listed["product_id"] == "P1"
    assert listed["status"] in ("ACTIVE", "ACTIVATING")
    on_allegro = await emulator_offer(emulator, listed["offer_id"])
    assert on_allegro["seller_id"] == seller["id"]
    assert on_allegro["price"] == "149.99" and on_allegro["stock"] == 7
    assert on_allegro["ean"] == GTIN and on_allegro["external_id"] == "P1"
    # A6: the account's conditions, rates and address; A7: its default category
    assert on_allegro["details"]["shipping_rates_id"] == rates
    assert on_allegro["details"]["after_sales"]["returnPolicy"] == {"id": policy}
    assert on_allegro["details"]["location"]["city"] == "Kraków"
    assert on_allegro["category_id"] == "66"
    details = on_allegro["details"]
    assert details["images"] == ["https://img.example/p1-a.jpg", "https://img.example/p1-b.jpg"]
    assert "300 ml" in json.dumps(details["description"], ensure_ascii=False)
    assert details["tax_settings"]["rates"] == [{"rate": "23.00", "countryCode": "PL"}]
    assert details["responsible_producer"] == {"type": "ID", "id": GPSR["responsible_producer_id"]}
    mirrored = await db.fetchrow("SELECT * FROM offers WHERE id = $1", listed["offer_id"])
    assert mirrored["product_id"] == "P1" and mirrored["sync_price"] is True
    assert mirrored["ean"] == GTIN
    codes = await db.fetch(
        "SELECT code FROM event_log WHERE account_id = $1 AND code = 'offer_listed'", account_id
    )
    assert len(codes) == 1


async def test_a_draft_stays_inactive_and_the_product_category_wins_over_the_default(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    _, account_id = await shop(admin, emulator, "sklep-szkic", default_category_id="66")
    await product(daemon, db, "P2", GTIN, category_id="165")
    erp_side = Erp(daemon.settings.amqp_url)
    await send(daemon, offer_list("P2", account_id, publish=False), "list-P2")
    [listed] = await erp_side.wait_for("offer.listed")
    assert listed["status"] == "INACTIVE"
    on_allegro = await emulator_offer(emulator, listed["offer_id"])
    assert on_allegro["status"] == "INACTIVE" and on_allegro["category_id"] == "165"


async def test_the_same_request_twice_lists_one_offer(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    seller, account_id = await shop(admin, emulator, "sklep-dwa-razy")
    await product(daemon, db, "P3", GTIN)
    body = offer_list("P3", account_id)
    await send(daemon, body, "list-P3-a")
    await send(daemon, body, "list-P3-a")  # redelivered
    await send(daemon, body, "list-P3-b")  # sent again under another id
    await listing(db, "P3", "listed")
    status, again = await admin.call("POST", "/offers", body)
    assert status == 200 and again["state"] == "listed"
    erp_side = Erp(daemon.settings.amqp_url)
    await erp_side.settle()
    assert len(erp_side.of("offer.listed")) == 1
    received = await emulator.control("GET", "/requests")
    assert received["by_path"].get("POST /sale/product-offers") == 1, received
    offers_of_seller = [
        o for o in (await db.fetch("SELECT id FROM offers WHERE account_id = $1", account_id))
    ]
    assert len(offers_of_seller) == 1
    del seller


async def test_a_crash_after_the_post_finds_the_offer_instead_of_listing_again(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    _, account_id = await shop(admin, emulator, "sklep-awaria")
    await product(daemon, db, "P4", GTIN)
    await send(daemon, offer_list("P4", account_id), "list-P4")
    row = await listing(db, "P4", "listed")
    # as if the answer to the POST was lost: the row still says "posting"
    await db.execute(
        "UPDATE listings SET state = 'posting', offer_id = NULL, operation_path = NULL,"
        " due_at = now(), claimed_until = NULL WHERE id = $1",
        row["id"],
    )
    again = await listing(db, "P4", "listed")
    assert again["offer_id"] == row["offer_id"]
    received = await emulator.control("GET", "/requests")
    assert received["by_path"].get("POST /sale/product-offers") == 1, received


async def test_missing_parameters_are_refused_with_allegros_text(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    _, account_id = await shop(admin, emulator, "sklep-braki")
    await product(daemon, db, "P5", GTIN, parameters=[], responsible_producer_id=None)
    erp_side = Erp(daemon.settings.amqp_url)
    await send(daemon, offer_list("P5", account_id), "list-P5")
    [failed] = await erp_side.wait_for("offer.list_failed")
    assert failed["product_id"] == "P5" and failed["account_id"] == account_id
    codes = {e["code"] for e in failed["errors"]}
    assert codes == {"MissingRequiredParameters", "ResponsibleProducerRequiredException"}
    assert any("Stan" in e["message"] for e in failed["errors"])
    assert failed["trace_id"]
    logged = await db.fetchval(
        "SELECT message FROM event_log WHERE account_id = $1 AND code = 'offer_list_failed'",
        account_id,
    )
    assert "Stan" in logged
    assert await db.fetchval("SELECT count(*) FROM offers WHERE account_id = $1", account_id) == 0
    # fixed in the ERP and asked again: listed
    await product(daemon, db, "P5", GTIN)
    await send(daemon, offer_list("P5", account_id), "list-P5-again")
    await erp_side.wait_for("offer.listed")


async def test_an_unknown_ean_is_proposed_from_the_erp_data_or_refused(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    _, account_id = await shop(admin, emulator, "sklep-nowy-produkt")
    erp_side = Erp(daemon.settings.amqp_url)
    # without images there is no proposal to make: Allegro's refusal stands
    await product(daemon, db, "P6", UNKNOWN_GTIN, category_id="5501")
    await send(daemon, offer_list("P6", account_id), "list-P6")
    [failed] = await erp_side.wait_for("offer.list_failed")
    assert [e["code"] for e in failed["errors"]] == ["ProductNotFoundException"]
    # with name, category, parameters and images: a proposal, listed
    await product(
        daemon,
        db,
        "P6",
        UNKNOWN_GTIN,
        category_id="5501",
        images=["https://img.example/p6.jpg"],
        parameters=[*CONDITION, {"id": "248811", "name": None, "values": ["Kubix"]}],
    )
    await send(daemon, offer_list("P6", account_id), "list-P6-again")
    [listed] = await erp_side.wait_for("offer.listed")
    on_allegro = await emulator_offer(emulator, listed["offer_id"])
    assert on_allegro["details"]["product_status"] == "PROPOSED"
    assert on_allegro["ean"] == UNKNOWN_GTIN


async def test_a_listed_offer_follows_stock_and_price_through_the_batcher(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    seller, account_id = await shop(
        admin, emulator, "sklep-potem", stock_control=True, sync_prices=True, price_list="default"
    )
    await product(daemon, db, "P7", GTIN)
    await send(daemon, offer_list("P7", account_id, quantity=20), "list-P7")
    row = await listing(db, "P7", "listed")
    await erp(daemon, db, stock_changed("P7", 3, 1), price_changed("P7", "129.00", 1))
    await settled(daemon, db)
    kinds = sorted(c["kind"] for c in await commands(emulator, seller))
    assert kinds == ["price", "quantity"]
    on_allegro = await emulator_offer(emulator, row["offer_id"])
    assert on_allegro["stock"] == 3 and on_allegro["price"] == "129.00"


async def test_admin_api_lists_and_refuses_bad_input(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    _, account_id = await shop(admin, emulator, "sklep-api")
    await product(daemon, db, "P8", GTIN)
    status, body = await admin.call("POST", "/offers", offer_list("P8", account_id))
    assert status == 202 and body["state"] == "pending", body
    row = await listing(db, "P8", "listed")
    status, body = await admin.call("POST", "/offers", offer_list("P8", account_id))
    assert status == 200 and body["offer_id"] == row["offer_id"]
    status, read = await admin.call("GET", f"/offers/listings/{body['id']}")
    assert status == 200 and (read["state"], read["offer_id"]) == ("listed", row["offer_id"])
    for missing in ("999999", "abc", "99999999999999999999"):
        status, err = await admin.call("GET", f"/offers/listings/{missing}")
        assert status == 404 and err["error"] == "not_found", (missing, err)
    for bad, field in (
        (offer_list("P8", account_id, price=149.99), "price"),
        (offer_list("P8", account_id, quantity=-1), "quantity"),
        (offer_list("P8", account_id, publish="yes"), "publish"),
        ({"product_id": "P8"}, "account_id"),
    ):
        status, err = await admin.call("POST", "/offers", bad)
        assert status == 422 and err["field"] == field, (bad, err)
    status, err = await admin.call("POST", "/offers", offer_list("nope", account_id))
    assert status == 422 and "no product" in err["detail"]
    status, err = await admin.call("POST", "/offers", offer_list("P8", 999_999))
    assert status == 422 and "no account" in err["detail"]
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            admin.url + "/offers",
            data=b"{not json",
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        ) as r,
    ):
        assert r.status == 400


async def test_a_bad_offer_list_is_dead_lettered_at_once(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    _, account_id = await shop(admin, emulator, "sklep-zle")
    await product(daemon, db, "P9", None)  # no EAN
    await send(daemon, offer_list("P9", account_id), "list-P9")
    await send(daemon, offer_list("P9", account_id, price="abc"), "list-P9-bad")
    errors = await _dead_letters(daemon.settings.amqp_url, 2)
    assert any("no EAN" in e for e in errors), errors
    assert await db.fetchval("SELECT count(*) FROM listings") == 0


@pytest.mark.parametrize("switched_emulator", [{"create_offer_async": False}], indirect=True)
async def test_a_201_is_listed_without_an_operation(
    switched_emulator: Emulator, database_url: str, amqp_url: str, db: asyncpg.Pool
) -> None:
    running = Daemon(
        daemon_settings(database_url, amqp_url, switched_emulator.url), poller_timing=FAST_POLLING
    )
    await running.start()
    try:
        async with aiohttp.ClientSession() as session:
            admin = Admin(running, session)
            _, account_id = await shop(admin, switched_emulator, "sklep-201")
            await product(running, db, "P10", GTIN)
            await admin.call("POST", "/offers", offer_list("P10", account_id))
            row = await listing(db, "P10", "listed")
            assert row["operation_path"] is None
            received = await switched_emulator.control("GET", "/requests")
            assert not any("/operations/" in k for k in received["by_path"]), received
    finally:
        await running.stop()


async def test_a_202_is_followed_on_the_offer_list_without_reading_the_operation(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    _, account_id = await shop(admin, emulator, "sklep-202")
    await product(daemon, db, "P11", GTIN)
    await product(daemon, db, "P11b", "5901234123457")
    await admin.call("POST", "/offers", offer_list("P11", account_id))
    await admin.call("POST", "/offers", offer_list("P11b", account_id, publish=False))
    row = await listing(db, "P11", "listed")
    draft = await listing(db, "P11b", "listed")
    assert row["operation_path"].startswith(f"/sale/product-offers/{row['offer_id']}/operations/")
    assert (row["offer_status"], draft["offer_status"]) == ("ACTIVE", "INACTIVE")
    received = await emulator.control("GET", "/requests")
    by_path = received["by_path"]
    assert not any("/operations/" in k for k in by_path), by_path
    assert by_path["POST /sale/product-offers"] == 2
    # what Allegro shows is what the mirror holds
    mirrored = await db.fetchrow(
        "SELECT status, stock, price FROM offers WHERE id = $1", row["offer_id"]
    )
    assert mirrored["status"] == "ACTIVE"


@pytest.mark.parametrize("clocked_emulator", [{"frozen_clock": True}], indirect=True)
async def test_an_offer_the_list_does_not_show_done_has_its_operation_read(
    clocked_emulator: Emulator, database_url: str, amqp_url: str, db: asyncpg.Pool
) -> None:
    emulator = clocked_emulator
    running = Daemon(
        daemon_settings(database_url, amqp_url, emulator.url), poller_timing=FAST_POLLING
    )
    await running.start()
    try:
        async with aiohttp.ClientSession() as session:
            admin = Admin(running, session)
            _, account_id = await shop(admin, emulator, "sklep-wolny")
            await product(running, db, "P40", GTIN)
            await admin.call("POST", "/offers", offer_list("P40", account_id))
            # the emulated clock stands still: the offer stays ACTIVATING, the operation running
            for _ in range(300):
                received = await emulator.control("GET", "/requests")
                if any("/operations/" in k for k in received["by_path"]):
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError(f"the operation was never read: {received}")
            looks = received["by_path"]["GET /sale/offers"]
            assert looks >= 4, received
            state = await db.fetchval("SELECT state FROM listings WHERE product_id = 'P40'")
            assert state == "following"
            await emulator.control("POST", "/clock", {"advance_seconds": 5})
            row = await listing(db, "P40", "listed")
            assert row["offer_status"] == "ACTIVE"
    finally:
        await running.stop()


async def test_cli_dry_run_prints_the_request_and_the_cli_lists(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    _, account_id = await shop(admin, emulator, "sklep-cli")
    await product(daemon, db, "P12", GTIN, image_url="http://erp.local/p12.jpg")
    env = cli_env(daemon)
    args = [sys.executable, "-m", "allegro_sync.daemon.cli", "offers", "list", "P12"]
    dry = await run(
        [*args, "--account", str(account_id), "--dry-run", "--price", "10.50", "--quantity", "2"],
        env,
    )
    assert dry.returncode == 0, dry.stderr
    body = json.loads(dry.stdout)
    assert body["productSet"][0]["product"] == {"id": GTIN, "idType": "GTIN"}
    assert body["sellingMode"]["price"] == {"amount": "10.50", "currency": "PLN"}
    assert body["location"]["city"] == "Kraków"
    assert await db.fetchval("SELECT count(*) FROM listings") == 0
    missing = await run([*args, "--account", str(account_id)], env)
    assert missing.returncode != 0 and "give --price" in missing.stderr
    unknown = await run([*args, "--account", "999999", "--price", "1"], env)
    assert unknown.returncode != 0 and len(unknown.stderr.strip().splitlines()) == 1
    done = await run(
        [*args, "--account", str(account_id), "--price", "10.50", "--quantity", "2"], env
    )
    assert done.returncode == 0, done.stderr
    row = await listing(db, "P12", "listed")
    assert row["offer_id"] in done.stdout
    on_allegro = await emulator_offer(emulator, row["offer_id"])
    # the http link was uploaded through POST /sale/images first
    assert on_allegro["image_url"].startswith("https://a.allegroimg.com/")


def cli_env(daemon: Daemon) -> dict[str, str]:
    settings = daemon.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALLEGRO_SYNC_")}
    env.update(
        {
            "ALLEGRO_SYNC_DATABASE_URL": settings.database_url,
            "ALLEGRO_SYNC_AMQP_URL": settings.amqp_url,
            "ALLEGRO_SYNC_ALLEGRO_API_URL": settings.api_url(False),
            "ALLEGRO_SYNC_ALLEGRO_AUTH_URL": settings.auth_url(False),
            "ALLEGRO_SYNC_CLIENT_ID": "demo-client",
            "ALLEGRO_SYNC_CLIENT_SECRET": "demo-secret",
            "ALLEGRO_SYNC_SECRET_KEY": SECRET_KEY,
            "ALLEGRO_SYNC_ADMIN_TOKEN": ADMIN_TOKEN,
        }
    )
    return env


async def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run, args, env=env, capture_output=True, text=True, timeout=120, check=False
    )


async def test_a_sandbox_account_lists_in_the_sandbox(
    daemon: Daemon,
    admin: Admin,
    emulator: Emulator,
    sandbox_emulator: Emulator,
    db: asyncpg.Pool,
) -> None:
    seller = await sandbox_emulator.seller("sklep-piaskownica", sandbox=True)
    account_id = int((await admin.connect(sandbox_emulator, seller, sandbox=True))["id"])
    address = {"city": "Poznań", "post_code": "60-166", "country_code": "PL"}
    await switch(admin, account_id, address=address)
    await product(daemon, db, "P13", GTIN)
    await admin.call("POST", "/offers", offer_list("P13", account_id))
    row = await listing(db, "P13", "listed")
    on_sandbox = await emulator_offer(sandbox_emulator, row["offer_id"])
    assert on_sandbox["seller_id"] == seller["id"]
    production = await emulator.control("GET", "/requests")
    assert "POST /sale/product-offers" not in production["by_path"]


async def test_a_429_from_allegro_is_waited_out_and_one_offer_is_listed(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    _, account_id = await shop(admin, emulator, "sklep-limit")
    await product(daemon, db, "P14", GTIN)
    await emulator.control(
        "POST", "/faults", {"paths": ["/sale/product-offers"], "status_429_seconds": 2}
    )
    await admin.call("POST", "/offers", offer_list("P14", account_id))
    row = await listing(db, "P14", "listed")
    assert row["attempts"] >= 2
    received = await emulator.control("GET", "/requests")
    assert received["by_path"]["POST /sale/product-offers"] >= 2
    assert await db.fetchval("SELECT count(*) FROM offers WHERE account_id = $1", account_id) == 1
    assert len((await emulator.control("GET", f"/offers/{row['offer_id']}"))["id"]) > 0


async def test_an_account_switched_off_lists_nothing(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    _, account_id = await shop(admin, emulator, "sklep-wylaczony")
    await product(daemon, db, "P15", GTIN)
    await switch(admin, account_id, active=False)
    erp_side = Erp(daemon.settings.amqp_url)
    await send(daemon, offer_list("P15", account_id), "list-P15")
    [failed] = await erp_side.wait_for("offer.list_failed")
    assert [e["code"] for e in failed["errors"]] == ["allegro_sync.account_inactive"]
    received = await emulator.control("GET", "/requests")
    assert "POST /sale/product-offers" not in received["by_path"]
