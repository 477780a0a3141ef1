"""Offers end to end: the offer journal, the mirror, binding by EAN, the admin API and the
``offers`` CLI against the emulator over HTTP, with real PostgreSQL and RabbitMQ (design.md O3,
O4, P2, S3)."""

from __future__ import annotations

import argparse
import json
from typing import Any

import aiohttp
import asyncpg
import pytest

from allegro_sync.adapters.broker.topology import JOURNAL_EXCHANGE
from allegro_sync.daemon.app import Daemon
from allegro_sync.daemon.cli_offers import run_offers
from tests.e2e.conftest import FAST_POLLING, Admin, Emulator, daemon_settings
from tests.e2e.flows import bound_messages, new_offer, offer, products, switch
from tests.helpers import eventually, publish_json

EAN_MUG = "5901234123457"
EAN_CUP = "5901234123464"
EAN_PAN = "5901234123471"


async def event_log(admin: Admin, account_id: int) -> list[dict[str, Any]]:
    status, body = await admin.call("GET", f"/accounts/{account_id}/event-log?category=offers")
    assert status == 200, body
    entries: list[dict[str, Any]] = body["items"]
    return entries


async def connected(admin: Admin, emulator: Emulator, login: str) -> tuple[dict[str, Any], int]:
    seller = await emulator.seller(login)
    account = await admin.connect(emulator, seller)
    return seller, int(account["id"])


