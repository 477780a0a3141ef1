"""Offers follow their product (issue 17 item 4): with ``update_offers_from_products`` on, a
change of name, description, images or parameters in ``product.upserted`` reaches every bound
offer as one ``PATCH /sale/product-offers/{id}`` with only the changed fields; off, nothing is
sent; Allegro's refusals are recorded and announced; an edit in progress (409) is retried."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from allegro_sync.adapters.broker.topology import ERP_EXCHANGE
from allegro_sync.daemon.app import Daemon
from allegro_sync.emulator.config import EmulatorConfig
from tests.e2e.conftest import Admin, Emulator, _serve
from tests.e2e.flows import Erp, bound_offers, emulator_offer, new_offer, offer, switch
from tests.helpers import eventually, publish_json

PATCH_ROUTE = "PATCH /sale/product-offers/{offer_id}"
DESCRIPTION = {
    "sections": [{"items": [{"type": "TEXT", "content": "<p>Kubek na kawę, 300 ml.</p>"}]}]
}
IMAGES = ["https://img.example/kubek-1.jpg", "https://img.example/kubek-2.jpg"]
PARAMETERS = [{"id": "224017", "name": None, "values": ["KUB-300"]}]
PRODUCT = {
    "product_id": "P1",
    "ean": "5901234123457",
    "name": "Kubek ceramiczny biały 300 ml",
    "description": DESCRIPTION,
    "images": IMAGES,
    "parameters": PARAMETERS,
}


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    """Allegro, its edits processed for 2 s (long enough to meet one in progress)."""
    async for running in _serve(EmulatorConfig(seed=7, patch_processing_seconds=2.0)):
        yield running


async def upserted(daemon: Daemon, db: asyncpg.Pool, message_id: str, **body: Any) -> None:
    """The ERP publishes ``product.upserted``; wait until it is handled."""
    await publish_json(
        daemon.settings.amqp_url,
        ERP_EXCHANGE,
        [("product.upserted", message_id, json.dumps(body).encode())],
    )

    async def handled() -> bool:
        return bool(await db.fetchval("SELECT true FROM inbox WHERE message_id = $1", message_id))

    await eventually(handled)


async def edits(emulator: Emulator, offer_id: str) -> list[dict[str, Any]]:
    received = (await emulator.control("GET", "/edits"))["edits"]
    return [e for e in received if e["offer_id"] == offer_id]


async def updates_done(db: asyncpg.Pool) -> None:
    async def idle() -> bool:
        return bool(await db.fetchval("SELECT count(*) = 0 FROM offer_updates"))

    await eventually(idle, timeout=30, interval=0.2)


async def patches_by(emulator: Emulator, seller: dict[str, Any]) -> int:
    counts = await emulator.control("GET", "/requests")
    return int(counts["by_seller"].get(seller["id"], {}).get(PATCH_ROUTE, 0))


async def test_offers_follow_their_product_only_where_switched_on(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    _, account_id, ids = await bound_offers(
        daemon, admin, emulator, db, "follows", {"Kubek stary": "P1"},
        update_offers_from_products=True,
    )  # fmt: skip
    status, account = await admin.call("GET", f"/accounts/{account_id}")
    assert status == 200 and account["update_offers_from_products"] is True
    quiet = await emulator.seller("stays")
    quiet_id = int((await admin.connect(emulator, quiet))["id"])
    quiet_offer = await new_offer(emulator, quiet, name="Kubek u innego", stock=5, price="9.99")
    await offer(admin, db, quiet_id, quiet_offer, name="Kubek u innego")
    status, body = await admin.call("PATCH", f"/offers/{quiet_offer}", {"product_id": "P1"})
    assert status == 200, body
    offer_id = ids["Kubek stary"]

    await upserted(daemon, db, "product:P1:1", **PRODUCT)
    await updates_done(db)
    shown = await emulator_offer(emulator, offer_id)
    assert shown["name"] == PRODUCT["name"]
    assert shown["description"] == DESCRIPTION
    assert shown["images"] == IMAGES
    assert shown["parameters"] == [{"id": "224017", "name": None, "values": ["KUB-300"]}]
    (first,) = await edits(emulator, offer_id)
    assert first["fields"] == ["description", "images", "name", "parameters"]
    assert "stock" not in first["body"] and "sellingMode" not in first["body"]
    # The offer of the account that does not follow products was left alone.
    assert await edits(emulator, quiet_offer) == []
    assert (await emulator_offer(emulator, quiet_offer))["name"] == "Kubek u innego"

    # Only the parameters change: only they are sent.
    changed = {**PRODUCT, "parameters": [{"id": "224017", "values": ["KUB-301"]}]}
    await upserted(daemon, db, "product:P1:2", **changed)
    await updates_done(db)
    first, second = await edits(emulator, offer_id)
    assert second["fields"] == ["parameters"]
    assert second["body"]["parameters"] == [{"id": "224017", "values": ["KUB-301"]}]
    assert (await emulator_offer(emulator, offer_id))["name"] == PRODUCT["name"]
    status, log = await admin.call("GET", f"/accounts/{account_id}/event-log?category=offers")
    assert status == 200
    assert [e["code"] for e in log["items"]].count("offer_updated_from_product") == 2

    # Switched off: the next change stays in the ERP.
    await switch(admin, account_id, update_offers_from_products=False)
    await upserted(daemon, db, "product:P1:3", **{**changed, "name": "Kubek biały 300 ml nowy"})
    await updates_done(db)
    assert len(await edits(emulator, offer_id)) == 2
    assert await patches_by(emulator, quiet) == 0


async def test_redelivered_and_repeated_changes_send_one_edit(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    seller, _, ids = await bound_offers(
        daemon, admin, emulator, db, "once", {"Kubek stary": "P1"},
        update_offers_from_products=True,
    )  # fmt: skip
    for _ in range(2):  # the same message redelivered
        await upserted(daemon, db, "product:P1:1", **PRODUCT)
    await upserted(daemon, db, "product:P1:1b", **PRODUCT)  # the same content again
    await updates_done(db)
    assert len(await edits(emulator, ids["Kubek stary"])) == 1
    assert await patches_by(emulator, seller) == 1


async def test_images_allegro_cannot_fetch_are_uploaded_before_the_edit(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    seller, _, ids = await bound_offers(
        daemon, admin, emulator, db, "uploads", {"Kubek stary": "P1"},
        update_offers_from_products=True,
    )  # fmt: skip
    offer_id = ids["Kubek stary"]
    # the older single image_url takes any link (the images list only https ones)
    await upserted(daemon, db, "product:P1:1", product_id="P1", ean=None, name="Product P1",
                   image_url="http://erp.local/kubek-1.jpg")  # fmt: skip
    await updates_done(db)
    (edit,) = await edits(emulator, offer_id)
    assert "images" in edit["fields"]
    [uploaded] = edit["body"]["images"]
    assert uploaded.startswith("https://a.allegroimg.com/")
    assert (await emulator_offer(emulator, offer_id))["images"] == [uploaded]
    counts = await emulator.control("GET", "/requests")
    assert counts["by_seller"][seller["id"]].get("POST /sale/images") == 1, counts
    assert await patches_by(emulator, seller) == 1

    # an https link goes as it is: Allegro fetches it
    images = ["https://img.example/kubek-2.jpg"]
    await upserted(daemon, db, "product:P1:2", product_id="P1", ean=None, name="Product P1",
                   images=images)  # fmt: skip
    await updates_done(db)
    _, second = await edits(emulator, offer_id)
    assert second["body"]["images"] == images
    counts = await emulator.control("GET", "/requests")
    assert counts["by_seller"][seller["id"]].get("POST /sale/images") == 1, counts


async def test_a_refusal_is_recorded_and_announced(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    erp = Erp(daemon.settings.amqp_url)
    _, account_id, ids = await bound_offers(
        daemon, admin, emulator, db, "refused", {"Kubek stary": "P1"},
        update_offers_from_products=True,
    )  # fmt: skip
    offer_id = ids["Kubek stary"]
    unreachable = ["https://img.example/kubek-1.jpg", "https://cdn.shop.invalid/kubek-2.jpg"]
    await upserted(daemon, db, "product:P1:1", product_id="P1", ean=None, name="Product P1",
                   images=unreachable)  # fmt: skip
    (failed,) = await erp.wait_for("offer.update_failed")
    assert failed["account_id"] == account_id and failed["offer_id"] == offer_id
    assert failed["product_id"] == "P1" and failed["fields"] == ["images"]
    assert failed["errors"][0]["code"] == "OfferImagesNotAvailableException"
    assert "kubek-2.jpg" in failed["errors"][0]["message"]
    await updates_done(db)
    status, log = await admin.call("GET", f"/accounts/{account_id}/event-log?category=offers")
    assert status == 200
    (entry,) = [e for e in log["items"] if e["code"] == "offer_update_refused"]
    assert entry["level"] == "error" and "could not be downloaded" in entry["message"]
    assert (await emulator_offer(emulator, offer_id))["images"] != unreachable


async def test_an_edit_in_progress_is_waited_for(
    daemon: Daemon, admin: Admin, emulator: Emulator, db: asyncpg.Pool
) -> None:
    seller, account_id, ids = await bound_offers(
        daemon, admin, emulator, db, "busy", {"Kubek stary": "P1"},
        update_offers_from_products=True,
    )  # fmt: skip
    offer_id = ids["Kubek stary"]
    assert daemon.tokens is not None
    auth = await daemon.tokens.current(account_id)
    headers = {
        "Authorization": f"Bearer {auth.access_token}",
        "Accept": "application/vnd.allegro.public.v1+json",
        "Content-Type": "application/vnd.allegro.public.v1+json",
        "User-Agent": "SellerPanel/1.0 (+https://example.com)",
    }
    # The seller edits the offer on Allegro; for 2 s it is being processed.
    async with emulator.session.patch(
        f"{emulator.url}/sale/product-offers/{offer_id}",
        json={"external": {"id": "KUB-300"}},
        headers=headers,
    ) as r:
        assert r.status == 202, await r.text()
    await upserted(daemon, db, "product:P1:1", **PRODUCT)
    await updates_done(db)
    assert (await emulator_offer(emulator, offer_id))["name"] == PRODUCT["name"]
    assert await patches_by(emulator, seller) >= 3  # the seller's, a 409, and ours again
    assert len(await edits(emulator, offer_id)) == 2
