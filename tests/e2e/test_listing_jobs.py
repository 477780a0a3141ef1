"""Listing many products (issue 17 item 3): every product with an EAN and no offer on the
account, as a job whose progress can be read; a dry run changes nothing; a daemon stopped in
the middle of a job goes on where it stopped after a restart, listing nothing twice."""

from __future__ import annotations

import io
import json
from collections import Counter
from typing import Any

import aiohttp
import asyncpg

from allegro_sync.adapters.broker.topology import ERP_EXCHANGE
from allegro_sync.daemon.app import Daemon
from allegro_sync.daemon.cli_listing_jobs import list_all_unlisted
from tests.e2e.conftest import FAST_POLLING, Admin, Emulator, daemon_settings
from tests.helpers import eventually, publish_json

CATEGORY = "165"
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


def gtin(n: int) -> str:
    body = f"590{n:09d}"
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
    return body + str((10 - total % 10) % 10)


async def shop(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool, count: int, login: str
) -> tuple[dict[str, Any], int]:
    """A seller whose catalogue has ``count`` products, the ERP's copies of them with prices
    and stock, one more without a price and one without an EAN."""
    seller = await emulator.seller(login)
    account_id = int((await admin.connect(emulator, seller))["id"])
    status, body = await admin.call("PATCH", f"/accounts/{account_id}", ACCOUNT)
    assert status == 200, body
    await emulator.control(
        "POST",
        "/products",
        {
            "products": [
                {"gtin": gtin(n), "name": f"Kubek ceramiczny numer {n}", "category_id": CATEGORY}
                for n in range(count + 1)
            ]
        },
    )
    messages = []
    for n in range(count + 2):
        pid = f"P{n:04d}"
        ean = gtin(n) if n <= count else None
        product = {"product_id": pid, "ean": ean, "name": f"Kubek ceramiczny {n}", **LISTABLE}
        messages.append(("product.upserted", f"product:{pid}", product))
        if n != count:  # product ``count`` has no price
            price = {"product_id": pid, "price_list": "default", "price": "19.99", "version": 1}
            messages.append(("price.changed", f"price:{pid}", {**price, "currency": "PLN"}))
        stock = {"product_id": pid, "quantity": 3, "version": 1}
        messages.append(("stock.changed", f"stock:{pid}", stock))
    await publish_json(
        daemon.settings.amqp_url,
        ERP_EXCHANGE,
        [(key, mid, json.dumps(body).encode()) for key, mid, body in messages],
    )

    async def stored() -> bool:
        return bool(await db.fetchval("SELECT count(*) FROM inbox") >= len(messages))

    await eventually(stored, timeout=30)
    return seller, account_id


async def seller_offers(emulator: Emulator, seller: dict[str, Any]) -> list[dict[str, Any]]:
    state = await emulator.control("GET", f"/sellers/{seller['id']}/offers")
    return list(state["offers"])


async def job_done(admin: Admin, job_id: int, timeout: float = 60) -> dict[str, Any]:
    async def done() -> Any:
        status, job = await admin.call("GET", f"/offers/listing-jobs/{job_id}")
        assert status == 200, job
        return job if job["state"] == "done" else None

    found: dict[str, Any] = await eventually(done, timeout=timeout, interval=0.3)
    return found