async def test_binding_only_for_events_after_the_switch_on(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    await products(daemon, db, ("P-MUG", EAN_MUG), ("P-CUP", EAN_CUP))
    seller, account_id = await connected(admin, emulator, "sklep-kubki")
    before = await new_offer(emulator, seller, name="Kubek", ean=EAN_MUG, price="19.99")
    quiet = await new_offer(emulator, seller, name="Filiżanka", ean=EAN_CUP)
    # mirrored from its event, but binding is off
    seen = await offer(admin, db, account_id, before, name="Kubek")
    assert seen["product_id"] is None and seen["price"] == "19.99"
    await offer(admin, db, account_id, quiet, name="Filiżanka")

    await switch(admin, account_id, bind_offers_by_ean=True)
    after = await new_offer(emulator, seller, name="Kubek duży", ean=EAN_MUG)
    bound = await offer(admin, db, account_id, after, product_id="P-MUG")
    assert bound["ean"] == EAN_MUG and bound["status"] == "ACTIVE"

    # an event after the switch-on binds the older offer too...
    await emulator.control("POST", f"/offers/{before}/end")
    ended = await offer(admin, db, account_id, before, product_id="P-MUG")
    assert ended["status"] == "ENDED" and ended["ended_at"] is not None
    # ...while an offer with no event since the switch-on stays unbound, as in e-Sale
    status, page = await admin.call("GET", f"/offers?account_id={account_id}&bound=false")
    assert status == 200
    assert [o["id"] for o in page["items"]] == [quiet]

    announced = await bound_messages(daemon)
    assert sorted(m["offer_id"] for m in announced) == sorted([after, before])
    assert {m["product_id"] for m in announced} == {"P-MUG"}
    assert all(m["account_id"] == account_id and m["ean"] == EAN_MUG for m in announced)
    codes = [e["code"] for e in await event_log(admin, account_id)]
    assert codes.count("offer_bound") == 2


async def test_redelivered_events_bind_once_and_announce_once(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    await products(daemon, db, ("P-MUG", EAN_MUG))
    seller, account_id = await connected(admin, emulator, "sklep-powtorki")
    await switch(admin, account_id, bind_offers_by_ean=True)
    offer_id = await new_offer(emulator, seller, name="Kubek", ean=EAN_MUG)
    await offer(admin, db, account_id, offer_id, product_id="P-MUG")

    # the same journal event published again (a poller crash before saving its cursor), and
    # another event of the same offer
    event = {
        "id": "MTAwMA",
        "occurredAt": "2099-01-01T00:00:00.000Z",
        "type": "OFFER_STOCK_CHANGED",
        "offer": {"id": offer_id},
    }
    body = json.dumps({"account_id": account_id, "event": event}).encode()
    # as the poller publishes them: runs of a page's events, re-published under the same id
    run = json.dumps({"account_id": account_id, "events": [event, {**event, "id": "MTAwMg"}]})
    run_id = f"offer-events:{account_id}:MTAwMA:MTAwMg"
    await publish_json(
        daemon.settings.amqp_url,
        JOURNAL_EXCHANGE,
        [
            ("allegro.offer_event", f"offer-event:{account_id}:MTAwMA", body),
            ("allegro.offer_events", run_id, run.encode()),
            ("allegro.offer_event", f"offer-event:{account_id}:MTAwMA", body),
            ("allegro.offer_events", run_id, run.encode()),
            ("allegro.offer_event", f"offer-event:{account_id}:MTAwMQ", body),
        ],
    )

    async def handled() -> bool:
        count = await db.fetchval(
            "SELECT count(*) FROM inbox WHERE message_id LIKE $1",
            f"offer-event%:{account_id}:MTAw%",
        )
        return bool(count == 3)

    await eventually(handled)
    announced = await bound_messages(daemon)
    assert [(m["offer_id"], m["product_id"]) for m in announced] == [(offer_id, "P-MUG")]
    codes = [e["code"] for e in await event_log(admin, account_id)]
    assert codes.count("offer_bound") == 1


async def test_an_ambiguous_ean_binds_nothing_and_warns(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    await products(daemon, db, ("P-A", EAN_MUG), ("P-B", EAN_MUG))
    seller, account_id = await connected(admin, emulator, "sklep-dwuznaczny")
    await switch(admin, account_id, bind_offers_by_ean=True)
    offer_id = await new_offer(emulator, seller, name="Kubek", ean=EAN_MUG)
    no_ean = await new_offer(emulator, seller, name="Bez EAN")
    await offer(admin, db, account_id, no_ean, name="Bez EAN")
    seen = await offer(admin, db, account_id, offer_id, ean=EAN_MUG)
    assert seen["product_id"] is None

    async def warned() -> Any:
        return [e for e in await event_log(admin, account_id) if e["code"] == "offer_ean_ambiguous"]

    [warning] = await eventually(warned)
    assert warning["level"] == "warning"
    assert offer_id in warning["message"] and "P-A" in warning["message"]
    assert await bound_messages(daemon) == []


async def test_flags_follow_the_price_setting_and_the_renew_default(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    await products(daemon, db, ("P-MUG", EAN_MUG), ("P-CUP", EAN_CUP))
    seller, account_id = await connected(admin, emulator, "sklep-flagi")
    await switch(admin, account_id, bind_offers_by_ean=True, do_not_renew_default=False)
    early = await new_offer(emulator, seller, name="Kubek", ean=EAN_MUG)
    first = await offer(admin, db, account_id, early, product_id="P-MUG")
    # P2: bound before the price setting was switched on; S3: the account's default
    assert first["sync_price"] is False and first["do_not_renew"] is False

    await switch(admin, account_id, sync_prices=True, do_not_renew_default=True)
    late = await new_offer(emulator, seller, name="Filiżanka", ean=EAN_CUP)
    second = await offer(admin, db, account_id, late, product_id="P-CUP")
    assert second["sync_price"] is True and second["do_not_renew"] is True
    # the earlier binding keeps its flags
    again = await offer(admin, db, account_id, early)
    assert again["sync_price"] is False and again["do_not_renew"] is False


async def test_a_journal_gap_sweeps_the_listing_and_warns(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    seller, account_id = await connected(admin, emulator, "sklep-luka")
    first = await new_offer(emulator, seller, name="Pierwsza")
    await offer(admin, db, account_id, first, name="Pierwsza")
    cursor = await db.fetchval(
        "SELECT last_event_id FROM journal_cursors WHERE account_id = $1 AND journal = 'offer'",
        account_id,
    )
    assert cursor is not None

    # a day and more passes: the stored cursor leaves the 24-hour journal
    await emulator.control("POST", "/clock", {"advance_seconds": 25 * 3600})
    missed = await new_offer(emulator, seller, name="Przegapiona", stock=5)
    swept = await offer(admin, db, account_id, missed, name="Przegapiona", stock=5)
    assert swept["status"] == "ACTIVE"

    async def warned() -> Any:
        entries = await event_log(admin, account_id)
        return [e for e in entries if e["code"] == "offer_journal_gap"]

    [warning] = await eventually(warned)
    assert warning["level"] == "warning" and "24 hours" in warning["message"]
    # and the journal goes on from its latest event
    later = await new_offer(emulator, seller, name="Późniejsza")
    await offer(admin, db, account_id, later, name="Późniejsza")
    assert len(await eventually(warned)) == 1


@pytest.mark.parametrize(
    "switched_emulator",
    [{"expired_offer_cursor": "reject-404"}, {"expired_offer_cursor": "reject-oauth"}],
    indirect=True,
)
async def test_a_cursor_refused_with_404_or_the_oauth_format_sweeps_too(
    switched_emulator: Emulator, database_url: str, amqp_url: str, db: asyncpg.Pool
) -> None:
    """Whatever the refusal looks like (400 or 404, either error format), an old cursor starts
    the gap sweep once instead of a refusal repeated every minute."""
    emulator = switched_emulator
    running = Daemon(
        daemon_settings(database_url, amqp_url, emulator.url), poller_timing=FAST_POLLING
    )
    await running.start()
    try:
        async with aiohttp.ClientSession() as session:
            admin = Admin(running, session)
            seller, account_id = await connected(admin, emulator, "sklep-odmowa")
            first = await new_offer(emulator, seller, name="Pierwsza")
            await offer(admin, db, account_id, first, name="Pierwsza")
            await emulator.control("POST", "/clock", {"advance_seconds": 25 * 3600})
            missed = await new_offer(emulator, seller, name="Przegapiona", stock=5)
            await offer(admin, db, account_id, missed, name="Przegapiona", stock=5)

            async def warned() -> Any:
                entries = await event_log(admin, account_id)
                return [e for e in entries if e["code"] == "offer_journal_gap"]

            assert len(await eventually(warned)) == 1
            later = await new_offer(emulator, seller, name="Późniejsza")
            await offer(admin, db, account_id, later, name="Późniejsza")
            assert len(await warned()) == 1
            refusals = [e for e in await event_log(admin, account_id) if e["level"] == "error"]
            assert refusals == []
    finally:
        await running.stop()


async def test_manual_bind_and_unbind_and_validation(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    await products(daemon, db, ("P-MUG", EAN_MUG))
    seller, account_id = await connected(admin, emulator, "sklep-reczny")
    offer_id = await new_offer(emulator, seller, name="Kubek", format="BUY_NOW")
    await offer(admin, db, account_id, offer_id, name="Kubek")

    status, bound = await admin.call("PATCH", f"/offers/{offer_id}", {"product_id": "P-MUG"})
    assert status == 200, bound
    assert bound["product_id"] == "P-MUG" and bound["do_not_renew"] is True
    assert bound["sync_price"] is False
    status, changed = await admin.call(
        "PATCH", f"/offers/{offer_id}", {"do_not_renew": False, "sync_price": True}
    )
    assert status == 200 and changed["do_not_renew"] is False and changed["sync_price"] is True
    assert [m["offer_id"] for m in await bound_messages(daemon)] == [offer_id]

    status, unbound = await admin.call("PATCH", f"/offers/{offer_id}", {"product_id": None})
    assert status == 200 and unbound["product_id"] is None
    codes = [e["code"] for e in await event_log(admin, account_id)]
    assert "offer_bound" in codes and "offer_unbound" in codes

    for body, field in (
        ({"do_not_renew": "yes"}, "do_not_renew"),
        ({"product_id": "NO-SUCH"}, "product_id"),
        ({"colour": "red"}, "colour"),
        ({"sync_price": None}, "sync_price"),
        ({}, "body"),
    ):
        status, error = await admin.call("PATCH", f"/offers/{offer_id}", body)
        assert status == 422, (body, error)
        assert error["error"] == "validation_error" and error["field"] == field, error
    status, _ = await admin.call("PATCH", "/offers/999999999", {"do_not_renew": True})
    assert status == 404
    status, error = await admin.call("GET", "/offers?status=SOLD")
    assert status == 422 and error["field"] == "status"
    status, error = await admin.call("GET", "/offers?bound=maybe")
    assert status == 422 and error["field"] == "bound"


async def _old_offers(emulator: Emulator, seller: dict[str, Any], **template: Any) -> Any:
    """Offers whose events left the 24-hour journal before the account was connected."""
    created = await emulator.control("POST", f"/sellers/{seller['id']}/offers", template)
    await emulator.control("POST", "/clock", {"advance_seconds": 25 * 3600})
    return created


async def test_import_mirrors_every_offer_in_pages_of_1000(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    seller = await emulator.seller("sklep-import")
    await _old_offers(
        emulator,
        seller,
        count=2500,
        name="Towar {n}",
        external_id="SKU-{n}",
        image_url="https://img.example/{n}.jpg",
        price="7.50",
        stock=4,
    )
    ended = await new_offer(emulator, seller, name="Zakończona", format="AUCTION")
    await emulator.control("POST", f"/offers/{ended}/end")
    await emulator.control("POST", "/clock", {"advance_seconds": 25 * 3600})
    account = await admin.connect(emulator, seller)
    await emulator.control("DELETE", "/requests")

    args = argparse.Namespace(offers_command="import", account=int(account["id"]))
    assert await run_offers(args, daemon.settings) == 0

    counts = await emulator.control("GET", "/requests")
    assert counts["by_path"].get("GET /sale/offers") == 3  # ceil(2501 / 1000)
    assert await db.fetchval("SELECT count(*) FROM offers") == 2501
    status, page = await admin.call("GET", "/offers?text=Towar 17&limit=1000")
    assert status == 200
    mug = next(o for o in page["items"] if o["name"] == "Towar 17")
    assert mug["external_id"] == "SKU-17" and mug["image_url"] == "https://img.example/17.jpg"
    assert mug["price"] == "7.50" and mug["stock"] == 4 and mug["format"] == "BUY_NOW"
    assert mug["status"] == "ACTIVE" and mug["ean"] is None and mug["product_id"] is None
    status, page = await admin.call("GET", f"/offers?account_id={account['id']}&format=AUCTION")
    assert [(o["id"], o["status"]) for o in page["items"]] == [(ended, "ENDED")]
    assert page["items"][0]["ended_at"] is not None
    # paging: every offer once
    seen: list[str] = []
    cursor = ""
    while True:
        status, page = await admin.call("GET", f"/offers?limit=1000&cursor={cursor}")
        seen += [o["id"] for o in page["items"]]
        if page["next"] is None:
            break
        cursor = page["next"]
    assert len(seen) == len(set(seen)) == 2501


async def test_bind_by_ean_dry_run_changes_nothing_then_binds_all(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool, capsys: Any
) -> None:
    await products(
        daemon, db, ("P-MUG", EAN_MUG), ("P-A", EAN_CUP), ("P-B", EAN_CUP), ("P-X", "5900000000001")
    )
    seller = await emulator.seller("sklep-hurt")
    ids = {}
    for name, ean in (
        ("mug", EAN_MUG),
        ("mug2", EAN_MUG),
        ("cup", EAN_CUP),
        ("pan", EAN_PAN),
        ("bare", None),
        ("manual", None),
    ):
        ids[name] = await new_offer(emulator, seller, name=name, **({"ean": ean} if ean else {}))
    await emulator.control("POST", "/clock", {"advance_seconds": 25 * 3600})
    account = await admin.connect(emulator, seller)
    account_id = int(account["id"])
    args = argparse.Namespace(offers_command="import", account=account_id)
    assert await run_offers(args, daemon.settings) == 0
    status, _ = await admin.call("PATCH", f"/offers/{ids['manual']}", {"product_id": "P-X"})
    assert status == 200
    await bound_messages(daemon)  # the manual binding's message
    capsys.readouterr()

    before = await db.fetch("SELECT * FROM offers ORDER BY id")
    log_before = await event_log(admin, account_id)
    dry = argparse.Namespace(offers_command="bind", account=account_id, by_ean=True, dry_run=True)
    assert await run_offers(dry, daemon.settings) == 0
    out = capsys.readouterr().out
    assert "(dry run)" in out
    assert "bound: 2, already bound: 1, no EAN: 1, ambiguous: 1, no product: 1" in out
    assert await db.fetch("SELECT * FROM offers ORDER BY id") == before
    assert await event_log(admin, account_id) == log_before
    assert await bound_messages(daemon) == []

    real = argparse.Namespace(offers_command="bind", account=account_id, by_ean=True, dry_run=False)
    assert await run_offers(real, daemon.settings) == 0
    assert "bound: 2, already bound: 1, no EAN: 1, ambiguous: 1" in capsys.readouterr().out
    status, page = await admin.call("GET", f"/offers?account_id={account_id}&bound=true")
    assert sorted(o["id"] for o in page["items"]) == sorted(
        [ids["mug"], ids["mug2"], ids["manual"]]
    )
    announced = await bound_messages(daemon)
    assert sorted(m["offer_id"] for m in announced) == sorted([ids["mug"], ids["mug2"]])
    codes = [e["code"] for e in await event_log(admin, account_id)]
    assert "offer_ean_ambiguous" in codes and "offers_bound_by_ean" in codes
    # a second run finds them bound
    assert await run_offers(real, daemon.settings) == 0
    assert "bound: 0, already bound: 3" in capsys.readouterr().out