async def test_a_job_lists_every_unlisted_product_once(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    seller, account_id = await shop(daemon, admin, emulator, db, 12, "many")
    status, dry = await admin.call(
        "POST", "/offers/listing-jobs", {"account_id": account_id, "dry_run": True}
    )
    assert status == 200, dry
    assert (dry["total"], dry["would_list"], dry["would_skip"]) == (13, 12, 1)
    assert await seller_offers(emulator, seller) == []

    status, job = await admin.call("POST", "/offers/listing-jobs", {"account_id": account_id})
    assert status == 202, job
    assert (job["total"], job["skipped"]) == (13, 1)
    job = await job_done(admin, job["id"])
    assert (job["listed"], job["failed"], job["skipped"], job["pending"]) == (12, 0, 1, 0)
    assert job["failures"] == [
        {"product_id": "P0012", "skipped": "no price on the account's price list", "errors": None}
    ]
    offers = await seller_offers(emulator, seller)
    assert sorted(o["ean"] for o in offers) == sorted(gtin(n) for n in range(12))
    assert {o["status"] for o in offers} <= {"ACTIVE", "ACTIVATING"}

    # A second job finds nothing left to list (the offers are bound to their products).
    status, again = await admin.call("POST", "/offers/listing-jobs", {"account_id": account_id})
    assert status == 202 and again["total"] == 1 and again["skipped"] == 1
    assert len(await seller_offers(emulator, seller)) == 12
    status, listed = await admin.call("GET", f"/offers/listing-jobs?account_id={account_id}")
    assert status == 200 and [j["id"] for j in listed["items"]] == [again["id"], job["id"]]


async def test_the_cli_shows_the_job_to_its_end(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    seller, account_id = await shop(daemon, admin, emulator, db, 5, "cli")
    assert daemon.pool is not None
    out, err = io.StringIO(), io.StringIO()
    code = await list_all_unlisted(daemon.pool, account_id, dry_run=True, out=out, err=err)
    assert code == 0 and "5 products with an EAN and no offer would be listed" in out.getvalue()
    out = io.StringIO()
    code = await list_all_unlisted(
        daemon.pool, account_id, dry_run=False, out=out, err=err, poll_interval=0.1
    )
    assert code == 1  # one product was skipped (no price)
    assert "5 listed, 0 refused, 1 skipped of 6" in out.getvalue()
    assert len(await seller_offers(emulator, seller)) == 5


async def test_a_stopped_daemon_resumes_the_job_without_listing_anything_twice(
    database_url: str, amqp_url: str, emulator: Emulator, db: asyncpg.Pool
) -> None:
    count = 40
    settings = daemon_settings(database_url, amqp_url, emulator.url)
    first = Daemon(settings, poller_timing=FAST_POLLING)
    await first.start()
    try:
        async with aiohttp.ClientSession() as http:
            admin = Admin(first, http)
            seller, account_id = await shop(first, admin, emulator, db, count, "resume")
            # Allegro takes a second for each listing: the job runs when the daemon stops.
            await emulator.control("POST", "/latency", {"groups": {"writes": {"median_ms": 1000}}})
            status, job = await admin.call(
                "POST", "/offers/listing-jobs", {"account_id": account_id}
            )
            assert status == 202, job

            async def some_listed() -> Any:
                _, now = await admin.call("GET", f"/offers/listing-jobs/{job['id']}")
                return now if now["listed"] >= 3 else None

            await eventually(some_listed, timeout=30, interval=0.1)
    finally:
        await first.stop()
    still_open, listed = await progress(db, job["id"])
    assert still_open > 0 and 0 < listed < count  # stopped in the middle of the job

    await emulator.control("POST", "/latency", {"profile": "none"})
    second = Daemon(settings, poller_timing=FAST_POLLING)
    await second.start()
    try:
        async with aiohttp.ClientSession() as http:
            job = await job_done(Admin(second, http), job["id"])
    finally:
        await second.stop()
    assert (job["listed"], job["failed"]) == (count, 0)
    eans = Counter(o["ean"] for o in await seller_offers(emulator, seller))
    assert sorted(eans) == sorted(gtin(n) for n in range(count))
    assert set(eans.values()) == {1}  # none listed twice


async def progress(db: asyncpg.Pool, job_id: int) -> tuple[int, int]:
    """(open, listed) listings of the job, read from the database while no daemon runs."""
    row = await db.fetchrow(
        "SELECT count(*) FILTER (WHERE l.state IN ('pending', 'posting', 'following')) AS open,"
        "       count(*) FILTER (WHERE l.state = 'listed') AS listed"
        "  FROM listing_job_items i JOIN listing_jobs j ON j.id = i.job_id"
        "  JOIN listings l ON l.account_id = j.account_id AND l.product_id = i.product_id"
        " WHERE i.job_id = $1",
        job_id,
    )
    assert row is not None
    return int(row["open"]), int(row["listed"])


async def test_a_cancelled_job_sends_nothing_more(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    count = 40
    seller, account_id = await shop(daemon, admin, emulator, db, count, "cancel")
    # Allegro takes a second for each listing: most of the job is still to send
    await emulator.control("POST", "/latency", {"groups": {"writes": {"median_ms": 1000}}})
    status, job = await admin.call("POST", "/offers/listing-jobs", {"account_id": account_id})
    assert status == 202, job

    status, cancelled = await admin.call("POST", f"/offers/listing-jobs/{job['id']}/cancel")
    assert status == 200, cancelled
    assert cancelled["failed"] > 0, cancelled
    await emulator.control("POST", "/latency", {"profile": "none"})
    done = await job_done(admin, job["id"])
    assert done["listed"] + done["failed"] == count and done["failed"] > 0
    codes = {e["code"] for f in done["failures"] if not f["skipped"] for e in f["errors"]}
    assert codes == {"allegro_sync.cancelled"}
    assert len(await seller_offers(emulator, seller)) == done["listed"]  # nothing more sent
    logged = await db.fetchval(
        "SELECT details->>'cancelled' FROM event_log WHERE code = 'listing_job_cancelled'"
    )
    assert int(logged) == done["failed"]
    status, again = await admin.call("POST", f"/offers/listing-jobs/{job['id']}/cancel")
    assert status == 200 and (again["listed"], again["failed"]) == (done["listed"], done["failed"])
    status, err = await admin.call("POST", "/offers/listing-jobs/999999/cancel")
    assert status == 404 and err["error"] == "not_found"
